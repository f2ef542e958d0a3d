/**
 * Runs in every test file (jest `setupFilesAfterEnv`): a test fails when a response it (or the
 * hooks before it) received from a `createTestApp` app is not described by the app's OpenAPI
 * document. See test/support/openApiConformance.ts.
 */
import { assertNoOpenApiViolations } from "./openApiConformance";

afterEach(assertNoOpenApiViolations);
afterAll(assertNoOpenApiViolations);
