import { Link } from "react-router-dom";
import { api, unwrap, useLoad, type Schema } from "../api";
import { FilterBar, SearchFilter, SelectFilter, useQueryFilters } from "../components/Filters";
import { PagedTable } from "../components/Table";
import { formatDateTime, formatUsage, humanize } from "../format";

type ViolationType = Schema<"AdminViolationType">;
type ViolationAction = Schema<"AdminViolationAction">;
type ViolationStatus = Schema<"AdminViolationStatus">;

const TYPES: readonly ViolationType[] = ["meetings", "team_members", "storage"];
const ACTIONS: readonly ViolationAction[] = ["read_only", "notify_admin", "grace_period"];
const STATUSES: readonly ViolationStatus[] = ["open", "waived", "resolved"];
const KEYS = ["type", "action", "status", "sort", "q"] as const;

const pick = <T extends string>(allowed: readonly T[], value: string): T | undefined =>
  (allowed as readonly string[]).includes(value) ? (value as T) : undefined;

export function ViolationsPage() {
  const { values, cursor, setFilter, setCursor, queryKey } = useQueryFilters(KEYS);
  const list = useLoad(
    () =>
      unwrap(
        api.GET("/api/v1/admin/violations", {
          params: {
            query: {
              type: pick(TYPES, values.type),
              action: pick(ACTIONS, values.action),
              status: pick(STATUSES, values.status),
              sort: values.sort === "graceEndsAt" ? "graceEndsAt" : "detectedAt",
              q: values.q || undefined,
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
      <h1>Violations</h1>
      <FilterBar>
        <SelectFilter
          label="Type"
          value={values.type}
          onChange={(value) => setFilter("type", value)}
          options={[
            { value: "", label: "Any type" },
            ...TYPES.map((t) => ({ value: t, label: humanize(t) })),
          ]}
        />
        <SelectFilter
          label="Action"
          value={values.action}
          onChange={(value) => setFilter("action", value)}
          options={[
            { value: "", label: "Any action" },
            ...ACTIONS.map((a) => ({ value: a, label: humanize(a) })),
          ]}
        />
        <SelectFilter
          label="Status"
          value={values.status}
          onChange={(value) => setFilter("status", value)}
          options={[
            { value: "", label: "Open and waived" },
            ...STATUSES.map((s) => ({ value: s, label: s })),
          ]}
        />
        <SelectFilter
          label="Sort"
          value={values.sort}
          onChange={(value) => setFilter("sort", value)}
          options={[
            { value: "", label: "Newest detected" },
            { value: "graceEndsAt", label: "Grace ends soonest" },
          ]}
        />
        <SearchFilter
          label="Organization name or id"
          value={values.q}
          onSubmit={(value) => setFilter("q", value)}
          placeholder="Acme or 3f2c…"
        />
      </FilterBar>
      <PagedTable
        list={list}
        cursor={cursor}
        onPage={setCursor}
        empty="No violations match these filters."
        caption="Violations"
        columns={[
          { label: "Organization" },
          { label: "Type" },
          { label: "Action" },
          { label: "Status" },
          { label: "Usage / limit", className: "num" },
          { label: "Detected" },
          { label: "Grace ends" },
          { label: "Waived until" },
        ]}
        renderRow={(violation) => (
          <tr key={violation.id}>
            <td>
              <Link to={`/organizations/${violation.organizationId}`}>
                {violation.organizationName}
              </Link>
            </td>
            <td>{humanize(violation.type)}</td>
            <td>{humanize(violation.action)}</td>
            <td>
              <span className={`badge badge-${violation.status}`}>{violation.status}</span>
            </td>
            <td className="num">
              {formatUsage(violation.type, violation.currentUsage, violation.limit)}
            </td>
            <td>{formatDateTime(violation.detectedAt)}</td>
            <td>{formatDateTime(violation.graceEndsAt)}</td>
            <td>{formatDateTime(violation.waivedUntil)}</td>
          </tr>
        )}
      />
    </>
  );
}
