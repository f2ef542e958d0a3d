import { PrismaPg } from "@prisma/adapter-pg";
import { defineConfig } from "prisma/config";

// Prisma's classic engines cannot be downloaded here: migrations run on the WASM schema engine
// through the pg driver adapter (see README, "Database").
export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: "prisma/schema.prisma",
  adapter: async () => {
    const connectionString = process.env.DATABASE_URL;
    if (!connectionString) throw new Error("DATABASE_URL must be set to run migrations");
    return new PrismaPg({ connectionString });
  },
});
