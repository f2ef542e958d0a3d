import { Empty } from "../../components/States";
import { Table } from "../../components/Table";
import type { Detail } from "./types";

/** Members as Clerk described them: name and e-mail (the Clerk id when Clerk told neither). */
export function MembersSection({ members }: { members: Detail["members"] }) {
  return (
    <section aria-labelledby="members">
      <h2 id="members">Members</h2>
      {members.length === 0 ? (
        <Empty>No members.</Empty>
      ) : (
        <Table
          testId="members"
          columns={[{ label: "Name" }, { label: "E-mail" }, { label: "Role" }]}
        >
          {members.map((member) => (
            <tr key={member.userId}>
              <td>
                {member.name ?? (member.username ? `@${member.username}` : null) ?? (
                  <span className="muted">
                    {member.email ? (
                      "—"
                    ) : (
                      <>
                        <code>{member.clerkId ?? member.userId}</code> (Clerk id: no name or e-mail
                        yet)
                      </>
                    )}
                  </span>
                )}
                {member.name && member.username ? (
                  <span className="muted"> @{member.username}</span>
                ) : null}
              </td>
              <td>{member.email ?? <span className="muted">—</span>}</td>
              <td>{member.role}</td>
            </tr>
          ))}
        </Table>
      )}
    </section>
  );
}
