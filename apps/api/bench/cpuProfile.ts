import path from "node:path";

/**
 * Summaries of V8 CPU profiles (the `.cpuprofile` JSON that `--cpu-prof`, Chrome DevTools and
 * the inspector's `Profiler.stop` produce): self time by frame and by package.
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  startTime: number;
  endTime: number;
}

/** Self samples per key; `busy` excludes `(idle)`, which is what the shares are taken of. */
export interface SelfTime {
  counts: Map<string, number>;
  busy: number;
  idle: number;
}

const repoRoot = path.resolve(__dirname, "../../..");
const VIRTUAL_FRAMES = new Set(["(root)", "(program)", "(idle)", "(garbage collector)"]);

/** A short file name: the package path under node_modules, else relative to the repository. */
export function shortUrl(url: string): string {
  if (url === "") return "";
  if (url.startsWith("wasm://")) return "wasm";
  const file = url.startsWith("file://") ? decodeURIComponent(new URL(url).pathname) : url;
  const modules = file.lastIndexOf("/node_modules/");
  if (modules >= 0) return file.slice(modules + "/node_modules/".length);
  return file.startsWith(`${repoRoot}/`) ? file.slice(repoRoot.length + 1) : file;
}

/** Which part of the stack a frame belongs to (a package, the app, Node, the WASM compiler). */
export function packageOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === "") return VIRTUAL_FRAMES.has(functionName) ? functionName : "(native code)";
  if (url.startsWith("wasm://")) return "prisma query compiler (wasm)";
  if (url.startsWith("node:")) return "node internals";
  const file = shortUrl(url);
  if (file.includes("generated/client/")) return "prisma client (generated runtime)";
  if (file.startsWith("apps/api/src/")) return "app (apps/api/src)";
  const workspace = /^packages\/([^/]+)\//.exec(file);
  if (workspace) return `@zigznote/${workspace[1]}`;
  const parts = file.split("/");
  if (file.startsWith(".pnpm/")) parts.splice(0, 2);
  const name = parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0];
  return name && name !== file ? name : file;
}

/** `name file:line`, the key frames are aggregated by (line: where the function starts). */
export function frameKey(frame: CallFrame): string {
  const name = frame.functionName || "(anonymous)";
  if (frame.url === "") return name;
  return `${name} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
}

/** Self samples of `profiles` aggregated by `keyOf`. */
export function selfTime(
  profiles: CpuProfile[],
  keyOf: (frame: CallFrame) => string = frameKey,
): SelfTime {
  const counts = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (const profile of profiles) {
    const byId = new Map(profile.nodes.map((node) => [node.id, node]));
    // Count samples (hitCount is absent from profiles that carry a sample list only).
    const hits = new Map<number, number>();
    if (profile.samples && profile.samples.length > 0) {
      for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
    } else {
      for (const node of profile.nodes) hits.set(node.id, node.hitCount ?? 0);
    }
    for (const [id, count] of hits) {
      const node = byId.get(id);
      if (!node || count === 0) continue;
      if (node.callFrame.functionName === "(idle)" && node.callFrame.url === "") {
        idle += count;
        continue;
      }
      busy += count;
      const key = keyOf(node.callFrame);
      counts.set(key, (counts.get(key) ?? 0) + count);
    }
  }
  return { counts, busy, idle };
}

/** The `limit` largest entries as [key, share of busy samples in %], largest first. */
export function topShares(time: SelfTime, limit: number): [string, number][] {
  return [...time.counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([key, count]) => [key, time.busy === 0 ? 0 : (100 * count) / time.busy]);
}
