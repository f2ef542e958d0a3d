import type { Server } from "node:http";
import { createMeeting } from "@zigznote/database/testing";
import fc from "fast-check";
import request from "supertest";
import { z } from "zod";
import type { RouteDefinition } from "../../src/http/route";
import { authHeaderFor, platformAdminHeadersFor } from "../support/auth";
import { FakeStripeServer } from "../support/fakes/stripeServer";
import { startFakeRecall, type FakeRecall } from "../support/fakes/recallServer";
import { createTestApp, type TestApp } from "../support/helpers";
import { closeServer, listen } from "../support/recallEvents";
import { organizationRowSnapshot } from "../support/rowSnapshot";

/**
 * Property: whatever body a caller sends to a write route of the API (arbitrary Unicode, U+0000,
 * lone surrogates, very long strings, wrong types, unknown fields), the answer is never a 5xx,
 * and a refused request (4xx) leaves everything stored for the organization as it was. A body
 * holding text PostgreSQL cannot store is always a 400 VALIDATION_ERROR naming where it is.
 *
 * The routes are those `ctx.routes.api` declares with a request body, so a new write route is
 * covered without editing this file. Providers are the local fakes, so a well-formed body gets
 * all the way through (a bot is created, a plan is subscribed to) and the property also holds
 * for what happens after validation.
 */

const NUM_RUNS = 25;

let recall: FakeRecall;
let stripe: FakeStripeServer;
let testApp: TestApp;
let server: Server;
let organizationId: string;
let meetingId: string;
let headers: { Authorization: string };

beforeAll(async () => {
  recall = await startFakeRecall();
  stripe = await FakeStripeServer.start();
  stripe.addPrice({ id: "price_test_pro", unitAmount: 1900 });
  stripe.addPrice({ id: "price_test_business", unitAmount: 4900 });
  const stripeSettings = stripe.clientSettings();
  testApp = createTestApp({
    env: {
      RECALL_API_BASE_URL: recall.baseUrl,
      RECALL_API_KEY: recall.apiKey,
      STRIPE_SECRET_KEY: stripeSettings.secretKey,
      STRIPE_API_HOST: stripeSettings.host,
      STRIPE_API_PORT: String(stripeSettings.port),
      STRIPE_API_PROTOCOL: stripeSettings.protocol,
    },
  });
  server = (await listen(testApp.app)).server;
  const caller = await authHeaderFor(testApp, { role: "admin" });
  organizationId = caller.organizationId;
  // One token for the whole file (the default lives 60 s). A platform admin too, so that the
  // admin routes' bodies are validated rather than refused with 403 before.
  headers = platformAdminHeadersFor(caller);
  meetingId = (await createMeeting(testApp.ctx.db, { organizationId })).id;
});
afterAll(async () => {
  await testApp.ctx.notices.idle();
  await testApp.ctx.webhooks.idle();
  await closeServer(server);
  await recall.close();
  await stripe.close();
  await testApp.close();
});

/**
 * The routes that read a request body: every write route but the body-less ones (DELETE).
 * Read from a context of their own: the test names are made before the fakes listen.
 */
const declaring = createTestApp();
const routes = declaring.ctx.routes.api.filter(
  (route) =>
    route.method !== "get" &&
    route.operation(declaring.ctx.routes.documentation).request?.body !== undefined,
);
afterAll(() => declaring.close());

/**
 * Whether the route reads a JSON body. PUT .../recording reads a media body: a JSON one is
 * refused whole (415) and its text never read, so the NUL rule below is for the JSON routes.
 */
function readsJson(route: RouteDefinition): boolean {
  return (
    route.operation(declaring.ctx.routes.documentation).request?.body?.content[
      "application/json"
    ] !== undefined
  );
}

/** The field names a route's JSON body declares (so generated bodies hit real fields). */
function declaredFields(route: RouteDefinition): string[] {
  const schema = route.operation(declaring.ctx.routes.documentation).request?.body?.content[
    "application/json"
  ]?.schema;
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

// --- text and bodies ------------------------------------------------------------------------

const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit));
const awkward = fc.constantFrom(
  "\u0000",
  "\uD800",
  "\uDFFF",
  "\uFFFD",
  "😀",
  "é",
  " ",
  "%",
  "/",
  ".",
);

/** Values that pass the schemas, so that generated bodies also get through to the services. */
const plausible = fc.constantFrom(
  "Weekly sync",
  "pro",
  "business",
  "meetings:read",
  "https://meet.google.com/abc-defg-hij",
  "us02web.zoom.us/wc/850123456/join?pwd=x",
  "http://acme.webex.com:8080/../../admin",
  "2099-01-01T00:00:00Z",
);

