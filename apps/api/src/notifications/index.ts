/** Notifications: the outbox of notices (dunning, plan violations) and their delivery by e-mail. */
export { createNotices, type Notices, type NoticesDeps } from "./notices";
export {
  createLoggingTransport,
  deliverPendingNotifications,
  enqueueAdminNotices,
  PermanentDeliveryError,
  retryDelayMs,
  type AdminNotice,
  type DeliverDeps,
  type DeliverOptions,
  type DeliveryOutcome,
  type DeliveryResult,
  type NotificationTransport,
  type ObsoleteCheck,
  type OutboxMessage,
} from "./outbox";
export {
  billingPageUrl,
  cardUpdatePageUrl,
  createEmailTransport,
  noticeMessageId,
  renderNoticeEmail,
  type EmailSettings,
} from "./emailTransport";
export { EMAIL_SAMPLES } from "./emailSamples";
export { formatAmount, formatDate } from "./emailContent";
export { EMAIL_TEMPLATES } from "./emailTemplates";
export { escapeHtml, renderEmail } from "./emailRender";
export { noticeRoutes, type NoticeRouteDeps } from "./routes";
export { requeueNotice, type OperatorRecipients } from "./store";
export { createNotificationsModule, type NotificationsModule } from "./module";
