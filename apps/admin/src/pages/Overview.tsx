import { Link } from "react-router-dom";
import { api, unwrap, useLoad } from "../api";
import { OpenDisputesSection } from "../components/Billing";
import { JobSuccessRates, ViolationsOverTime } from "../components/Charts";
import { ErrorState, Loading } from "../components/States";
import { Table } from "../components/Table";
import { NextRun } from "../components/NextRun";
import { formatDateTime, formatPercent, humanize } from "../format";

function Figure({ label, value, to }: { label: string; value: number; to?: string }) {
  return (
    <div className="figure">
      <span className="figure-value">{value}</span>
      <span className="figure-label">{to ? <Link to={to}>{label}</Link> : label}</span>
    </div>
  );
}

const loadOverview = () => unwrap(api.GET("/api/v1/admin/overview"));
type Overview = Awaited<ReturnType<typeof loadOverview>>;

export function OverviewPage() {
  const overview = useLoad(loadOverview, "overview");
  return (
    <>
      <h1>Overview</h1>
      {overview.status === "error" ? (
        <ErrorState error={overview.error} onRetry={overview.reload} />
      ) : null}
      {overview.data === undefined ? (
        overview.status === "loading" ? (
          <Loading />
        ) : null
      ) : (
        <OverviewBody data={overview.data} />
      )}
    </>
  );
}

function OverviewBody({ data }: { data: Overview }) {
  const openViolations = data.violations.open.reduce((sum, row) => sum + row.count, 0);
  return (
    <>
      <p className="muted">As of {formatDateTime(data.generatedAt)}</p>
      <section aria-labelledby="figures">
        <h2 id="figures" className="visually-hidden">
          Figures
        </h2>
        <div className="figures">
          <Figure label="organizations" value={data.organizations.total} to="/organizations" />
          <Figure label="open violations" value={openViolations} to="/violations?status=open" />
          <Figure
            label="waived violations"
            value={data.violations.waived}
            to="/violations?status=waived"
          />
          <Figure label="subscriptions past due" value={data.subscriptions.pastDue} />
          <Figure label="suspended" value={data.subscriptions.suspended} />
          <Figure label="suspended, comped" value={data.subscriptions.comped} />
          <Figure label="grace ends in 24 h" value={data.subscriptions.graceEndingIn24h} />
          <Figure label="grace ends in 7 days" value={data.subscriptions.graceEndingIn7d} />
          <Figure label="notices pending" value={data.notices.pending} />
          <Figure label="notices sent" value={data.notices.sent} />
          <Figure label="notices failed" value={data.notices.failed} />
          <Figure label="open disputes" value={data.disputes.open} />
          <Figure label="disputes needing a response" value={data.disputes.needsResponse} />
        </div>
      </section>
      <OpenDisputesSection disputes={data.disputes.evidenceDueFirst} />
      <div className="columns">
        <section aria-labelledby="over-time">
          <h2 id="over-time">Violations over time</h2>
          {data.violations.overTime.some((day) => day.detected > 0 || day.resolved > 0) ? (
            <ViolationsOverTime days={data.violations.overTime} />
          ) : (
            <p className="state state-empty">
              No violation was detected or resolved in the last {data.violations.overTime.length}{" "}
              days.
            </p>
          )}
        </section>
        <section aria-labelledby="job-rates">
          <h2 id="job-rates">Job success rates</h2>
          {data.jobs.length === 0 ? (
            <p className="state state-empty">No job has run yet.</p>
          ) : (
            <JobSuccessRates jobs={data.jobs} />
          )}
        </section>
      </div>
      <div className="columns">
        <section aria-labelledby="by-type">
          <h2 id="by-type">Open violations by type and action</h2>
          {data.violations.open.length === 0 ? (
            <p className="state state-empty">No open violations.</p>
          ) : (
            <Table
              columns={[
                { label: "Type" },
                { label: "Action" },
                { label: "Open", className: "num" },
              ]}
            >
              {data.violations.open.map((row) => (
                <tr key={`${row.type}-${row.action}`}>
                  <td>
                    <Link to={`/violations?type=${row.type}&action=${row.action}&status=open`}>
                      {humanize(row.type)}
                    </Link>
                  </td>
                  <td>{humanize(row.action)}</td>
                  <td className="num">{row.count}</td>
                </tr>
              ))}
            </Table>
          )}
        </section>
        <section aria-labelledby="by-plan">
          <h2 id="by-plan">Organizations by plan and status</h2>
          <PlansTable organizations={data.organizations} />
        </section>
      </div>
      <section aria-labelledby="jobs">
        <h2 id="jobs">Jobs</h2>
        <Table
          columns={[
            { label: "Job" },
            { label: "Runs 24 h", className: "num" },
            { label: "Success 24 h", className: "num" },
            { label: "Runs 7 d", className: "num" },
            { label: "Success 7 d", className: "num" },
            { label: "Last failure" },
            { label: "Next run" },
          ]}
        >
          {data.jobs.map((job) => (
            <tr key={job.jobName}>
              <td>
                <Link to={`/job-runs?jobName=${encodeURIComponent(job.jobName)}`}>
                  {job.jobName}
                </Link>
              </td>
              <td className="num">{job.runs24h}</td>
              <td className="num">{formatPercent(job.successRate24h)}</td>
              <td className="num">{job.runs7d}</td>
              <td className="num">{formatPercent(job.successRate7d)}</td>
              <td className="wrap">
                {job.lastFailureAt ? (
                  <>
                    {formatDateTime(job.lastFailureAt)}
                    {job.lastFailureError ? (
                      <span className="muted"> — {job.lastFailureError}</span>
                    ) : null}
                  </>
                ) : (
                  "—"
                )}
              </td>
              <td data-testid="next-run">
                <NextRun at={job.nextRunAt} now={Date.parse(data.generatedAt)} />
              </td>
            </tr>
          ))}
        </Table>
      </section>
    </>
  );
}

/** One row per plan, its organizations by status, and the totals. */
function PlansTable({ organizations }: { organizations: Overview["organizations"] }) {
  const total = (status: "active" | "deleted") =>
    organizations.byPlan.reduce((sum, row) => sum + row.byStatus[status], 0);
  return (
    <div className="table-wrap">
      <table data-testid="plans">
        <thead>
          <tr>
            <th scope="col">Plan</th>
            <th scope="col" className="num">
              Active
            </th>
            <th scope="col" className="num">
              Deleted
            </th>
            <th scope="col" className="num">
              All
            </th>
          </tr>
        </thead>
        <tbody>
          {organizations.byPlan.map((row) => (
            <tr key={row.planSlug}>
              <th scope="row">{row.planSlug}</th>
              <td className="num">{row.byStatus.active}</td>
              <td className="num">{row.byStatus.deleted}</td>
              <td className="num">{row.count}</td>
            </tr>
          ))}
        </tbody>
        <tfoot>
          <tr>
            <th scope="row">All plans</th>
            <td className="num">{total("active")}</td>
            <td className="num">{total("deleted")}</td>
            <td className="num">{organizations.total}</td>
          </tr>
        </tfoot>
      </table>
    </div>
  );
}