/** Arbitrary text: any code point, any UTF-16 unit (lone surrogates), awkward characters. */
const anyText = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: "binary", maxLength: 30 }) },
  { weight: 3, arbitrary: fc.string({ unit: codeUnit, maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: awkward, maxLength: 10 }) },
  { weight: 3, arbitrary: plausible },
  {
    weight: 1,
    // Very long: past every field's limit, some past the 1 MB body limit.
    arbitrary: fc
      .tuple(fc.integer({ min: 1_000, max: 1_200_000 }), fc.constantFrom("a", "é", "\u0000"))
      .map(([length, unit]) => unit.repeat(length)),
  },
);

const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: anyText },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null)) },
  { weight: 2, arbitrary: fc.array(fc.oneof(anyText, plausible), { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(anyText, anyText, { maxKeys: 2 }) },
);

/** A string PostgreSQL cannot store: U+0000 or a surrogate that has no partner. */
const poisonedText = fc
  .tuple(anyText, fc.constantFrom("\u0000", "\uD800x", "x\uDC00", "\uDBFF!"), anyText)
  .map(([before, poison, after]) => `${before.slice(0, 20)}${poison}${after.slice(0, 20)}`);

interface Poison {
  /** Where in the body the poisoned string goes: a field's value, or an item of its array. */
  field: string;
  inArray: boolean;
  text: string;
}

function bodyArbitrary(route: RouteDefinition): fc.Arbitrary<{ body: unknown; poison?: Poison }> {
  const fields = declaredFields(route);
  // Mostly the declared fields: strict schemas refuse unknown ones before anything else.
  const key =
    fields.length > 0
      ? fc.oneof(
          { weight: 6, arbitrary: fc.constantFrom(...fields) },
          { weight: 1, arbitrary: anyText },
        )
      : anyText;
  const object = fc.dictionary(key, anyValue, { maxKeys: 5 });
  const poison = fc.record({
    field: fields.length > 0 ? fc.constantFrom(...fields, "unknownField") : fc.constant("field"),
    inArray: fc.boolean(),
    text: poisonedText,
  });
  return fc.oneof(
    { weight: 4, arbitrary: object.map((body) => ({ body })) },
    {
      weight: 4,
      arbitrary: fc.tuple(object, poison).map(([base, p]) => ({
        body: { ...base, [p.field]: p.inArray ? [p.text] : p.text },
        poison: p,
      })),
    },
    {
      // Not an object at all.
      weight: 1,
      arbitrary: fc.oneof(anyText, fc.array(anyValue, { maxLength: 3 })).map((body) => ({ body })),
    },
  );
}

// --- the property ---------------------------------------------------------------------------

it("covers the write routes the app declares", () => {
  const names = routes.map((route) => `${route.method.toUpperCase()} ${route.path}`);
  expect(names).toEqual(
    expect.arrayContaining([
      "POST /api/v1/meetings",
      "PATCH /api/v1/meetings/:id",
      "POST /api/v1/meetings/:id/bot",
      "POST /api/v1/api-keys",
      "POST /api/v1/billing/subscription",
    ]),
  );
});

describe.each(routes.map((route) => [`${route.method.toUpperCase()} ${route.path}`, route]))(
  "%s",
  (_name, route) => {
    it("never answers 5xx; refused bodies write nothing; unstorable text is a 400 naming its field", async () => {
      const path = route.path.replace(/:id\b/g, () => meetingId);
      await fc.assert(
        fc.asyncProperty(bodyArbitrary(route), async ({ body, poison }) => {
          const before = await organizationRowSnapshot(testApp.ctx.db, organizationId);
          const agent = request(server);
          const response = await agent[route.method](path)
            .set(headers)
            .set("Content-Type", "application/json")
            .send(JSON.stringify(body));
          await testApp.ctx.webhooks.idle();

          if (response.status >= 500) {
            throw new Error(`${response.status}: ${JSON.stringify(response.body)}`);
          }
          if (response.status >= 400) {
            expect(await organizationRowSnapshot(testApp.ctx.db, organizationId)).toEqual(before);
          }
          if (!readsJson(route)) expect(response.status).toBe(415);
          if (poison && response.status !== 413 && readsJson(route)) {
            expect(response.status).toBe(400);
            expect(response.body.error.code).toBe("VALIDATION_ERROR");
            const fields = response.body.error.details.fields as { path: string; code: string }[];
            expect(fields.every((field) => field.code === "invalid_characters")).toBe(true);
            const where = poison.inArray ? `${poison.field}.0` : poison.field;
            // At most 20 issues are listed; unless the list is full, ours is in it.
            if (fields.length < 20) expect(fields.map((field) => field.path)).toContain(where);
          }
        }),
        { numRuns: NUM_RUNS },
      );
    });
  },
);
