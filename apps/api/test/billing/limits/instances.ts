import type { Server } from "node:http";
import { createTestApp, type TestApp, type TestContextOptions } from "../../support/helpers";
import { closeServer, listen } from "../../support/recallEvents";

/**
 * Several instances of one deployment, as production runs them: each app has its own database
 * client (pool) and process state, all on the one test database, each listening on its own free
 * port. Requests spread over them reach the database as they would behind a load balancer.
 */
export interface Instances {
  apps: TestApp[];
  urls: string[];
  close(): Promise<void>;
}

export async function startInstances(
  count: number,
  options: TestContextOptions = {},
): Promise<Instances> {
  const apps: TestApp[] = [];
  const servers: Server[] = [];
  const urls: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const testApp = createTestApp(options);
    const { server, url } = await listen(testApp.app);
    apps.push(testApp);
    servers.push(server);
    urls.push(url);
  }
  return {
    apps,
    urls,
    async close() {
      for (const server of servers) await closeServer(server);
      for (const testApp of apps) await testApp.close();
    },
  };
}

export interface Answer {
  status: number;
  body: { error?: { code: string; details?: Record<string, unknown> } } & Record<string, unknown>;
}

/** One JSON request to `url` + `path`. */
export async function send(
  url: string,
  path: string,
  init: { method?: string; headers: Record<string, string>; body?: unknown },
): Promise<Answer> {
  const response = await fetch(`${url}${path}`, {
    method: init.method ?? "POST",
    headers: { ...init.headers, "Content-Type": "application/json" },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Answer["body"]) : {} };
}

/** How many answers had each status, e.g. `{ 201: 1, 403: 39 }`. */
export function countStatuses(answers: Answer[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const answer of answers) counts[answer.status] = (counts[answer.status] ?? 0) + 1;
  return counts;
}
