import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { api, unwrap, useLoad } from "../../api";
import { DisputesSection, PaymentSection } from "../../components/Billing";
import { ErrorState, Loading } from "../../components/States";
import { formatDateTime } from "../../format";
import { OrganizationActionDialog, withCurrentTarget, type PendingAction } from "./actions";
import { BotsSection } from "./BotsSection";
import { MembersSection } from "./MembersSection";
import { NoticesSection } from "./NoticesSection";
import { SubscriptionSection } from "./SubscriptionSection";
import { TimelineSection } from "./TimelineSection";
import type { Done } from "./types";
import { UsageSection } from "./UsageSection";
import { ViolationsSection } from "./ViolationsSection";

/** One organization: its subscription, usage, payments, violations, notices and people. */
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
        <OrganizationActionDialog
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
