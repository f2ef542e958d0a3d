/** Notifications: the outbox of notices (dunning, plan violations) and their delivery. */
export { createNotices, type Notices, type NoticesDeps } from "./notices";
export {
  createLoggingTransport,
  deliverPendingNotifications,
  enqueueAdminNotices,
  type AdminNotice,
  type DeliverDeps,
  type DeliverOptions,
  type DeliveryResult,
  type NotificationTransport,
} from "./outbox";
