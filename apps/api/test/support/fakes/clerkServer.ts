/**
 * A local stand-in for Clerk's Backend API (the parts our API calls), for tests and benchmarks.
 * It listens on 127.0.0.1 (port 0: any free port); the app reaches it through the real
 * `@clerk/backend` SDK with `CLERK_API_URL` and `CLERK_SECRET_KEY`.
 *
 *   POST /v1/organizations/{organization_id}/memberships   { user_id, role }
 *        -> 200 organization_membership JSON (as Clerk's, snake_case, `object` fields)
 *        -> 404 { errors: [{ code: "resource_not_found" }] } for an unknown user or organization
 *        -> 400 { errors: [{ code: "already_a_member_in_organization" }] } for a member
 *        -> 422 { errors: [{ code: "form_param_value_invalid" }] } for a role Clerk lacks
 *
 * Like Clerk: every request needs `Authorization: Bearer <secretKey>` (else 401
 * `authentication_invalid`), JSON answers carry `Content-Type: application/json` exactly (the
 * SDK reads nothing else as JSON), errors are `{ errors: [{ code, message, long_message }] }`.
 *
 * Usage:
 *   const clerk = await startFakeClerk();       // { secretKey: "sk_test_fake" }
 *   env: { CLERK_API_URL: clerk.baseUrl, CLERK_SECRET_KEY: clerk.secretKey }
 *   clerk.addOrganization("org_1", "Acme"); clerk.addUser("user_1")
 *   clerk.memberships                            // created memberships (JSON as answered)
 *   clerk.requests                               // method, path, body of every request
 *   clerk.failNext({ status: 503 }) / ({ hang: true }) / ({ reset: true })
 *   clerk.setLatency(ms)                         // delay every answer
 *   await clerk.close()
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { listenLocally } from "./listen";
import { failSilently } from "./silentFailure";

export interface FakeClerkRequest {
  method: string;
  path: string;
  body: unknown;
}

export type FakeClerkFailure = { status: number; code?: string } | { hang: true } | { reset: true };

export interface FakeClerk {
  baseUrl: string;
  secretKey: string;
  requests: FakeClerkRequest[];
  /** Memberships created, as answered (Clerk's JSON). */
  memberships: Record<string, unknown>[];
  addOrganization(id: string, name?: string): void;
  addUser(id: string, names?: { firstName?: string; lastName?: string }): void;
  failNext(failure: FakeClerkFailure, options?: { times?: number }): void;
  setLatency(ms: number): void;
  close(): Promise<void>;
}

interface StoredOrganization {
  id: string;
  name: string;
  createdAt: number;
  updatedAt: number;
}

interface StoredUser {
  id: string;
  firstName: string | null;
  lastName: string | null;
}

const JSON_TYPE = "application/json";

export async function startFakeClerk(options: { secretKey?: string } = {}): Promise<FakeClerk> {
  const secretKey = options.secretKey ?? "sk_test_fake";
  const organizations = new Map<string, StoredOrganization>();
  const users = new Map<string, StoredUser>();
  const memberOf = new Set<string>();
  const requests: FakeClerkRequest[] = [];
  const memberships: Record<string, unknown>[] = [];
  const failures: FakeClerkFailure[] = [];
  const hanging = new Set<ServerResponse>();
  const sockets = new Set<Socket>();
  let latencyMs = 0;

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "Content-Type": JSON_TYPE });
    res.end(JSON.stringify(body));
  };
  const clerkError = (res: ServerResponse, status: number, code: string, message: string) =>
    send(res, status, {
      errors: [{ code, message, long_message: message, meta: {} }],
      clerk_trace_id: randomUUID(),
    });

  const readBody = async (req: IncomingMessage): Promise<unknown> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    return text ? (JSON.parse(text) as unknown) : null;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://fake").pathname;
    const body = await readBody(req);
    requests.push({ method: req.method ?? "", path, body });
    if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
    if (req.headers.authorization !== `Bearer ${secretKey}`) {
      clerkError(res, 401, "authentication_invalid", "Invalid secret key");
      return;
    }
    const failure = failures.shift();
    if (failure) {
      if (failSilently(failure, req, res, hanging)) return;
      clerkError(res, failure.status, failure.code ?? "internal_clerk_error", "Injected failure");
      return;
    }
    const match = /^\/v1\/organizations\/([^/]+)\/memberships$/.exec(path);
    if (req.method === "POST" && match) {
      const organization = organizations.get(decodeURIComponent(match[1]!));
      const input = (body ?? {}) as { user_id?: unknown; role?: unknown };
      const user = typeof input.user_id === "string" ? users.get(input.user_id) : undefined;
      if (!organization || !user) {
        clerkError(res, 404, "resource_not_found", "Resource not found");
        return;
      }
      if (input.role !== "org:admin" && input.role !== "org:member") {
        clerkError(res, 422, "form_param_value_invalid", "role is invalid");
        return;
      }
      const pair = `${organization.id}/${user.id}`;
      if (memberOf.has(pair)) {
        clerkError(
          res,
          400,
          "already_a_member_in_organization",
          "User is already a member of the organization",
        );
        return;
      }
      memberOf.add(pair);
      const now = Date.now();
      const membership = {
        object: "organization_membership",
        id: `orgmem_${randomUUID().replace(/-/g, "")}`,
        role: input.role,
        permissions: [],
        public_metadata: {},
        private_metadata: {},
        created_at: now,
        updated_at: now,
        organization: {
          object: "organization",
          id: organization.id,
          name: organization.name,
          slug: organization.id,
          image_url: "",
          has_image: false,
          members_count: null,
          pending_invitations_count: null,
          max_allowed_memberships: 0,
          admin_delete_enabled: true,
          public_metadata: {},
          private_metadata: {},
          created_by: "",
          created_at: organization.createdAt,
          updated_at: organization.updatedAt,
        },
        public_user_data: {
          identifier: `${user.id}@example.test`,
          first_name: user.firstName,
          last_name: user.lastName,
          image_url: "",
          has_image: false,
          user_id: user.id,
        },
      };
      memberships.push(membership);
      send(res, 200, membership);
      return;
    }
    clerkError(res, 404, "resource_not_found", `No route ${req.method} ${path}`);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      clerkError(res, 500, "internal_clerk_error", String(error));
    });
  });
  const baseUrl = await listenLocally(server, sockets);

  return {
    baseUrl,
    secretKey,
    requests,
    memberships,
    addOrganization(id, name = id) {
      // Clerk's organization times are older than any membership made now.
      const at = Date.now() - 60_000;
      organizations.set(id, { id, name, createdAt: at, updatedAt: at });
    },
    addUser(id, names = {}) {
      users.set(id, { id, firstName: names.firstName ?? null, lastName: names.lastName ?? null });
    },
    failNext(failure, { times = 1 } = {}) {
      for (let i = 0; i < times; i += 1) failures.push(failure);
    },
    setLatency(ms) {
      latencyMs = ms;
    },
    async close() {
      for (const res of hanging) res.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
