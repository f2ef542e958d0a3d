import { Link } from "react-router-dom";
import { api, unwrap, useLoad, type Schema } from "../api";
import { FilterBar, SearchFilter, SelectFilter, useQueryFilters } from "../components/Filters";
import { PagedTable } from "../components/Table";
import { formatDateTime, humanize, personLabel } from "../format";

type TargetType = Schema<"AdminAuditTargetType">;
type Entry = Schema<"AdminAuditEntry">;
const TARGET_TYPES: readonly TargetType[] = [
  "violation",
  "organization",
  "notice",
  "subscription",
  "job",
];
const KEYS = ["targetType", "targetId"] as const;

function Change({ before, after }: { before: unknown; after: unknown }) {
  const show = (value: unknown) =>
    value === null || value === undefined ? "—" : JSON.stringify(value, null, 1);
  return (
    <details>
      <summary>before → after</summary>
      <div className="change">
        <pre aria-label="before">{show(before)}</pre>
        <pre aria-label="after">{show(after)}</pre>
      </div>
    </details>
  );
}

/** Who acted: e-mail (with the name under it), else name, username or Clerk id. */
function Person({ person }: { person: Entry["actor"] }) {
  const label = personLabel(person);
  return (
    <>
      {label.isId ? <code>{label.text}</code> : label.text}
      {label.detail ? <span className="muted block">{label.detail}</span> : null}
    </>
  );
}

/**
 * What was acted on: a job by its name; anything of an organization by that organization (a
 * link to its page), the target's own id in full on hover and in the filter link.
 */
function Target({ entry }: { entry: Entry }) {
  if (entry.targetType === "job") {
    return (
      <>
        job <code className="name">{entry.targetId}</code>
      </>
    );
  }
  const organization = entry.organizationId ? (
    <Link to={`/organizations/${entry.organizationId}`}>
      {entry.organizationName ?? <code>{entry.organizationId}</code>}
    </Link>
  ) : null;
  if (entry.targetType === "organization") return <>organization {organization}</>;
  return (
    <>
      {entry.targetType}
      {organization ? <> of {organization}</> : null}{" "}
      <Link
        className="muted id-link"
        title={`Only the entries about this ${entry.targetType}: ${entry.targetId}`}
        to={`/audit-log?targetType=${entry.targetType}&targetId=${entry.targetId}`}
      >
        <code>{entry.targetId.slice(0, 8)}…</code>
      </Link>
    </>
  );
}

export function AuditLogPage() {
  const { values, cursor, setFilter, setCursor, queryKey } = useQueryFilters(KEYS);
  const log = useLoad(
    () =>
      unwrap(
        api.GET("/api/v1/admin/audit-log", {
          params: {
            query: {
              targetType: (TARGET_TYPES as readonly string[]).includes(values.targetType)
                ? (values.targetType as TargetType)
                : undefined,
              targetId: values.targetId || undefined,
              cursor: cursor || undefined,
              limit: 50,
            },
          },
        }),
      ),
    queryKey,
  );
  return (
    <>
      <h1>Audit log</h1>
      <FilterBar>
        <SelectFilter
          label="Target type"
          value={values.targetType}
          onChange={(value) => setFilter("targetType", value)}
          options={[
            { value: "", label: "Any target" },
            ...TARGET_TYPES.map((t) => ({ value: t, label: t })),
          ]}
        />
        <SearchFilter
          label="Target id"
          value={values.targetId}
          onSubmit={(value) => setFilter("targetId", value)}
        />
      </FilterBar>
      <PagedTable
        list={log}
        cursor={cursor}
        onPage={setCursor}
        empty={
          <>
            No actions recorded{values.targetType || values.targetId ? " for this filter" : " yet"}.
          </>
        }
        className="audit"
        columns={[
          { label: "When" },
          { label: "Who" },
          { label: "Action" },
          { label: "Target" },
          { label: "Reason" },
          { label: "Change" },
        ]}
        renderRow={(entry) => (
          <tr key={entry.id} data-testid="audit-entry">
            <td>{formatDateTime(entry.createdAt)}</td>
            <td data-testid="audit-who">
              <Person person={entry.actor} />
            </td>
            <td>{humanize(entry.action)}</td>
            <td className="wrap" data-testid="audit-target">
              <Target entry={entry} />
            </td>
            <td className="wrap">{entry.reason}</td>
            <td>
              <Change before={entry.before} after={entry.after} />
            </td>
          </tr>
        )}
      />
    </>
  );
}
