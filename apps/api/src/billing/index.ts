/**
 * Billing: plans, Stripe subscriptions, the payment grace period, plan violations and the write
 * guard. Other features use what is exported here only.
 */
export { assertCanWrite, createWriteGuards, guardWrite, type WriteCheckInput } from "./access";
export { createAppBilling, type AppBilling, type AppBillingParts } from "./appBilling";
export {
  cancel,
  changePlan,
  findLiveSubscription,
  getCurrentSubscription,
  getOrganizationOverview,
  listPlans,
  subscribe,
  type BillingChangeResult,
  type BillingDeps,
} from "./BillingService";
export { billingRoutes, type BillingRouteDeps } from "./routes";
export { BillingCustomerSchema, DisputeSchema, PendingConfirmationSchema } from "./schemas";
export {
  openBillingPortal,
  previewPlanChange,
  startCheckout,
  type PlanChangePreview,
} from "./checkout";
export {
  getBillingDetails,
  listOrganizationDisputes,
  summarizeOpenDisputes,
  type BillingDetailsJson,
  type DisputeJson,
} from "./billingDetails";
export { assertNoOpenDispute } from "./disputes";
export { warnExpiringCards } from "./expiringCards";
export { isNoticeObsolete } from "./noticeRelevance";
export { type BillingEventDeps, type BillingSettings, FREE_PLAN_SLUG } from "./settings";
export {
  handlePaymentFailed,
  handlePaymentSucceeded,
  handleSubscriptionEvent,
  stripeEventHandlers,
  suspendExpiredGracePeriods,
} from "./stripeEvents";
export { createStripeClient, stripeSettingsFromConfig, type StripeClient } from "./stripeProvider";
export { registerStripeHandlers } from "./stripeWebhooks";
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
} from "./violations";
