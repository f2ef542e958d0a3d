import { ERROR_CODES, isTransientCode, statusesOf, type ErrorCode } from "@zigznote/shared";
import { SCOPES, scopesForRole } from "./scopes";

/** The codes whose answers an Idempotency-Key does not keep (they ask for a retry). */
const TRANSIENT_CODES = (Object.keys(ERROR_CODES) as ErrorCode[])
  .filter(isTransientCode)
  .map((code) => `${statusesOf(code).join("/")} \`${code}\``)
  .join(", ");

/**
 * The document's introduction (`info.description`, the top of `/docs`): how to authenticate, what
 * scopes mean, how errors and pages work. The scope table is built from `scopes.ts`, the same
 * list the guards check.
 */
export function apiGuide(): string {
  const memberScopes = new Set(scopesForRole("member"));
  const scopeRows = SCOPES.map(
    (scope) => `| \`${scope}\` | yes | ${memberScopes.has(scope) ? "yes" : "no"} |`,
  ).join("\n");
  return `Meeting notes: recording bots through Recall.ai, billing through Stripe, sign-in through Clerk and API keys.

## Authentication

Every \`/api/v1\` operation takes one credential in \`Authorization: Bearer <credential>\`:

- **A session token** (a person, from a browser or app): the Clerk session JWT your front end gets
  from Clerk (\`getToken()\`). It must name an active organization (\`org_id\`), or the API answers
  403 \`NO_ACTIVE_ORGANIZATION\`; the caller's role in it (\`admin\` or \`member\`) decides the
  scopes below. An expired token is 401 \`TOKEN_EXPIRED\`: refresh it and retry. For local
  development, \`pnpm -s dev:token --org acme --role admin\` prints a token the server trusts
  only with the embedded database, neither \`CLERK_JWT_KEY\` nor \`CLERK_SECRET_KEY\` set, and
  \`NODE_ENV\` other than production (see the README's quick start).
- **An API key** (a server): \`zn_...\`, created by an organization admin with
  \`POST /api/v1/api-keys\`, holding the scopes chosen then. It is shown once and stored hashed.
  A revoked or expired key is 401 \`API_KEY_REVOKED\` / \`API_KEY_EXPIRED\`. Repeated failed
  attempts from one address are locked out for a while: 429 \`TOO_MANY_REQUESTS\` with
  \`Retry-After\`, whatever instance answers.

Each operation states what it requires: a scope (\`x-required-scope\`, and in its description),
or an admin's session (\`x-required-role: admin\`: API key management and billing changes,
which API keys can never perform, whatever their scopes). Missing one is 403
\`INSUFFICIENT_SCOPE\` or \`ADMIN_REQUIRED\`.

| scope | admins | members |
| --- | --- | --- |
${scopeRows}

API keys hold exactly the scopes they were created with.

## Errors

Every error has one body: \`{ "error": { "code", "message", "details" }, "requestId" }\`.
Branch on \`code\` (stable; each operation lists the codes it can answer, per status), show
\`message\` to people, and quote \`requestId\` when asking for help. \`details\` is always an
object (\`{}\` when there is nothing to add); validation errors list each field in
\`details.fields\`. 429 and most 503 answers carry \`Retry-After\` (seconds). Writes refused by
billing answer 402 \`SUBSCRIPTION_SUSPENDED\` (pay the open invoice) or 403 \`PLAN_LIMIT_*\`
(upgrade, or free what the plan limits); nothing is written when a request fails.

## Retries and Idempotency-Key

Every write (\`POST\`, \`PATCH\`, \`DELETE\` under \`/api/v1\`) takes an optional
\`Idempotency-Key\` header: 1 to 255 printable ASCII characters, a fresh UUID per logical request,
scoped to your organization. Send the same key again when you retry (after a timeout, a dropped
connection, a 5xx) and the write happens at most once:

- The first request runs; its answer (status, body, \`Location\`) is kept for 24 hours and a
  repeat with the same key and the same request (method, path, JSON body) gets it again, with
  \`Idempotent-Replayed: true\`, without running anything.
- While the first request still runs, a repeat gets 409 \`IDEMPOTENCY_KEY_IN_USE\` with
  \`Retry-After\`: wait and repeat to get its answer. The server running the request renews its
  claim on the key as long as it runs, and \`Retry-After\` is then 1 (the answer may come any
  moment). If that server stopped (a crash), the claim is no longer renewed and lapses 30 seconds
  (by default) after its last renewal; once it has gone unrenewed for half that time,
  \`Retry-After\` is the seconds until it lapses, and a repeat after that runs the request.
- The same key with another request is 422 \`IDEMPOTENCY_KEY_REUSED\`: a new request needs a new
  key. A malformed key is 400 \`INVALID_IDEMPOTENCY_KEY\`.
- Nothing is kept when the request was refused before it ran (credentials, rate limit, scope,
  billing, invalid input: 400) or failed with a 5xx: correct it or retry with the same key and it
  runs for real. Nor when the refusal holds only for the moment and asks you to retry
  (${TRANSIENT_CODES}): the retry with the same key runs again. Other 4xx answers
  (404, 409 \`ALREADY_MEMBER\`, ...) are kept and replayed, with \`Idempotent-Replayed: true\`
  like a success.

Where a write is one database transaction (meetings, API keys, admin actions) its answer is stored
in that transaction. The typed client (\`packages/api-client\`) sends a key with every write and
retries network errors, 5xx, 429 and 409 \`IDEMPOTENCY_KEY_IN_USE\` with backoff, honouring
\`Retry-After\`. A created API key's answer holds its secret: it is stored encrypted with a key
derived from your \`Idempotency-Key\`, which the server does not keep.

## Request budgets

Each organization has a budget of requests per minute, shared by all its API keys and users, set
by its plan (by default 120 on Free, 600 on Pro, 3,000 on Business). Every answer says where you
stand, in the IETF RateLimit fields: \`RateLimit-Policy: "organization";q=600;w=60\` (the budget
per 60 s window) and \`RateLimit: "organization";r=42;t=17\` (42 left, the window resets in 17 s).
Past the budget the API answers 429 \`RATE_LIMITED\` with \`Retry-After\`. The window is fixed,
not sliding: it starts with the first request it counts and resets \`t\` seconds later, so a burst
at the end of one window and another at the start of the next can pass up to twice the budget
within seconds; pace requests by \`r\` and \`t\`. A plan change applies to sessions at once and
to API keys within a minute (by default: keys are cached). Requests whose credentials fail count
against your address instead (\`"address"\`), as do unknown paths (404) and methods (405).
\`/health\`, \`/metrics\`, the docs and the webhooks are not counted.

## Pages

Lists are newest first, \`limit\` items at a time; pass \`nextCursor\` back as \`cursor\` until
it is \`null\`.

## Webhooks

\`/webhooks/{recall,stripe,clerk}\` are called by the providers, signed with their secrets, and
take effect exactly once per event.`;
}
