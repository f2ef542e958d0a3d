import { SpanKind, SpanStatusCode, type SpanContext } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import {
  SanitizingSpanExporter,
  redactEmails,
  redactText,
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

describe("redactEmails, percent-encoded and in paths", () => {
  it("replaces an address in a path, encoded or not, and leaves the rest of the path", () => {
    expect(redactEmails("/api/v1/members/ada%40example.com")).toBe("/api/v1/members/[email]");
    expect(redactEmails("/api/v1/members/ada%2Bx%40example.com/x")).toBe(
      "/api/v1/members/[email]/x",
    );
    expect(redactEmails("/api/v1/members/ada@example.com")).toBe("/api/v1/members/[email]");
  });

  it("leaves a package's version in a stack trace's path alone", () => {
    const frame = "at f (/app/node_modules/.pnpm/nodemailer@10.6.1/node_modules/x.js:1:2)";
    expect(redactEmails(frame)).toBe(frame);
  });
});

describe("redactText", () => {
  it("replaces credentials by their shape: API keys, JWTs, Stripe keys, signing secrets", () => {
    const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJl-_x";
    expect(
      redactText("/api/v1/api-keys/zn_live_AbCdEfGhIjKl_0123456789abcdefghijABCDEFGHIJ12ab"),
    ).toBe("/api/v1/api-keys/[redacted]");
    expect(redactText(`/api/v1/meetings/${jwt}`)).toBe("/api/v1/meetings/[redacted]");
    expect(redactText(`Invalid key sk_live_51Habc and rk_test_9x, secret whsec_Ab+/9=`)).toBe(
      "Invalid key [redacted] and [redacted], secret [redacted]",
    );
  });

  it("cuts the user info and query of a URL that free text quotes, keeping its host and path", () => {
    expect(
      redactText(
        "Failed to parse URL from https://bucket.s3.example/rec.mp4?X-Amz-Signature=abc&b=1 (x)",
      ),
    ).toBe("Failed to parse URL from https://bucket.s3.example/rec.mp4 (x)");
    expect(redactText("connect to smtp://user:pw@mail.example.com:587/ failed")).toBe(
      "connect to smtp://mail.example.com:587/ failed",
    );
  });

  it("returns a string with nothing to change as it is", () => {
    const text = "SELECT id FROM api_keys WHERE prefix = $1 AND secret_hash = $2";
    expect(redactText(text)).toBe(text);
    expect(redactText("https://api.stripe.com/v1/customers")).toBe(
      "https://api.stripe.com/v1/customers",
    );
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
