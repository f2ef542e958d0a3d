import type { RouteDefinition } from "../http/route";
import type { AdminDeps } from "./deps";
import { adminRoutes } from "./routes";

export interface AdminModule {
  routes: RouteDefinition[];
}

/** The platform admins' API (`/api/v1/admin`); the app's jobs are handed in with `deps.jobs`. */
export function createAdminModule(deps: AdminDeps): AdminModule {
  return { routes: adminRoutes(deps) };
}
