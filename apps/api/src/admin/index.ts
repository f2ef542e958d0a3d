/** Admin: the platform admins' API (`/api/v1/admin`): overview, violations, actions, audit log. */
export { adminRoutes } from "./routes";
export type { AdminDeps, AdminJobInfo, AdminJobOutcome, AdminJobs } from "./deps";
export { createAdminModule, type AdminModule } from "./module";
