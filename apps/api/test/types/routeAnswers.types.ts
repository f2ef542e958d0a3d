/**
 * Compile-time checks of route answers (`pnpm typecheck` runs them; nothing here runs): a
 * handler returns one of its declared statuses with that status's body, and nothing else.
 */
import { z } from "../../src/http/openapi";
import { defineRoute } from "../../src/http/route";

const Widget = z.object({ id: z.uuid(), sizeBytes: z.number().int() });
const base = {
  method: "get",
  path: "/widgets",
  operationId: "getWidget",
  tag: "Widgets",
  summary: "A widget",
  auth: "none",
  responses: {
    200: { description: "The widget", schema: Widget },
    204: { description: "Nothing" },
  },
} as const;

export const declared = [
  defineRoute({
    ...base,
    handler() {
      return { status: 200, body: { id: "5f0c7e1e-3b8a-4d7e-9a55-0c2a4f3f1b6d", sizeBytes: 12 } };
    },
  }),
  defineRoute({
    ...base,
    handler() {
      return { status: 204 };
    },
  }),
];

export const refused = [
  defineRoute({
    ...base,
    // @ts-expect-error 201 is not a declared status.
    handler() {
      return { status: 201, body: { id: "x", sizeBytes: 12 } };
    },
  }),
  defineRoute({
    ...base,
    // @ts-expect-error the body does not match the 200 schema (sizeBytes is a number).
    handler() {
      return { status: 200, body: { id: "x", sizeBytes: "12" } };
    },
  }),
  defineRoute({
    ...base,
    // @ts-expect-error a 200 must carry its body.
    handler() {
      return { status: 200 };
    },
  }),
  defineRoute({
    ...base,
    // @ts-expect-error 204 declares no body.
    handler() {
      return { status: 204, body: { id: "x", sizeBytes: 12 } };
    },
  }),
  defineRoute({
    ...base,
    // @ts-expect-error a handler has no response object to write to.
    handler(_input, _req, res: unknown) {
      void res;
      return { status: 204 };
    },
  }),
];
