/**
 * Billing: plans, Stripe subscriptions, the payment grace period, plan violations and the write
 * guard. Other features use what is exported here only. Inside, one folder per part of the
 * business (plans, subscriptions, checkout, dunning, limits, invoices, disputes, customers) and
 * `stripe/` for the provider and its events; each folder's `store.ts` holds the SQL of the tables
 * that part owns.
 */
export {
  assertCanWrite,
  createWriteGuards,
  guardWrite,
  type WriteCheckInput,
} from "./limits/access";
export { createAppBilling, type AppBilling, type AppBillingParts } from "./appBilling";
export {
  openBillingPortal,
  previewPlanChange,
  startCheckout,
  type PlanChangePreview,
} from "./checkout/checkout";
export { getBillingDetails, type BillingDetailsJson } from "./customers/details";
export {
  assertNoOpenDispute,
  listOrganizationDisputes,
  summarizeOpenDisputes,
  type DisputeJson,
} from "./disputes/disputes";
export { warnExpiringCards } from "./dunning/expiringCards";
export { handlePaymentFailed, handlePaymentSucceeded } from "./dunning/invoiceEvents";
export { suspendExpiredGracePeriods } from "./dunning/paymentStanding";
export {
  extendViolationGrace,
  waiveViolation,
  type ViolationOverrideInput,
} from "./limits/overrides";
export type { ViolationRow } from "./limits/store";
export {
  checkPlanViolations,
  escalateExpiredStorageGrace,
  parseViolations,
  PLAN_LIMIT_CODES,
  previewPlanViolations,
  recheckRecordedViolations,
  warnStorageGraceEnding,
  type PlanViolation,
  type ViolationDeps,
  type ViolationSettings,
} from "./limits/violations";
export { isNoticeObsolete } from "./noticeRelevance";
export { listPlans } from "./plans/plans";
export { billingRoutes, type BillingRouteDeps } from "./routes";
export {
  BillingCustomerSchema,
  DisputeSchema,
  PendingConfirmationSchema,
  SubscriptionStatusSchema,
} from "./schemas";
export {
  FREE_PLAN_SLUG,
  type BillingDeps,
  type BillingEventDeps,
  type BillingSettings,
} from "./settings";
export {
  type HandlerOutcome,
  type StripeEventDeps,
  type StripeEventHandler,
} from "./stripe/eventOutcome";
export { registerStripeHandlers, stripeEventHandlers } from "./stripe/events";
export { createStripeClient, stripeSettingsFromConfig, type StripeClient } from "./stripe/provider";
export { cancel, changePlan, subscribe, type BillingChangeResult } from "./subscriptions/changes";
export { handleSubscriptionEvent } from "./subscriptions/events";
export {
  findLiveSubscription,
  getCurrentSubscription,
  getOrganizationOverview,
} from "./subscriptions/overview";
export { compSubscription, lockOrganization } from "./subscriptions/store";
export { createBillingModule, type BillingHooks, type BillingModule } from "./module";
