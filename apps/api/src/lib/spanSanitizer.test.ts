import { SpanKind, SpanStatusCode, type SpanContext } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import {
  SanitizingSpanExporter,
  redactEmails,
  sanitizeAttributes,
  stripUrl,
} from "./spanSanitizer";

describe("redactEmails", () => {
  it("replaces every address and leaves other text alone", () => {
    expect(
      redactEmails("550 <ada@example.com>: no such user; cc bob.smith+x@mail.example.org"),
    ).toBe("550 <[email]>: no such user; cc [email]");
    expect(redactEmails("SELECT 1 WHERE a = $1")).toBe("SELECT 1 WHERE a = $1");
    expect(redactEmails("@decorator and user@ alone")).toBe("@decorator and user@ alone");
  });
});

describe("stripUrl", () => {
  it("drops the query string, the fragment and user info", () => {
    expect(
      stripUrl("https://bucket.s3.amazonaws.com/rec.mp4?X-Amz-Signature=abc&X-Amz-Credential=k"),
    ).toBe("https://bucket.s3.amazonaws.com/rec.mp4");
    expect(stripUrl("/api/v1/admin/organizations?search=ada@example.com#top")).toBe(
      "/api/v1/admin/organizations",
    );
    expect(stripUrl("smtp://user:secret@mail.example.com:587/")).toBe(
      "smtp://mail.example.com:587/",
    );
    expect(stripUrl("/api/v1/me")).toBe("/api/v1/me");
  });
});

describe("sanitizeAttributes", () => {
  it("strips URLs, drops query attributes, redacts credentials and addresses at any depth", () => {
    expect(
      sanitizeAttributes({
        "url.full": "https://api.stripe.com/v1/customers?email=ada%40example.com",
        "url.query": "email=ada@example.com",
        "http.target": "/v1/customers/search?query=email:'ada@example.com'",
        "http.request.header.authorization": ["Bearer zn_live_secret"],
        "db.query.text": "SELECT id FROM users WHERE email = 'ada@example.com'",
        "zigznote.recipients": ["ada@example.com", "ops"],
        "http.response.status_code": 200,
        "zigznote.ok": true,
      }),
    ).toEqual({
      "url.full": "https://api.stripe.com/v1/customers",
      "http.target": "/v1/customers/search",
      "http.request.header.authorization": "[redacted]",
      "db.query.text": "SELECT id FROM users WHERE email = '[email]'",
      "zigznote.recipients": ["[email]", "ops"],
      "http.response.status_code": 200,
      "zigznote.ok": true,
    });
  });
});

describe("SanitizingSpanExporter", () => {
  it("passes a span with nothing to change on as it is", async () => {
    const memory = new InMemorySpanExporter();
    const span = {
      name: "GET /api/v1/me",
      status: { code: SpanStatusCode.UNSET },
      attributes: { "url.path": "/api/v1/me", "http.response.status_code": 200 },
      events: [],
      links: [],
    } as unknown as ReadableSpan;
    await new Promise<void>((resolve) =>
      new SanitizingSpanExporter(memory).export([span], () => resolve()),
    );
    expect(memory.getFinishedSpans()[0]).toBe(span);
  });

  it("hands the wrapped exporter sanitized spans: name, attributes, events and status", async () => {
    const memory = new InMemorySpanExporter();
    const spanContext: SpanContext = {
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "b7ad6b7169203331",
      traceFlags: 1,
    };
    const span = {
      name: "notify ada@example.com",
      kind: SpanKind.CLIENT,
      spanContext: () => spanContext,
      startTime: [1, 0],
      endTime: [2, 0],
      duration: [1, 0],
      ended: true,
      status: { code: SpanStatusCode.ERROR, message: "550 <ada@example.com> unknown" },
      attributes: { "url.full": "https://recall.example/api/v1/bot/?token=t" },
      links: [],
      events: [
        {
          name: "exception",
          time: [1, 5],
          attributes: { "exception.message": "550 <ada@example.com> unknown" },
        },
      ],
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    } as unknown as ReadableSpan;
    const results: number[] = [];
    await new Promise<void>((resolve) =>
      new SanitizingSpanExporter(memory).export([span], (result) => {
        results.push(result.code);
        resolve();
      }),
    );

    expect(results).toEqual([0]);
    const [exported] = memory.getFinishedSpans();
    expect(exported!.spanContext()).toBe(spanContext);
    expect(exported!.name).toBe("notify [email]");
    expect(exported!.status.message).toBe("550 <[email]> unknown");
    expect(exported!.attributes["url.full"]).toBe("https://recall.example/api/v1/bot/");
    expect(exported!.events[0]!.attributes!["exception.message"]).toBe("550 <[email]> unknown");
    // The span itself is left as it was (other processors may hold it).
    expect(span.name).toBe("notify ada@example.com");
  });
});
