/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/src", "<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }] },
  globalSetup: "<rootDir>/test/support/globalSetup.ts",
  // Every response a test receives is checked against the app's OpenAPI document.
  setupFilesAfterEnv: ["<rootDir>/test/support/setupOpenApi.ts"],
  // An ES module that openapi-backend requires and Jest cannot: see the stand-in's comment.
  moduleNameMapper: {
    "^@apidevtools/json-schema-ref-parser$": "<rootDir>/test/support/jsonSchemaRefParser.ts",
  },
  maxWorkers: 2,
  testTimeout: 30000,
};
