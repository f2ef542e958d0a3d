import type { RouteDefinition } from "../http/route";
import type { JobDefinition } from "../lib/job";
import { MINUTE_MS } from "../lib/time";
import { createNotices, type Notices, type NoticesDeps } from "./notices";
import { noticeRoutes } from "./routes";

export interface NotificationsModule {
  routes: RouteDefinition[];
  jobs: JobDefinition[];
  /** The outbox other features queue their notices in (in their transactions). */
  notices: Notices;
}

/** Notifications as one app uses them: the outbox, `GET /notices` and the delivery job. */
export function createNotificationsModule(deps: NoticesDeps): NotificationsModule {
  const notices = createNotices(deps);
  return {
    notices,
    routes: noticeRoutes({ db: deps.db }),
    jobs: [
      {
        name: "deliverNotifications",
        schedule: "* * * * *",
        leaseMs: 10 * MINUTE_MS,
        description: "Send pending notices from the outbox (those not sent right after commit)",
        async run({ now }) {
          const result = await notices.deliverNow(now);
          return { rowsAffected: result.sent, summary: { ...result } };
        },
      },
    ],
  };
}
