import { useId, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { api, unwrap, useLoad, type Schema } from "../api";
import { DisputesSection, PaymentSection } from "../components/Billing";
import { ActionDialog } from "../components/Dialog";
import { Empty, ErrorState, Loading } from "../components/States";
import {
  formatBytes,
  formatDateTime,
  formatUsage,
  fromDateTimeInput,
  humanize,
  toDateTimeInput,
} from "../format";

type Detail = Schema<"AdminOrganizationDetail">;
type Violation = Schema<"AdminViolationWithHistory">;
type Notice = Schema<"AdminNotice">;
// The document marks the component nullable (the detail's `subscription` is): a row is not.
type Subscription = NonNullable<Schema<"AdminSubscription">>;

interface Done {
  text: string;
  auditId: string;
  targetType: Schema<"AdminAuditTargetType">;
  targetId: string;
}

type PendingAction =
  | { kind: "extendGrace"; violation: Violation }
  | { kind: "waive"; violation: Violation }
  | { kind: "recheck" }
  | { kind: "resend"; notice: Notice }
  | { kind: "liftSuspension"; subscription: Subscription };

const DAY_MS = 86_400_000;

/**
 * The action with its target as last loaded: after a 409 the page reloads, and confirming again
 * sends the version just read instead of the stale one.
 */
function withCurrentTarget(action: PendingAction, data: Detail): PendingAction {
  switch (action.kind) {
    case "extendGrace":
    case "waive": {
      const current = data.violations.find((violation) => violation.id === action.violation.id);
      return current ? { ...action, violation: current } : action;
    }
    case "liftSuspension":
      return data.subscription ? { ...action, subscription: data.subscription } : action;
    default:
      return action;
  }
}
const LIMIT_LABELS: Record<string, string> = {
  meetingsPerMonth: "Meetings this month",
  teamMembers: "Team members",
  storageBytes: "Storage",
};

export function OrganizationPage() {
  const { id = "" } = useParams();
  const detail = useLoad(
    () => unwrap(api.GET("/api/v1/admin/organizations/{id}", { params: { path: { id } } })),
    id,
  );
  const [action, setAction] = useState<PendingAction | null>(null);
  const [done, setDone] = useState<Done | null>(null);

  if (detail.data === undefined) {
    return (
      <>
        <h1>Organization</h1>
        {detail.status === "error" ? (
          <ErrorState error={detail.error} onRetry={detail.reload} />
        ) : (
          <Loading />
        )}
      </>
    );
  }
  const data = detail.data;
  const finish = (result: Done) => {
    setDone(result);
    detail.reload();
  };

  return (
    <>
      <p className="breadcrumbs">
        <Link to="/organizations">Organizations</Link> /
      </p>
      <h1>{data.organization.name}</h1>
      <p className="muted">
        <code>{data.organization.id}</code> · plan <strong>{data.organization.planSlug}</strong> ·{" "}
        {data.organization.status} · created {formatDateTime(data.organization.createdAt)}
      </p>
      {detail.status === "error" ? (
        <ErrorState error={detail.error} onRetry={detail.reload} />
      ) : null}
      {detail.status === "loading" ? <Loading label="Refreshing…" /> : null}
      {done ? (
        <div className="state state-done" role="status">
          {done.text}.{" "}
          <Link to={`/audit-log?targetType=${done.targetType}&targetId=${done.targetId}`}>
            See it in the audit log
          </Link>{" "}
          (entry <code>{done.auditId}</code>)
        </div>
      ) : null}

      <div className="toolbar">
        <button type="button" onClick={() => setAction({ kind: "recheck" })}>
          Re-check violations now
        </button>
        <Link to={`/audit-log?targetType=organization&targetId=${data.organization.id}`}>
          Audit log of this organization&apos;s own actions
        </Link>
      </div>

      <div className="columns">
        <SubscriptionSection
          data={data}
          onLift={(subscription) => setAction({ kind: "liftSuspension", subscription })}
        />
        <UsageSection usage={data.usage} />
      </div>
      <div className="columns">
        <PaymentSection billing={data.billing} />
        <DisputesSection disputes={data.disputes} />
      </div>
      <ViolationsSection
        violations={data.violations}
        onExtend={(violation) => setAction({ kind: "extendGrace", violation })}
        onWaive={(violation) => setAction({ kind: "waive", violation })}
      />
      <TimelineSection data={data} />
      <NoticesSection
        notices={data.notices}
        onResend={(notice) => setAction({ kind: "resend", notice })}
      />
      <div className="columns">
        <MembersSection members={data.members} />
        <BotsSection bots={data.recentBots} />
      </div>

      {action ? (
        <ActionFor
          action={withCurrentTarget(action, data)}
          organizationId={data.organization.id}
          onDone={finish}
          onConflict={detail.reload}
          onClose={() => setAction(null)}
        />
      ) : null}
    </>
  );
}

function SubscriptionSection({
  data,
  onLift,
}: {
  data: Detail;
  onLift: (subscription: Subscription) => void;
}) {
  const subscription = data.subscription;
  return (
    <section aria-labelledby="subscription">
      <h2 id="subscription">Subscription</h2>
      {subscription === null ? (
        <Empty>No subscription (free plan).</Empty>
      ) : (
        <>
          <dl className="facts">
            <dt>Status</dt>
            <dd>
              <span
                className={`badge badge-${subscription.status}`}
                data-testid="subscription-status"
              >
                {humanize(subscription.status)}
              </span>
            </dd>
            <dt>Plan</dt>
            <dd>{subscription.planSlug}</dd>
            <dt>Period ends</dt>
            <dd>{formatDateTime(subscription.currentPeriodEnd)}</dd>
            <dt>Payment failed</dt>
            <dd>
              {formatDateTime(subscription.paymentFailedAt)}
              {subscription.paymentRetryCount
                ? ` (${subscription.paymentRetryCount} failures)`
                : ""}
            </dd>
            <dt>Grace ends</dt>
            <dd>{formatDateTime(subscription.graceEndsAt)}</dd>
            <dt>Comped until</dt>
            <dd data-testid="comp-until">{formatDateTime(subscription.compUntil)}</dd>
            <dt>Stripe</dt>
            <dd>
              <code>{subscription.stripeSubscriptionId}</code>
            </dd>
          </dl>
          {subscription.status === "suspended" ? (
            <button type="button" onClick={() => onLift(subscription)}>
              Lift suspension…
            </button>
          ) : null}
        </>
      )}
    </section>
  );
}

function UsageSection({ usage }: { usage: Detail["usage"] }) {
  return (
    <section aria-labelledby="usage">
      <h2 id="usage">Usage against limits</h2>
      <ul className="usage">
        {usage.map((row) => {
          const isBytes = row.limit === "storageBytes";
          const show = (value: number) => (isBytes ? formatBytes(value) : String(value));
          const ratio = row.max === null || row.max === 0 ? null : row.used / row.max;
          return (
            <li key={row.limit}>
              <span>{LIMIT_LABELS[row.limit] ?? row.limit}</span>
              <span className={ratio !== null && ratio > 1 ? "over" : undefined}>
                {show(row.used)} / {row.max === null ? "unlimited" : show(row.max)}
              </span>
              {ratio !== null ? (
                <meter min={0} max={1} high={0.9} optimum={0.5} value={Math.min(1, ratio)}>
                  {Math.round(ratio * 100)}%
                </meter>
              ) : null}
            </li>
          );
        })}
      </ul>
    </section>
  );
}

function ViolationsSection({
  violations,
  onExtend,
  onWaive,
}: {
  violations: Violation[];
  onExtend: (violation: Violation) => void;
  onWaive: (violation: Violation) => void;
}) {
  return (
    <section aria-labelledby="violations">
      <h2 id="violations">Violations</h2>
      {violations.length === 0 ? (
        <Empty>No violations.</Empty>
      ) : (
        <ul className="cards">
          {violations.map((violation) => (
            <li key={violation.id} className="card" data-testid={`violation-${violation.type}`}>
              <h3>
                {humanize(violation.type)}:{" "}
                {formatUsage(violation.type, violation.currentUsage, violation.limit)}{" "}
                <span className={`badge badge-${violation.status}`}>{violation.status}</span>
              </h3>
              <dl className="facts">
                <dt>Action</dt>
                <dd>{humanize(violation.action)}</dd>
                <dt>Detected</dt>
                <dd>{formatDateTime(violation.detectedAt)}</dd>
                <dt>Grace ends</dt>
                <dd data-testid="grace-ends">{formatDateTime(violation.graceEndsAt)}</dd>
                <dt>Waived until</dt>
                <dd data-testid="waived-until">{formatDateTime(violation.waivedUntil)}</dd>
                {violation.resolvedAt ? (
                  <>
                    <dt>Resolved</dt>
                    <dd>{formatDateTime(violation.resolvedAt)}</dd>
                  </>
                ) : null}
              </dl>
              {violation.status !== "resolved" ? (
                <div className="toolbar">
                  <button type="button" onClick={() => onExtend(violation)}>
                    Extend grace…
                  </button>
                  <button type="button" onClick={() => onWaive(violation)}>
                    Waive…
                  </button>
                </div>
              ) : null}
              {violation.history.length > 0 ? (
                <details>
                  <summary>History ({violation.history.length})</summary>
                  <ol className="history">
                    {violation.history.map((entry, index) => (
                      <li key={`${entry.at}-${index}`}>
                        {formatDateTime(entry.at)} — {humanize(entry.event)}
                        {entry.reason ? <span className="muted"> ({entry.reason})</span> : null}
                      </li>
                    ))}
                  </ol>
                </details>
              ) : null}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** Payments, violation events and notices of the organization in one list, newest first. */
function TimelineSection({ data }: { data: Detail }) {
  const items = [
    ...data.paymentTimeline.map((entry) => ({
      at: entry.at,
      kind: "payment",
      text: `${humanize(entry.kind)}: ${entry.detail}`,
    })),
    ...data.violations.flatMap((violation) =>
      violation.history.map((entry) => ({
        at: entry.at,
        kind: "violation",
        text: `${humanize(violation.type)} violation ${humanize(entry.event)}${entry.reason ? ` (${entry.reason})` : ""}`,
      })),
    ),
    ...data.notices.map((notice) => ({
      at: notice.createdAt,
      kind: "notice",
      text: `notice ${humanize(notice.type)} (${notice.status})`,
    })),
  ].sort((a, b) => b.at.localeCompare(a.at));
  return (
    <section aria-labelledby="timeline">
      <h2 id="timeline">Timeline</h2>
      {items.length === 0 ? (
        <Empty>Nothing has happened yet.</Empty>
      ) : (
        <ol className="timeline">
          {items.map((item, index) => (
            <li key={`${item.at}-${index}`} className={`timeline-${item.kind}`}>
              <time dateTime={item.at}>{formatDateTime(item.at)}</time> {item.text}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

function NoticesSection({
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
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Type</th>
                <th scope="col">Status</th>
                <th scope="col">To</th>
                <th scope="col">Created</th>
                <th scope="col">Sent</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
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
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/** Members as Clerk described them: name and e-mail (the Clerk id when Clerk told neither). */
function MembersSection({ members }: { members: Detail["members"] }) {
  return (
    <section aria-labelledby="members">
      <h2 id="members">Members</h2>
      {members.length === 0 ? (
        <Empty>No members.</Empty>
      ) : (
        <div className="table-wrap">
          <table data-testid="members">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">E-mail</th>
                <th scope="col">Role</th>
              </tr>
            </thead>
            <tbody>
              {members.map((member) => (
                <tr key={member.userId}>
                  <td>
                    {member.name ?? (member.username ? `@${member.username}` : null) ?? (
                      <span className="muted">
                        {member.email ? (
                          "—"
                        ) : (
                          <>
                            <code>{member.clerkId ?? member.userId}</code> (Clerk id: no name or
                            e-mail yet)
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
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function BotsSection({ bots }: { bots: Detail["recentBots"] }) {
  return (
    <section aria-labelledby="bots">
      <h2 id="bots">Recent bots</h2>
      {bots.length === 0 ? (
        <Empty>No bots.</Empty>
      ) : (
        <ul className="plain">
          {bots.map((bot) => (
            <li key={bot.id}>
              {formatDateTime(bot.createdAt)} — {humanize(bot.status)}{" "}
              <span className="muted">
                meeting <code>{bot.meetingId.slice(0, 8)}</code>
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** The confirm dialog of one action, with its own inputs. */
function ActionFor({
  action,
  organizationId,
  onDone,
  onConflict,
  onClose,
}: {
  action: PendingAction;
  organizationId: string;
  onDone: (done: Done) => void;
  onConflict: () => void;
  onClose: () => void;
}) {
  const inputId = useId();
  const initialDate = () => {
    if (action.kind === "extendGrace") {
      const base = action.violation.graceEndsAt
        ? Date.parse(action.violation.graceEndsAt)
        : Date.now();
      return toDateTimeInput(new Date(Math.max(base, Date.now()) + 7 * DAY_MS));
    }
    return toDateTimeInput(new Date(Date.now() + 30 * DAY_MS));
  };
  const [date, setDate] = useState(initialDate);
  const [days, setDays] = useState("7");
  const common = { onConflict, onClose };

  switch (action.kind) {
    case "extendGrace":
      return (
        <ActionDialog
          {...common}
          title="Extend the grace period"
          confirmLabel="Extend grace"
          description={
            <p>
              The {humanize(action.violation.type)} violation is not enforced until the new date.{" "}
              {action.violation.graceEndsAt
                ? `Its grace ends now: ${formatDateTime(action.violation.graceEndsAt)}.`
                : "It has no grace period now: this starts one."}
            </p>
          }
          onConfirm={async (reason) => {
            const result = await unwrap(
              api.POST("/api/v1/admin/violations/{id}/extend-grace", {
                params: { path: { id: action.violation.id } },
                body: {
                  reason,
                  expectedVersion: action.violation.version,
                  graceEndsAt: fromDateTimeInput(date),
                },
              }),
            );
            onDone({
              text: `Grace extended to ${formatDateTime(result.violation.graceEndsAt)}`,
              auditId: result.auditId,
              targetType: "violation",
              targetId: action.violation.id,
            });
          }}
        >
          <label htmlFor={inputId}>New grace end (UTC)</label>
          <input
            id={inputId}
            type="datetime-local"
            required
            value={date}
            onChange={(event) => setDate(event.target.value)}
          />
        </ActionDialog>
      );
    case "waive":
      return (
        <ActionDialog
          {...common}
          title="Waive the violation"
          confirmLabel="Waive"
          description={
            <p>
              The {humanize(action.violation.type)} violation stays listed but is not enforced until
              the date below; after it, it is enforced again.
            </p>
          }
          onConfirm={async (reason) => {
            const result = await unwrap(
              api.POST("/api/v1/admin/violations/{id}/waive", {
                params: { path: { id: action.violation.id } },
                body: {
                  reason,
                  expectedVersion: action.violation.version,
                  until: fromDateTimeInput(date),
                },
              }),
            );
            onDone({
              text: `Violation waived until ${formatDateTime(result.violation.waivedUntil)}`,
              auditId: result.auditId,
              targetType: "violation",
              targetId: action.violation.id,
            });
          }}
        >
          <label htmlFor={inputId}>Waived until (UTC)</label>
          <input
            id={inputId}
            type="datetime-local"
            required
            value={date}
            onChange={(event) => setDate(event.target.value)}
          />
        </ActionDialog>
      );
    case "recheck":
      return (
        <ActionDialog
          {...common}
          title="Re-check violations now"
          confirmLabel="Re-check"
          description={<p>Measures usage against the plan now and updates the violations.</p>}
          onConfirm={async (reason) => {
            const result = await unwrap(
              api.POST("/api/v1/admin/organizations/{id}/recheck-violations", {
                params: { path: { id: organizationId } },
                body: { reason },
              }),
            );
            onDone({
              text: `Re-checked: ${result.violations.length} unresolved, ${result.added.length} new, ${result.resolved.length} resolved`,
              auditId: result.auditId,
              targetType: "organization",
              targetId: organizationId,
            });
          }}
        />
      );
    case "resend":
      return (
        <ActionDialog
          {...common}
          title="Resend the notice"
          confirmLabel="Resend"
          description={<p>Queues the {humanize(action.notice.type)} notice for delivery again.</p>}
          onConfirm={async (reason) => {
            const result = await unwrap(
              api.POST("/api/v1/admin/notices/{id}/resend", {
                params: { path: { id: action.notice.id } },
                body: { reason },
              }),
            );
            onDone({
              text: `Notice queued again (${result.notice.status})`,
              auditId: result.auditId,
              targetType: "notice",
              targetId: action.notice.id,
            });
          }}
        />
      );
    case "liftSuspension":
      return (
        <ActionDialog
          {...common}
          title="Lift the suspension"
          confirmLabel="Lift suspension"
          description={
            <p>
              The organization may write again for the number of days below without paying (a comp);
              after it, the suspension applies again unless they pay.
            </p>
          }
          onConfirm={async (reason) => {
            const result = await unwrap(
              api.POST("/api/v1/admin/organizations/{id}/lift-suspension", {
                params: { path: { id: organizationId } },
                body: { reason, expectedVersion: action.subscription.version, days: Number(days) },
              }),
            );
            onDone({
              text: `Suspension lifted until ${formatDateTime(result.subscription?.compUntil)}`,
              auditId: result.auditId,
              targetType: "subscription",
              targetId: action.subscription.id,
            });
          }}
        >
          <label htmlFor={inputId}>Days (1–90)</label>
          <input
            id={inputId}
            type="number"
            min={1}
            max={90}
            required
            value={days}
            onChange={(event) => setDays(event.target.value)}
          />
        </ActionDialog>
      );
  }
}
