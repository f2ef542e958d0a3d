import { Link } from "react-router-dom";
import { api, unwrap, useLoad } from "../api";
import { FilterBar, SearchFilter, useQueryFilters } from "../components/Filters";
import { PagedTable } from "../components/Table";
import { formatDateTime } from "../format";

const KEYS = ["q"] as const;

export function OrganizationsPage() {
  const { values, cursor, setFilter, setCursor, queryKey } = useQueryFilters(KEYS);
  const list = useLoad(
    () =>
      unwrap(
        api.GET("/api/v1/admin/organizations", {
          params: { query: { q: values.q || undefined, cursor: cursor || undefined, limit: 50 } },
        }),
      ),
    queryKey,
  );
  return (
    <>
      <h1>Organizations</h1>
      <FilterBar>
        <SearchFilter
          label="Organization name or id"
          value={values.q}
          onSubmit={(value) => setFilter("q", value)}
        />
      </FilterBar>
      <PagedTable
        list={list}
        cursor={cursor}
        onPage={setCursor}
        empty="No organization matches."
        columns={[{ label: "Name" }, { label: "Plan" }, { label: "Status" }, { label: "Created" }]}
        renderRow={(organization) => (
          <tr key={organization.id}>
            <td>
              <Link to={`/organizations/${organization.id}`}>{organization.name}</Link>
            </td>
            <td>{organization.planSlug}</td>
            <td>{organization.status}</td>
            <td>{formatDateTime(organization.createdAt)}</td>
          </tr>
        )}
      />
    </>
  );
}
