import { Empty } from "../../components/States";
import { formatDateTime, humanize } from "../../format";
import type { Detail, Subscription } from "./types";

export function SubscriptionSection({
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
