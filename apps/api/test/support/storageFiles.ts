import { readdirSync } from "node:fs";

/** Every file and folder below `dir` (relative paths); none when it does not exist. */
export function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true }) as string[];
  } catch {
    return [];
  }
}
