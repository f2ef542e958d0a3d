import type { Db, Notification } from "@zigznote/database";
import * as customerStore from "./customers/store";
import * as standingStore from "./dunning/store";
import * as invoiceStore from "./invoices/store";
import * as limitsStore from "./limits/store";
import { parseViolations } from "./limits/violations";
import * as subscriptionStore from "./subscriptions/store";

/**
 * Whether a billing notice still says something true when its turn to be sent comes. Notices are
 * queued with their cause and sent after it commits, usually within a second, but a failed
 * delivery is retried for hours: a dunning e-mail must not go out after the invoice was paid,
 * nor a violation notice after the violation was resolved. Returns why a notice is obsolete, or
 * null to send it. Nothing is due to a deleted organization any more. Notices of other kinds
 * (and payloads without the fields) are otherwise always due.
 */
export async function isNoticeObsolete(db: Db, notice: Notification): Promise<string | null> {
  const payload = (notice.payload ?? {}) as Record<string, unknown>;
  const text = (key: string) => (typeof payload[key] === "string" ? payload[key] : undefined);
  // Queued before the organization was deleted, due after: its former admins are told nothing
  // (our operators still are).
  if (
    !notice.type.startsWith("ops.") &&
    !(await subscriptionStore.isLiveOrganization(db, { organizationId: notice.organizationId }))
  ) {
    return "the organization was deleted";
  }
  switch (notice.type) {
    case "billing.payment_failed":
    case "billing.payment_failed.final": {
      const subscriptionId = text("subscriptionId");
      const failedAt = text("failedAt");
      if (!subscriptionId || !failedAt) return null;
      const standing = await standingStore.findStandingById(db, { subscriptionId });
      if (!standing) return "the subscription no longer exists";
      if (standing.status === "canceled") return "the subscription was canceled";
      const paidAt = standing.lastPaymentSucceededEventAt;
      if (paidAt && paidAt.getTime() > new Date(failedAt).getTime()) {
        return "the invoice was paid before the notice went out";
      }
      const invoiceId = text("invoiceId");
      if (invoiceId && standing.voidedInvoiceIds.includes(invoiceId)) {
        return "the invoice was voided before the notice went out";
      }
      return null;
    }
    case "billing.payment_action_required": {
      const invoiceId = text("invoiceId");
      if (!invoiceId) return null;
      if (!(await invoiceStore.isConfirmationPending(db, { stripeInvoiceId: invoiceId }))) {
        return "the payment was confirmed (or the invoice voided) before the notice went out";
      }
      return null;
    }
    case "billing.trial_will_end": {
      const subscriptionId = text("subscriptionId");
      if (!subscriptionId) return null;
      const standing = await standingStore.findStandingById(db, { subscriptionId });
      if (!standing || standing.status === "canceled") return "the subscription was canceled";
      return null;
    }
    case "billing.card_expiring": {
      const paymentMethodId = text("paymentMethodId");
      const expiresAt = text("expiresAt");
      if (!paymentMethodId || !expiresAt) return null;
      const organizationId = notice.organizationId;
      const card = await customerStore.findDefaultPaymentMethod(db, { organizationId });
      if (card?.id !== paymentMethodId) return "another card is on file now";
      if (card.expires_at?.toISOString() !== expiresAt) {
        return "the card was renewed (new expiry) before the notice went out";
      }
      const live = await subscriptionStore.findLiveSubscription(db, { organizationId });
      if (!live || live.cancelAtPeriodEnd) return "no renewal is due after the card expires";
      return null;
    }
    case "billing.suspended": {
      const subscriptionId = text("subscriptionId");
      if (!subscriptionId) return null;
      const standing = await standingStore.findStandingById(db, { subscriptionId });
      if (standing?.status !== "suspended") {
        return "access was restored before the notice went out";
      }
      return null;
    }
    case "plan.violation":
    case "plan.storage_grace_ending": {
      const violations = parseViolations(
        await limitsStore.findRecordedViolations(db, { organizationId: notice.organizationId }),
      );
      const type = notice.type === "plan.violation" ? text("type") : "storage";
      const action = notice.type === "plan.violation" ? text("action") : "grace_period";
      const current = violations.find((violation) => violation.type === type);
      if (!current || current.action !== action) {
        return "the violation was resolved or changed before the notice went out";
      }
      const graceEndsAt = text("graceEndsAt");
      if (notice.type === "plan.storage_grace_ending" && current.graceEndsAt !== graceEndsAt) {
        return "the storage grace period changed before the notice went out";
      }
      return null;
    }
    default:
      return null;
  }
}
