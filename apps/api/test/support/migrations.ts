import { readdirSync } from "node:fs";
import path from "node:path";
import { databasePackageRoot } from "@zigznote/database";

/** The committed migrations' names (their folders), oldest first. */
export function committedMigrations(): string[] {
  return readdirSync(path.join(databasePackageRoot, "prisma/migrations"), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}
