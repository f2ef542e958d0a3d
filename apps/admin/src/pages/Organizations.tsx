import { Link } from "react-router-dom";
import { api, unwrap, useLoad } from "../api";
import { FilterBar, Pager, SearchFilter, useQueryFilters } from "../components/Filters";
import { Empty, ErrorState, Loading } from "../components/States";
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
      {list.status === "error" ? <ErrorState error={list.error} onRetry={list.reload} /> : null}
      {list.status === "loading" ? <Loading /> : null}
      {list.data && list.status !== "error" ? (
        list.data.data.length === 0 ? (
          <Empty>No organization matches.</Empty>
        ) : (
          <>
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Plan</th>
                    <th scope="col">Status</th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {list.data.data.map((organization) => (
                    <tr key={organization.id}>
                      <td>
                        <Link to={`/organizations/${organization.id}`}>{organization.name}</Link>
                      </td>
                      <td>{organization.planSlug}</td>
                      <td>{organization.status}</td>
                      <td>{formatDateTime(organization.createdAt)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pager cursor={cursor} nextCursor={list.data.nextCursor} onPage={setCursor} />
          </>
        )
      ) : null}
    </>
  );
}
