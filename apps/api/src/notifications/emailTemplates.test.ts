import { EMAIL_SAMPLES } from "./emailSamples";
import { formatAmount } from "./emailContent";
import { EMAIL_TEMPLATES } from "./emailTemplates";
import { escapeHtml } from "./emailRender";
import { renderNoticeEmail } from "./emailTransport";

describe("e-mail templates", () => {
  it("have a sample for every notice type, each rendering HTML and text with the same facts", async () => {
    expect(new Set(EMAIL_SAMPLES.map((sample) => sample.type))).toEqual(
      new Set(Object.keys(EMAIL_TEMPLATES)),
    );
    for (const sample of EMAIL_SAMPLES) {
      const email = await renderNoticeEmail(
        { type: sample.type, payload: sample.payload, organizationName: "Acme & Co" },
        "https://app.example.test",
      );
      expect(email.subject).toContain("Acme & Co");
      expect(email.html).toContain("Acme &amp; Co");
      expect(email.text).toContain("Acme & Co");
      // The call to action is in both parts: the app, or (operators' notices) Stripe's dashboard.
      const target =
        sample.type === "ops.dispute_opened"
          ? "https://dashboard.stripe.com/test/disputes/"
          : "https://app.example.test/";
      expect(email.text).toContain(`: ${target}`);
      expect(email.html).toContain(`href="${target}`);
    }
  });

  it("says why access was restored: a payment, or the unpaid invoice voided", async () => {
    const render = (payload: Record<string, unknown>) =>
      renderNoticeEmail(
        { type: "billing.access_restored", payload, organizationName: "Acme" },
        "https://app.example.test",
      );
    const paid = await render({ invoiceId: "in_1" });
    expect(paid.text).toContain("your payment went through");
    const voided = await render({ invoiceId: "in_1", reason: "invoice_voided" });
    expect(voided.text).toContain("was voided, so nothing is owed");
    expect(voided.text).not.toContain("payment went through");
    expect(voided.html).toContain("was voided, so nothing is owed");
  });

  it("formats Stripe amounts in their currency, zero-decimal ones included", () => {
    expect(formatAmount(1900, "usd")).toBe("$19.00");
    expect(formatAmount(4900, "eur")).toBe("€49.00");
    expect(formatAmount(500, "jpy")).toBe("¥500");
  });

  it("refuses an unknown type or a payload missing what the template needs", async () => {
    await expect(
      renderNoticeEmail({ type: "t.unknown", payload: {}, organizationName: "x" }, "http://a.test"),
    ).rejects.toThrow("no template");
    await expect(
      renderNoticeEmail(
        { type: "billing.suspended", payload: { graceEndedAt: "soon" }, organizationName: "x" },
        "http://a.test",
      ),
    ).rejects.toThrow("cannot be rendered");
  });

  it("escapes text and attribute metacharacters", () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&</a>`)).toBe(
      "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;",
    );
  });
});
