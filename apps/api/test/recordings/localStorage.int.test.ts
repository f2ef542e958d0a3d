import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { LocalDiskStorage, newStorageKey } from "../../src/recordings";

/** The local driver's side of the seam the S3 driver added: bulk deletion, crashed uploads. */

const ORG = "0b7a3c1e-5f3d-4a38-9e57-3f0c1c7d2a10";
const HOUR = 60 * 60 * 1000;
let root: string;
let storage: LocalDiskStorage;

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), "zigznote-local-"));
  storage = new LocalDiskStorage(root);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("LocalDiskStorage", () => {
  it("deletes many files, a missing one counting as deleted", async () => {
    const keys = [newStorageKey(ORG), newStorageKey(ORG), newStorageKey(ORG)];
    for (const key of keys.slice(0, 2)) {
      await storage.put(key, Readable.from([Buffer.from("bytes")]), { maxBytes: 100 });
    }
    expect(await storage.deleteMany(keys)).toEqual({ failed: [] });
    for (const key of keys) expect(await storage.exists(key)).toBe(false);
  });

  it("reports a key it could not delete, and deletes the others", async () => {
    const keys = [newStorageKey(ORG), newStorageKey(ORG)];
    await storage.put(keys[1]!, Readable.from([Buffer.from("bytes")]), { maxBytes: 100 });
    // A folder where the file should be: unlink fails (EISDIR/EPERM), as on a broken disk.
    mkdirSync(path.join(root, keys[0]!), { recursive: true });
    const { failed } = await storage.deleteMany(keys);
    expect(failed.map((failure) => failure.key)).toEqual([keys[0]]);
    expect(await storage.exists(keys[1]!)).toBe(false);
  });

  it.each([
    [
      "a body that fails at once (the client went away)",
      () =>
        new Readable({
          read() {
            this.destroy(new Error("aborted"));
          },
        }),
    ],
    ["a body over the limit in its first chunk", () => Readable.from([Buffer.alloc(200)])],
  ])("leaves no temporary file behind for %s", async (_, body) => {
    // Twenty at once, so that some fail while their file's open is still under way.
    const puts = Array.from({ length: 20 }, () =>
      storage.put(newStorageKey(ORG), body(), { maxBytes: 100 }),
    );
    for (const put of puts) await expect(put).rejects.toThrow();
    // An open still under way when the removal ran would create its file after it.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(readdirSync(path.join(root, ".tmp"))).toEqual([]);
  });

  it("removes the temporary files of uploads a crash interrupted, once they are old enough", async () => {
    const tmp = path.join(root, ".tmp");
    mkdirSync(tmp, { recursive: true });
    const stale = path.join(tmp, "stale.part");
    const fresh = path.join(tmp, "fresh.part");
    writeFileSync(stale, "half an upload");
    writeFileSync(fresh, "an upload under way");
    const dayAgo = new Date(Date.now() - 25 * HOUR);
    utimesSync(stale, dayAgo, dayAgo);

    expect(await storage.abortIncompleteUploads(new Date(Date.now() - 24 * HOUR))).toBe(1);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    // No temporary folder at all: nothing to do.
    rmSync(tmp, { recursive: true });
    expect(await storage.abortIncompleteUploads(new Date())).toBe(0);
  });
});
