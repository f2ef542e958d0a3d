/**
 * `pnpm -s dev:token --org acme --role admin`: prints a session token that a development server
 * on the embedded database accepts (lib/devSessionKey.ts), for `Authorization: Bearer <token>`.
 * The first request carrying it creates the user, the organization and the membership, as for a
 * Clerk token. Only the token goes to stdout, so `TOKEN=$(pnpm -s dev:token ...)` works.
 */
import { parseArgs } from "node:util";
import { loadConfigOrReport } from "../config";
import {
  devSessionKeyRefusal,
  loadOrCreateDevSessionKey,
  signDevSessionToken,
} from "../lib/devSessionKey";

const USAGE = `usage: dev:token [--org <slug>] [--role admin|member] [--user <name>] [--ttl <lifetime>] [--platform-admin]
  --org   organization slug (default acme); its Clerk id is org_dev_<slug>
  --role  admin (default) or member
  --user  user name (default dev); its Clerk id is user_dev_<name>
  --ttl   lifetime: seconds, or 90m, 12h, 7d (default 24h)
  --platform-admin  the token carries the platform-admin claim (admin console, /api/v1/admin)`;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

function parseTtlSeconds(value: string): number | null {
  const match = /^(\d{1,7})([smhd]?)$/.exec(value);
  if (!match) return null;
  const seconds = Number(match[1]) * (UNIT_SECONDS[match[2] || "s"] ?? 1);
  return seconds > 0 && seconds <= 30 * 86_400 ? seconds : null;
}

function main(argv: string[]): number {
  let values: {
    org: string;
    role: string;
    user: string;
    ttl: string;
    "platform-admin"?: boolean;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      // `pnpm dev:token -- --org x` hands the separator on.
      args: argv[0] === "--" ? argv.slice(1) : argv,
      options: {
        org: { type: "string", default: "acme" },
        role: { type: "string", default: "admin" },
        user: { type: "string", default: "dev" },
        ttl: { type: "string", default: "24h" },
        "platform-admin": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    console.error(`dev:token: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.error(USAGE);
    return 0;
  }
  const ttlSeconds = parseTtlSeconds(values.ttl);
  const role = values.role === "admin" || values.role === "member" ? values.role : null;
  if (!NAME.test(values.org) || !NAME.test(values.user) || !role || ttlSeconds === null) {
    console.error(`dev:token: bad --org, --user, --role or --ttl (at most 30d)\n${USAGE}`);
    return 2;
  }

  const config = loadConfigOrReport();
  if (!config) return 1;
  const refusal = devSessionKeyRefusal(config, !config.DATABASE_URL);
  if (refusal !== null) {
    console.error(
      `dev:token: a server with this configuration does not accept development tokens (${refusal}).`,
    );
    return 1;
  }

  const privateKey = loadOrCreateDevSessionKey(config.DEV_SESSION_KEY_FILE);
  const userId = `user_dev_${values.user}`;
  const orgId = `org_dev_${values.org}`;
  const token = signDevSessionToken(privateKey, {
    userId,
    orgId,
    orgSlug: values.org,
    role,
    ttlSeconds,
    isPlatformAdmin: values["platform-admin"] === true,
  });
  process.stdout.write(`${token}\n`);
  console.error(
    `dev:token: ${userId}, ${role} of ${values.org} (${orgId})` +
      `${values["platform-admin"] ? ", platform admin" : ""}, valid ${values.ttl}. ` +
      `Try: curl -H "Authorization: Bearer $TOKEN" localhost:${config.PORT}/api/v1/me`,
  );
  return 0;
}

process.exitCode = main(process.argv.slice(2));
