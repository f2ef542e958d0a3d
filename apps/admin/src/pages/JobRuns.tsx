import { useState } from "react";
import { api, unwrap, useLoad, type Schema } from "../api";
import { ActionDialog } from "../components/Dialog";
import { FilterBar, SelectFilter, useQueryFilters } from "../components/Filters";
import { ErrorState } from "../components/States";
import { PagedTable } from "../components/Table";
import { NextRun } from "../components/NextRun";
import { formatDateTime, formatDuration } from "../format";

type Outcome = Schema<"AdminJobRun">["outcome"];
const OUTCOMES: readonly Outcome[] = ["running", "succeeded", "failed", "skipped"];
const KEYS = ["jobName", "outcome"] as const;

export function JobRunsPage() {
  const { values, cursor, setFilter, setCursor, queryKey } = useQueryFilters(KEYS);
  const jobs = useLoad(() => unwrap(api.GET("/api/v1/admin/jobs")), "jobs");
  const runs = useLoad(
    () =>
      unwrap(
        api.GET("/api/v1/admin/job-runs", {
          params: {
            query: {
              jobName: values.jobName || undefined,
              outcome: (OUTCOMES as readonly string[]).includes(values.outcome)
                ? (values.outcome as Outcome)
                : undefined,
              cursor: cursor || undefined,
              limit: 50,
            },
          },
        }),
      ),
    queryKey,
  );
  // The instant the API reckoned the next runs from: "in 35 s" as of its answer.
  const reckonedAt = jobs.data ? Date.parse(jobs.data.generatedAt) : Number.NaN;
  const [running, setRunning] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  return (
    <>
      <h1>Job runs</h1>
      {jobs.status === "error" ? <ErrorState error={jobs.error} onRetry={jobs.reload} /> : null}
      {jobs.data ? (
        <section aria-labelledby="jobs">
          <h2 id="jobs">Jobs</h2>
          <ul className="cards jobs">
            {jobs.data.data.map((job) => (
              <li key={job.name} className="card">
                <h3>{job.name}</h3>
                <p className="muted">{job.description}</p>
                <dl className="facts">
                  <dt>Schedule</dt>
                  <dd>
                    <code>{job.schedule}</code> <span className="muted">({job.timezone})</span>
                  </dd>
                  <dt>Next run</dt>
                  <dd data-testid="next-run">
                    <NextRun at={job.nextRunAt} now={reckonedAt} />
                  </dd>
                </dl>
                <button type="button" onClick={() => setRunning(job.name)}>
                  Run now…
                </button>
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      {done ? (
        <div className="state state-done" role="status">
          {done}
        </div>
      ) : null}
      <h2>Runs</h2>
      <FilterBar>
        <SelectFilter
          label="Job"
          value={values.jobName}
          onChange={(value) => setFilter("jobName", value)}
          options={[
            { value: "", label: "Every job" },
            ...(jobs.data?.data ?? []).map((job) => ({ value: job.name, label: job.name })),
            ...(values.jobName && !jobs.data?.data.some((job) => job.name === values.jobName)
              ? [{ value: values.jobName, label: values.jobName }]
              : []),
          ]}
        />
        <SelectFilter
          label="Outcome"
          value={values.outcome}
          onChange={(value) => setFilter("outcome", value)}
          options={[
            { value: "", label: "Any outcome" },
            ...OUTCOMES.map((o) => ({ value: o, label: o })),
          ]}
        />
      </FilterBar>
      <PagedTable
        list={runs}
        cursor={cursor}
        onPage={setCursor}
        empty="No runs match these filters."
        columns={[
          { label: "Job" },
          { label: "Outcome" },
          { label: "Started" },
          { label: "Finished" },
          { label: "Duration", className: "num" },
          { label: "Rows", className: "num" },
          { label: "Error" },
        ]}
        renderRow={(run) => (
          <tr key={run.id}>
            <td>{run.jobName}</td>
            <td>
              <span className={`badge badge-${run.outcome}`}>{run.outcome}</span>
            </td>
            <td>{formatDateTime(run.startedAt)}</td>
            <td>{formatDateTime(run.finishedAt)}</td>
            <td className="num" data-testid="duration">
              {formatDuration(run.startedAt, run.finishedAt)}
            </td>
            <td className="num">{run.rowsAffected}</td>
            <td className="wrap">{run.error ?? ""}</td>
          </tr>
        )}
      />
      {running ? (
        <ActionDialog
          title={`Run ${running} now`}
          confirmLabel="Run now"
          description={<p>Runs the job once now, recorded like a scheduled run.</p>}
          onConflict={runs.reload}
          onClose={() => setRunning(null)}
          onConfirm={async (reason) => {
            const result = await unwrap(
              api.POST("/api/v1/admin/jobs/{jobName}/run", {
                params: { path: { jobName: running } },
                body: { reason },
              }),
            );
            setDone(
              `${running}: ${result.outcome.status}${result.outcome.error ? ` (${result.outcome.error})` : ""}`,
            );
            runs.reload();
          }}
        />
      ) : null}
    </>
  );
}
