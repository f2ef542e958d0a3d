import { generateKeyPairSync } from "node:crypto";
import path from "node:path";
import { ConfigError, loadConfig } from "./config";

function publicKeyPem(
  options: { type: "rsa"; modulusLength: number } | { type: "ec"; namedCurve: string },
): string {
  const { publicKey } =
    options.type === "rsa"
      ? generateKeyPairSync("rsa", { modulusLength: options.modulusLength })
      : generateKeyPairSync("ec", { namedCurve: options.namedCurve });
  return publicKey.export({ type: "spki", format: "pem" }).toString();
}

function configErrorOf(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("loadConfig accepted the environment");
}

describe("loadConfig", () => {
  it("keeps the local data in apps/api/.data by default, whatever the working directory", () => {
    const apiDir = path.resolve(__dirname, "..");
    const config = loadConfig({});
    expect(config.EMBEDDED_DB_DIR).toBe(path.join(apiDir, ".data/pglite"));
    expect(config.STORAGE_DIR).toBe(path.join(apiDir, ".data/storage"));
    expect(config.DEV_SESSION_KEY_FILE).toBe(path.join(apiDir, ".data/dev-session-key.pem"));
    // A path the environment gives is taken as given (relative to the process's directory).
    expect(loadConfig({ EMBEDDED_DB_DIR: "db" }).EMBEDDED_DB_DIR).toBe("db");
  });

  it("applies the documented defaults to an empty environment", () => {
    const config = loadConfig({});
    expect(config.PORT).toBe(3001);
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.REDIS_URL).toBeUndefined();
    expect(config.TRUST_PROXY).toBe(false);
    expect(config.JOBS_ENABLED).toBe(true);
    expect(config.JSON_BODY_LIMIT).toBe("1mb");
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("defaults Recall to its us-east-1 region with bounded retries, and rejects a bad URL", () => {
    const config = loadConfig({});
    expect(config.RECALL_API_BASE_URL).toBe("https://us-east-1.recall.ai");
    expect(config.RECALL_API_KEY).toBeUndefined();
    expect(config.RECALL_TIMEOUT_MS).toBe(10_000);
    expect(config.RECALL_BOT_NAME).toBe("zigznote");
    expect(() => loadConfig({ RECALL_API_BASE_URL: "not a url" })).toThrow(/RECALL_API_BASE_URL/);
  });

  it("bounds the waits on the database, statements within the webhook transaction timeout", () => {
    const config = loadConfig({});
    expect(config.DATABASE_STATEMENT_TIMEOUT_MS).toBe(10_000);
    expect(config.DATABASE_POOL_TIMEOUT_MS).toBe(5_000);
    expect(() => loadConfig({ DATABASE_STATEMENT_TIMEOUT_MS: "14500" })).toThrow(
      /DATABASE_STATEMENT_TIMEOUT_MS: must be at least 1000 ms below WEBHOOK_TRANSACTION_TIMEOUT_MS/,
    );
    expect(
      loadConfig({
        DATABASE_STATEMENT_TIMEOUT_MS: "29000",
        WEBHOOK_TRANSACTION_TIMEOUT_MS: "30000",
      }).DATABASE_STATEMENT_TIMEOUT_MS,
    ).toBe(29_000);
    expect(() => loadConfig({ DATABASE_POOL_TIMEOUT_MS: "0" })).toThrow(/DATABASE_POOL_TIMEOUT_MS/);
  });

  it("treats empty strings as unset", () => {
    expect(loadConfig({ DATABASE_URL: "", REDIS_URL: " " }).DATABASE_URL).toBeUndefined();
  });

  it("parses TRUST_PROXY as Express understands it", () => {
    expect(loadConfig({ TRUST_PROXY: "true" }).TRUST_PROXY).toBe(true);
    expect(loadConfig({ TRUST_PROXY: "2" }).TRUST_PROXY).toBe(2);
    expect(loadConfig({ TRUST_PROXY: "loopback, 10.0.0.0/8" }).TRUST_PROXY).toEqual([
      "loopback",
      "10.0.0.0/8",
    ]);
  });

  it("refuses a TRUST_PROXY entry Express could not use, naming the variable and the entry", () => {
    expect(() => loadConfig({ TRUST_PROXY: "loopback, 10.0.0.300" })).toThrow(
      /TRUST_PROXY.*10\.0\.0\.300/,
    );
    expect(() => loadConfig({ TRUST_PROXY: "proxy.internal" })).toThrow(ConfigError);
  });

  it("reads the Clerk and API key settings", () => {
    const pem = publicKeyPem({ type: "rsa", modulusLength: 2048 });
    const config = loadConfig({
      // As env files carry it: on one line with literal "\n" escapes.
      CLERK_JWT_KEY: pem.trim().replace(/\n/g, "\\n"),
      CLERK_AUTHORIZED_PARTIES: "https://app.example, http://localhost:3000",
    });
    expect(config.CLERK_JWT_KEY).toBe(pem);
    expect(config.CLERK_AUTHORIZED_PARTIES).toEqual([
      "https://app.example",
      "http://localhost:3000",
    ]);
    expect(config.API_KEY_MAX_FAILURES).toBe(10);
    expect(config.API_KEY_IP_MAX_FAILURES).toBe(50);
    expect(config.API_KEY_LOCKOUT_SECONDS).toBe(900);
    expect(() => loadConfig({ API_KEY_MAX_FAILURES: "0" })).toThrow(ConfigError);
  });

  it("names every bad variable in one readable error", () => {
    let caught: unknown;
    try {
      loadConfig({ PORT: "eighty", DATABASE_URL: "mysql://x", JOBS_ENABLED: "maybe" });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const message = (caught as ConfigError).message;
    expect(message).toMatch(/^Invalid configuration:/);
    expect(message).toContain("PORT");
    expect(message).toContain("DATABASE_URL");
    expect(message).toContain("JOBS_ENABLED");
    expect((caught as ConfigError).issues).toHaveLength(3);
  });

  it("reads the e-mail settings: log by default, smtp needs SMTP_URL, bad values name the variable", () => {
    const defaults = loadConfig({});
    expect(defaults.EMAIL_TRANSPORT).toBe("log");
    expect(defaults.SMTP_URL).toBeUndefined();
    expect(defaults.EMAIL_FROM).toBe("zigznote <notices@zigznote.localhost>");
    expect(defaults.APP_URL).toBe("http://localhost:3000");
    const smtp = loadConfig({
      EMAIL_TRANSPORT: "smtp",
      SMTP_URL: "smtp://user:secret@mail.example.com:587",
      EMAIL_FROM: "Acme Notes <notes@acme.example>",
      APP_URL: "https://app.acme.example",
    });
    expect(smtp).toMatchObject({
      EMAIL_TRANSPORT: "smtp",
      SMTP_URL: "smtp://user:secret@mail.example.com:587",
      EMAIL_FROM: "Acme Notes <notes@acme.example>",
      APP_URL: "https://app.acme.example",
    });
    const issues = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (error) {
        return (error as ConfigError).issues;
      }
      return [];
    };
    expect(issues({ EMAIL_TRANSPORT: "smtp" })).toEqual([
      "SMTP_URL: is required when EMAIL_TRANSPORT=smtp",
    ]);
    expect(issues({ EMAIL_TRANSPORT: "sendgrid" })[0]).toMatch(/^EMAIL_TRANSPORT: /);
    expect(issues({ SMTP_URL: "http://mail.example.com" })[0]).toMatch(/^SMTP_URL: /);
    expect(issues({ EMAIL_FROM: "not an address" })[0]).toMatch(/^EMAIL_FROM: /);
    expect(issues({ APP_URL: "javascript:alert(1)" })[0]).toMatch(/^APP_URL: /);
  });

  it("accepts CLERK_JWT_KEY as the bare base64 body Clerk also accepts", () => {
    const pem = publicKeyPem({ type: "rsa", modulusLength: 2048 });
    const body = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
    expect(loadConfig({ CLERK_JWT_KEY: body }).CLERK_JWT_KEY).toBe(pem);
  });

  it.each([
    ["not a pem", "not a pem", /not a readable key/],
    [
      "a PEM whose body is not a key",
      "-----BEGIN PUBLIC KEY-----\\nMIIB\\n-----END PUBLIC KEY-----",
      /not a readable key/,
    ],
    [
      "a private key",
      generateKeyPairSync("rsa", { modulusLength: 2048 })
        .privateKey.export({ type: "pkcs8", format: "pem" })
        .toString(),
      /private key/,
    ],
    ["an EC key", publicKeyPem({ type: "ec", namedCurve: "P-256" }), /RSA 2048-bit.*ec key/],
    [
      "an RSA key of another size",
      publicKeyPem({ type: "rsa", modulusLength: 1024 }),
      /RSA 2048-bit.*rsa 1024-bit/,
    ],
  ])("refuses CLERK_JWT_KEY set to %s, naming the variable", (_label, value, problem) => {
    const error = configErrorOf({ CLERK_JWT_KEY: value });
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]).toMatch(/^CLERK_JWT_KEY: /);
    expect(error.issues[0]).toMatch(problem);
    expect(error.message).not.toContain("MIIB");
  });

  it("reads platform admins' Clerk user ids and the allowed origins, and refuses malformed ones", () => {
    const config = loadConfig({
      PLATFORM_ADMIN_USER_IDS: " user_2abc , user_dev_ops ",
      ADMIN_ALLOWED_ORIGINS: "https://ops.example.com,http://localhost:5173",
    });
    expect(config.PLATFORM_ADMIN_USER_IDS).toEqual(["user_2abc", "user_dev_ops"]);
    expect(config.ADMIN_ALLOWED_ORIGINS).toEqual([
      "https://ops.example.com",
      "http://localhost:5173",
    ]);
    expect(loadConfig({}).PLATFORM_ADMIN_USER_IDS).toEqual([]);
    expect(
      configErrorOf({ PLATFORM_ADMIN_USER_IDS: "user_2abc,alice@example.com" }).message,
    ).toMatch(/PLATFORM_ADMIN_USER_IDS/);
    expect(configErrorOf({ ADMIN_ALLOWED_ORIGINS: "https://ops.example.com/" }).message).toMatch(
      /ADMIN_ALLOWED_ORIGINS/,
    );
  });

  it("reads the Checkout options, the dispute restriction and the operators' addresses, off and empty by default", () => {
    const defaults = loadConfig({});
    expect(defaults).toMatchObject({
      STRIPE_AUTOMATIC_TAX: false,
      STRIPE_TAX_ID_COLLECTION: false,
      STRIPE_ALLOW_PROMOTION_CODES: false,
      STRIPE_TRIAL_DAYS: 0,
      DISPUTE_READ_ONLY: false,
      PLATFORM_ADMIN_EMAILS: [],
    });
    const config = loadConfig({
      STRIPE_AUTOMATIC_TAX: "true",
      STRIPE_TAX_ID_COLLECTION: "1",
      STRIPE_ALLOW_PROMOTION_CODES: "yes",
      STRIPE_TRIAL_DAYS: "14",
      DISPUTE_READ_ONLY: "true",
      PLATFORM_ADMIN_EMAILS: "ops@example.com, billing-team@example.com",
    });
    expect(config).toMatchObject({
      STRIPE_AUTOMATIC_TAX: true,
      STRIPE_TAX_ID_COLLECTION: true,
      STRIPE_ALLOW_PROMOTION_CODES: true,
      STRIPE_TRIAL_DAYS: 14,
      DISPUTE_READ_ONLY: true,
      PLATFORM_ADMIN_EMAILS: ["ops@example.com", "billing-team@example.com"],
    });
    // Stripe allows trials of 1 to 730 days.
    expect(configErrorOf({ STRIPE_TRIAL_DAYS: "731" }).message).toMatch(/STRIPE_TRIAL_DAYS/);
    expect(configErrorOf({ STRIPE_TRIAL_DAYS: "-1" }).message).toMatch(/STRIPE_TRIAL_DAYS/);
    expect(configErrorOf({ STRIPE_AUTOMATIC_TAX: "maybe" }).message).toMatch(
      /STRIPE_AUTOMATIC_TAX/,
    );
    expect(
      configErrorOf({ PLATFORM_ADMIN_EMAILS: "ops@example.com,not-an-address" }).message,
    ).toMatch(/PLATFORM_ADMIN_EMAILS/);
  });
});
