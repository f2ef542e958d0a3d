// @ts-check
import { readFileSync } from "node:fs";
import js from "@eslint/js";
import { createNodeResolver, importX } from "eslint-plugin-import-x";
import tseslint from "typescript-eslint";

/**
 * The API's feature folders (apps/api/src/<feature>/). A feature is entered only through its
 * index.ts: code elsewhere may import `../billing`, never `../billing/violations`. Imports between
 * features must form no cycle. `http/` (the route kernel) and `lib/` (leaf utilities) belong to
 * no feature and import none.
 */
const FEATURES = [
  "identity",
  "meetings",
  "bots",
  "recordings",
  "billing",
  "notifications",
  "webhooks",
  "providerCalls",
  "jobs",
  "admin",
];
/**
 * Which features each one may use (through their index). The table is the dependency rule of
 * project_docs/ARCHITECTURE.md: it has no cycle, and an import it does not list fails the lint.
 */
const USES = {
  notifications: [],
  webhooks: [],
  providerCalls: [],
  meetings: [],
  recordings: ["meetings"],
  billing: ["recordings", "notifications", "webhooks", "providerCalls"],
  identity: ["billing", "webhooks"],
  bots: ["meetings", "recordings", "webhooks", "providerCalls"],
  jobs: [],
  admin: ["billing", "notifications", "recordings"],
};
const intoFeatureInternals = FEATURES.map((feature) => `**/${feature}/*`);

/**
 * The admin feature is a read-model console: it may read any table, but it writes only its own.
 * Its actions change billing's and the outbox's rows through those features' exported functions
 * (`waiveViolation`, `compSubscription`, `requeueNotice`, ...) with the action's transaction, so
 * each table keeps one owner. The tables and Prisma models are read from the schema, so a new
 * table is covered without editing this list.
 */
const SCHEMA = readFileSync(
  new URL("./packages/database/prisma/schema.prisma", import.meta.url),
  "utf8",
);
const ADMIN_TABLES = ["admin_audit_log"];
const ADMIN_MODELS = ["AdminAuditEntry"];
const foreignTables = [...SCHEMA.matchAll(/@@map\("(\w+)"\)/g)]
  .map((match) => match[1])
  .filter((table) => !ADMIN_TABLES.includes(table));
const foreignDelegates = [...SCHEMA.matchAll(/^model (\w+) \{/gm)]
  .map((match) => match[1])
  .filter((model) => !ADMIN_MODELS.includes(model))
  .map((model) => model[0].toLowerCase() + model.slice(1));
/** A SQL write naming one of those tables, in a string or a template's text. */
const FOREIGN_WRITE_SQL = `/(INSERT\\s+INTO|UPDATE|DELETE\\s+FROM|TRUNCATE(\\s+TABLE)?|MERGE\\s+INTO)\\s+"?(${foreignTables.join("|")})\\b/i`;
const PRISMA_WRITES =
  "create|createMany|createManyAndReturn|update|updateMany|updateManyAndReturn|upsert|delete|deleteMany";
const foreignWriteMessage = `admin writes only its own tables (${ADMIN_TABLES.join(", ")}): change another feature's rows through that feature's exported function, with the action's transaction.`;

export default tseslint.config(
  {
    ignores: [
      "**/node_modules/**",
      "**/dist/**",
      "**/generated/**",
      "**/.turbo/**",
      "**/.data/**",
      "**/coverage/**",
      "**/*.js",
      "**/*.mjs",
      "**/*.cjs",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": [
        "error",
        { checksVoidReturn: { arguments: false } },
      ],
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
    },
  },
  {
    files: ["apps/api/src/**/*.ts"],
    ignores: ["**/*.test.ts"],
    plugins: { "import-x": importX },
    settings: {
      "import-x/resolver-next": [createNodeResolver({ extensions: [".ts", ".js", ".json"] })],
    },
    rules: {
      "import-x/no-cycle": ["error", { ignoreExternal: true }],
    },
  },
  // Each feature's files (and the rest of the API's source): other features' internals are out
  // of reach. One rule setting per file, since a later setting replaces an earlier one.
  ...[...FEATURES, null].map((owner) => ({
    files: owner ? [`apps/api/src/${owner}/**/*.ts`] : ["apps/api/src/**/*.ts"],
    ignores: [
      "**/*.test.ts",
      ...(owner ? [] : FEATURES.map((feature) => `apps/api/src/${feature}/**`)),
    ],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: FEATURES.filter((feature) => feature !== owner)
            .map((feature) =>
              owner && !USES[owner].includes(feature)
                ? {
                    group: [`**/${feature}`, `**/${feature}/*`],
                    message: `${owner} does not use ${feature} (see USES in eslint.config.mjs and project_docs/ARCHITECTURE.md).`,
                  }
                : {
                    group: [`**/${feature}/*`, `!**/${feature}/index`],
                    message: `Import the ${feature} feature through its index ("../${feature}"), not its internals.`,
                  },
            )
            .concat(
              owner && owner !== "jobs"
                ? [
                    {
                      group: ["**/context", "**/app", "**/server"],
                      message:
                        "Features receive their dependencies from the composition root; they do not import it.",
                    },
                  ]
                : [],
            ),
        },
      ],
    },
  })),
  // The kernel and the leaf utilities import no feature and not the composition root.
  {
    files: ["apps/api/src/http/**/*.ts", "apps/api/src/lib/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: [
                ...FEATURES.map((feature) => `**/${feature}`),
                ...intoFeatureInternals,
                "**/context",
                "**/app",
              ],
              message: "http/ and lib/ are below every feature: they import none.",
            },
          ],
        },
      ],
    },
  },
  // The admin feature writes no other feature's table (see FOREIGN_WRITE_SQL above).
  {
    files: ["apps/api/src/admin/**/*.ts"],
    rules: {
      "no-restricted-syntax": [
        "error",
        { selector: `Literal[value=${FOREIGN_WRITE_SQL}]`, message: foreignWriteMessage },
        {
          selector: `TemplateElement[value.raw=${FOREIGN_WRITE_SQL}]`,
          message: foreignWriteMessage,
        },
        {
          selector: `CallExpression[callee.property.name=/^(${PRISMA_WRITES})$/][callee.object.property.name=/^(${foreignDelegates.join("|")})$/]`,
          message: foreignWriteMessage,
        },
      ],
    },
  },
  // A source file stays readable in one sitting: over 450 lines it says why at its top
  // (`/* eslint-disable max-lines -- <reason> */`). Tests and generated code are exempt.
  {
    files: ["apps/*/src/**/*.{ts,tsx}", "packages/*/src/**/*.ts"],
    ignores: ["**/*.test.ts", "packages/api-client/src/schema.ts"],
    rules: {
      "max-lines": ["error", { max: 450, skipBlankLines: false, skipComments: false }],
    },
  },
  {
    files: ["**/*.test.ts", "**/test/**/*.ts", "**/bench/**/*.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-non-null-assertion": "off",
    },
  },
);
