import { randomUUID } from "node:crypto";
import { createPrismaClient } from "@zigznote/database";
import { createOrganization } from "@zigznote/database/testing";
import { systemClock } from "../../src/lib/clock";
import { createLogger } from "../../src/lib/logger";
import { createProviderCalls } from "../../src/providerCalls";
import { testDatabaseUrl } from "../support/env";

/**
 * A provider's refusal is recorded on its call (`last_error`) whatever its text holds: U+0000
 * (a binary answer quoted in a message) and a cut that falls inside a surrogate pair, which
 * PostgreSQL's text cannot hold, are recorded as U+FFFD (lib/text.ts). Before, the record failed in
 * turn: the call stayed in progress, with no error recorded, until its claim ran out.
 */

const db = createPrismaClient(testDatabaseUrl, { maxConnections: 4 });
afterAll(() => db.$disconnect());

describe("a provider call that fails", () => {
  it.each([
    ["U+0000", "provider said \u0000\u0001", "provider said \uFFFD\u0001"],
    // The record keeps 2,000 UTF-16 units: the cut falls between the halves of the emoji.
    [
      "a surrogate pair cut at the limit",
      `${"a".repeat(1999)}\u{1F600}`,
      `${"a".repeat(1999)}\uFFFD`,
    ],
  ])("records a failure whose text holds %s", async (_, text, recorded) => {
    const kind = `test.fails.${randomUUID()}`;
    const calls = createProviderCalls({
      db,
      clock: systemClock,
      logger: createLogger("silent"),
    });
    calls.register(kind, () => Promise.reject(new Error(text)));
    const organization = await createOrganization(db);
    const target = randomUUID();
    expect(
      await calls.enqueue(db, [{ organizationId: organization.id, kind, target, reason: "test" }]),
    ).toBe(1);
    // Made once queued (outside a transaction: at once).
    await calls.idle();
    expect(await db.providerCall.findFirstOrThrow({ where: { kind, target } })).toMatchObject({
      status: "pending",
      attempts: 1,
      lastError: recorded,
    });
  });
});
