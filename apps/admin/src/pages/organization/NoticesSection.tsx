import { Empty } from "../../components/States";
import { ROW_ACTIONS_COLUMN, Table } from "../../components/Table";
import { formatDateTime, humanize } from "../../format";
import type { Notice } from "./types";

export function NoticesSection({
  notices,
  onResend,
}: {
  notices: Notice[];
  onResend: (notice: Notice) => void;
}) {
  return (
    <section aria-labelledby="notices">
      <h2 id="notices">Notices</h2>
      {notices.length === 0 ? (
        <Empty>No notices sent to this organization.</Empty>
      ) : (
        <Table
          columns={[
            { label: "Type" },
            { label: "Status" },
            { label: "To" },
            { label: "Created" },
            { label: "Sent" },
            ROW_ACTIONS_COLUMN,
          ]}
        >
          {notices.map((notice) => (
            <tr key={notice.id}>
              <td>{humanize(notice.type)}</td>
              <td>
                <span className={`badge badge-${notice.status}`}>{notice.status}</span>
                {notice.lastError ? <span className="muted"> {notice.lastError}</span> : null}
              </td>
              <td>{notice.recipientEmail ?? "admins"}</td>
              <td>{formatDateTime(notice.createdAt)}</td>
              <td>{formatDateTime(notice.sentAt)}</td>
              <td>
                <button type="button" onClick={() => onResend(notice)}>
                  Resend…
                </button>
              </td>
            </tr>
          ))}
        </Table>
      )}
    </section>
  );
}
