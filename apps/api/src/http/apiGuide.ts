import { SCOPES, scopesForRole } from "./scopes";

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
  only with the embedded database and no \`CLERK_JWT_KEY\` (see the README's quick start).
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

## Pages

Lists are newest first, \`limit\` items at a time; pass \`nextCursor\` back as \`cursor\` until
it is \`null\`.

## Webhooks

\`/webhooks/{recall,stripe,clerk}\` are called by the providers, signed with their secrets, and
take effect exactly once per event.`;
}
