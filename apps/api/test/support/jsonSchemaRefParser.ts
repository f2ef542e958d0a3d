/**
 * Stands in for `@apidevtools/json-schema-ref-parser` under Jest (jest.config.js
 * `moduleNameMapper`). openapi-backend requires that package when it loads, and it is an ES module,
 * which Jest's CommonJS runtime cannot require on Node 20. The response checker never calls it
 * (it dereferences the document itself, synchronously), so the real package is loaded only if a
 * function here is called, by Node's own `require` (which loads ES modules from Node 20.19).
 */
import { createRequire } from "node:module";

type RefParser = Record<"parse" | "resolve" | "dereference", (...args: unknown[]) => unknown>;

function load(): RefParser {
  const requireNatively = createRequire(require.resolve("openapi-backend"));
  return requireNatively("@apidevtools/json-schema-ref-parser") as RefParser;
}

export default {
  parse: (...args: unknown[]) => load().parse(...args),
  resolve: (...args: unknown[]) => load().resolve(...args),
  dereference: (...args: unknown[]) => load().dereference(...args),
};
