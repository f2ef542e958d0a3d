import { randomUUID } from "node:crypto";
import { createMeeting } from "@zigznote/database/testing";
import request from "supertest";
import { authHeaderFor, type AuthenticatedCaller } from "../support/auth";
import { createTestApp, type TestApp } from "../support/helpers";

let testApp: TestApp;
beforeAll(() => {
  testApp = createTestApp();
});
afterAll(() => testApp.close());

interface Series {
  method: string;
  route: string;
  status: string;
  count: number;
}

/** The request-duration histogram's series (one per label set). */
async function requestSeries(): Promise<Series[]> {
  const metric = testApp.ctx.metrics.httpRequestDuration;
  const { values } = await metric.get();
  return values
    .filter((value) => value.metricName === "http_request_duration_seconds_count")
    .map((value) => ({
      method: String(value.labels.method),
      route: String(value.labels.route),
      status: String(value.labels.status_code),
      count: value.value,
    }));
}

/** What a client does to its meetings, right and wrong, by id. */
async function exercise(caller: AuthenticatedCaller, count: number): Promise<void> {
  for (let i = 0; i < count; i += 1) {
    const meeting = await createMeeting(testApp.ctx.db, { organizationId: caller.organizationId });
    const url = `/api/v1/meetings/${meeting.id}`;
    const answers = await Promise.all([
      request(testApp.app).get(url).set(caller.headers),
      request(testApp.app).get(`${url}/`).set(caller.headers),
      request(testApp.app)
        .patch(url)
        .set(caller.headers)
        .send({ title: `Renamed ${i}` }),
      // 400: an unknown field, and a body that is not JSON (refused before routing).
      request(testApp.app).patch(url).set(caller.headers).send({ nope: 1 }),
      request(testApp.app)
        .patch(url)
        .set(caller.headers)
        .set("Content-Type", "application/json")
        .send("{not json"),
      // 404: no recording, someone else's id, a path no route has.
      request(testApp.app).get(`${url}/recording/`).set(caller.headers),
      request(testApp.app).get(`/api/v1/meetings/${randomUUID()}`).set(caller.headers),
      request(testApp.app).get(`${url}/no-such-thing`).set(caller.headers),
      // 401
      request(testApp.app).get(url),
    ]);
    expect(answers.map((answer) => answer.status)).toEqual([
      200, 200, 200, 400, 400, 404, 404, 404, 401,
    ]);
  }
}

describe("GET /metrics request series", () => {
  it("labels requests with route templates: the series do not grow with the number of ids", async () => {
    const caller = await authHeaderFor(testApp);
    await exercise(caller, 5);
    const afterFive = await requestSeries();
    await exercise(caller, 45);
    const afterFifty = await requestSeries();

    const labels = (series: Series[]) =>
      series.map((s) => `${s.method} ${s.route} ${s.status}`).sort();
    expect(labels(afterFifty)).toEqual(labels(afterFive));
    expect(labels(afterFifty)).toEqual(
      [
        "GET /api/v1/meetings/:id 200",
        "PATCH /api/v1/meetings/:id 200",
        "PATCH /api/v1/meetings/:id 400",
        "GET /api/v1/meetings/:id/recording 404",
        "GET /api/v1/meetings/:id 404",
        "GET unmatched 404",
        "GET /api/v1/meetings/:id 401",
      ].sort(),
    );
    const count = (label: string) =>
      afterFifty.find((s) => `${s.method} ${s.route} ${s.status}` === label)?.count;
    // Both 400s of each meeting, the one refused by the JSON parser included.
    expect(count("PATCH /api/v1/meetings/:id 400")).toBe(100);
    expect(count("GET unmatched 404")).toBe(50);

    const { text } = await request(testApp.app).get("/metrics");
    expect(text).not.toMatch(/route="[^"]*[0-9a-f]{8}-[0-9a-f]{4}-/);
  });
});
