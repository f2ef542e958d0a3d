import { z } from "zod";

/**
 * One template per notice type, written once as content (a heading, paragraphs, facts, a button)
 * that `emailRender.ts` turns into both the HTML (MJML) and the plain-text part. Templates hold
 * plain strings only: every value, whether it comes from a user (the organization's name) or
 * from Stripe (amounts, currencies, URLs), is escaped by the renderer, never here.
 */

export type EmailBlock =
  | { kind: "paragraph"; text: string }
  | { kind: "facts"; rows: [label: string, value: string][] }
  | { kind: "button"; label: string; url: string };

export interface EmailContent {
  subject: string;
  /** The inbox preview line (hidden in the HTML body). */
  preview: string;
  heading: string;
  blocks: EmailBlock[];
  /** Why the reader gets it (default: they administer the organization or pay for it). */
  footer?: string;
}

/** What every template may use besides its notice's payload. */
export interface TemplateContext {
  organizationName: string;
  /** Where the web app's billing page is (it opens Stripe's Customer Portal). */
  billingUrl: string;
  /**
   * The billing page asked to open the portal's card form at once (`?flow=payment_method_update`:
   * the page calls `POST /api/v1/billing/portal` with that flow).
   */
  cardUpdateUrl: string;
  /** The web app's home. */
  appUrl: string;
}

/** A payload that does not fit its template: the notice cannot be rendered (never retried). */
export class NoticePayloadError extends Error {
  constructor(type: string, detail: string) {
    super(`notice ${type} cannot be rendered: ${detail}`);
    this.name = "NoticePayloadError";
  }
}

const isoDate = z.iso.datetime({ offset: true });

const paymentFailedPayload = z.object({
  attempt: z.number().int(),
  maxAttempts: z.number().int(),
  amountDue: z.number().int(),
  currency: z.string().min(1),
  graceEndsAt: isoDate,
  suspendsAt: isoDate.optional(),
  hostedInvoiceUrl: z.string().nullable().optional(),
});
const actionRequiredPayload = z.object({
  amountDue: z.number().int(),
  currency: z.string().min(1),
  hostedInvoiceUrl: z.string().nullable(),
  requiredAt: isoDate,
  graceEndsAt: isoDate.nullable(),
});
const cardPayload = z.object({ brand: z.string(), last4: z.string() }).nullable();
const trialEndingPayload = z.object({
  planSlug: z.string(),
  trialEnd: isoDate,
  amount: z.number().int().nullable(),
  currency: z.string().nullable(),
  card: cardPayload,
});
const cardExpiringPayload = z.object({
  brand: z.string(),
  last4: z.string(),
  expMonth: z.number().int().min(1).max(12),
  expYear: z.number().int(),
  expiresAt: isoDate,
  daysBefore: z.number().int(),
});
const disputeOpenedPayload = z.object({
  disputeId: z.string(),
  amount: z.number().int(),
  currency: z.string().min(1),
  reason: z.string(),
  status: z.string(),
  evidenceDueBy: isoDate.nullable(),
  isLivemode: z.boolean(),
});
const suspendedPayload = z.object({ graceEndedAt: isoDate });
const restoredPayload = z.object({}).loose();
const duplicatePayload = z.object({
  keptSubscriptionId: z.string(),
  keptPlanSlug: z.string(),
  canceledSubscriptionId: z.string(),
  canceledPlanSlug: z.string(),
});
const violationType = z.enum(["meetings", "team_members", "storage"]);
const violationPayload = z.object({
  planSlug: z.string(),
  type: violationType,
  limit: z.number(),
  current: z.number(),
  action: z.enum(["read_only", "notify_admin", "grace_period"]),
  graceEndsAt: isoDate.optional(),
});
const storageGraceEndingPayload = z.object({
  planSlug: z.string(),
  limit: z.number(),
  current: z.number(),
  graceEndsAt: isoDate,
});
const violationResolvedPayload = z.object({ planSlug: z.string(), type: violationType });

/** Stripe's zero-decimal currencies: amounts are in whole units, not cents. */
const ZERO_DECIMAL = new Set([
  "bif",
  "clp",
  "djf",
  "gnf",
  "jpy",
  "kmf",
  "krw",
  "mga",
  "pyg",
  "rwf",
  "ugx",
  "vnd",
  "vuv",
  "xaf",
  "xof",
  "xpf",
]);

/** Formats a Stripe amount (minor units) in its currency: 1900 usd -> "$19.00". */
export function formatAmount(amount: number, currency: string): string {
  const code = currency.toLowerCase();
  const value = ZERO_DECIMAL.has(code) ? amount : amount / 100;
  try {
    return new Intl.NumberFormat("en-US", { style: "currency", currency: code }).format(value);
  } catch {
    return `${value.toFixed(ZERO_DECIMAL.has(code) ? 0 : 2)} ${code.toUpperCase()}`;
  }
}

const dateFormat = new Intl.DateTimeFormat("en-GB", {
  dateStyle: "long",
  timeStyle: "short",
  timeZone: "UTC",
});

/** A moment as e-mails show it: "6 December 2026 at 09:50 UTC". */
export function formatDate(iso: string): string {
  return `${dateFormat.format(new Date(iso))} UTC`;
}

const LIMIT_LABELS: Record<z.infer<typeof violationType>, string> = {
  meetings: "meetings per month",
  team_members: "team members",
  storage: "storage",
};

function formatUsage(type: z.infer<typeof violationType>, value: number): string {
  if (type !== "storage") return String(value);
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${size} bytes` : `${size.toFixed(1)} ${units[unit]}`;
}

function monthName(month: number): string {
  return new Intl.DateTimeFormat("en-GB", { month: "long", timeZone: "UTC" }).format(
    new Date(Date.UTC(2000, month - 1, 1)),
  );
}

function planName(slug: string): string {
  return slug.charAt(0).toUpperCase() + slug.slice(1);
}

const cardButton = (ctx: TemplateContext): EmailBlock => ({
  kind: "button",
  label: "Update your card",
  url: ctx.cardUpdateUrl,
});

/** "Pay this invoice" (Stripe's hosted page, where the bank can ask for authentication). */
function invoiceButtons(hostedInvoiceUrl: string | null | undefined, label = "Pay this invoice") {
  return hostedInvoiceUrl ? [{ kind: "button" as const, label, url: hostedInvoiceUrl }] : [];
}

/** A card as people read it: "Visa ending in 4242". */
function cardName(card: { brand: string; last4: string }): string {
  const brands: Record<string, string> = {
    amex: "American Express",
    cartes_bancaires: "Cartes Bancaires",
    diners: "Diners Club",
    discover: "Discover",
    eftpos_au: "eftpos",
    jcb: "JCB",
    link: "Link",
    mastercard: "Mastercard",
    unionpay: "UnionPay",
    visa: "Visa",
  };
  const brand = brands[card.brand] ?? (card.brand === "unknown" ? "Card" : planName(card.brand));
  return `${brand} ending in ${card.last4}`;
}

/** A day as e-mails show it when the time does not matter: "6 December 2026". */
function formatDay(iso: string): string {
  return new Intl.DateTimeFormat("en-GB", { dateStyle: "long", timeZone: "UTC" }).format(
    new Date(iso),
  );
}

const billingButton = (ctx: TemplateContext): EmailBlock => ({
  kind: "button",
  label: "Manage your plan",
  url: ctx.billingUrl,
});

type Template = (payload: unknown, ctx: TemplateContext) => EmailContent;

function parse<T>(type: string, schema: z.ZodType<T>, payload: unknown): T {
  const result = schema.safeParse(payload);
  if (!result.success) throw new NoticePayloadError(type, result.error.issues[0]?.message ?? "");
  return result.data;
}

function paymentFailed(type: string, isFinal: boolean): Template {
  return (payload, ctx) => {
    const p = parse(type, paymentFailedPayload, payload);
    const amount = formatAmount(p.amountDue, p.currency);
    const suspendsAt = formatDate(p.suspendsAt ?? p.graceEndsAt);
    const facts: [string, string][] = [
      ["Amount due", amount],
      ["Attempt", `${p.attempt} of ${p.maxAttempts}`],
      [isFinal ? "Suspension on" : "Grace period ends", suspendsAt],
    ];
    return {
      subject: isFinal
        ? `Final notice: ${ctx.organizationName} will be suspended on ${suspendsAt}`
        : `Payment of ${amount} failed for ${ctx.organizationName} (attempt ${p.attempt} of ${p.maxAttempts})`,
      preview: `We could not collect ${amount}. Update your card to keep access.`,
      heading: isFinal ? "Final notice: your payment still failed" : "Your payment failed",
      blocks: [
        {
          kind: "paragraph",
          text: isFinal
            ? `We tried to collect ${amount} for ${ctx.organizationName} ${p.attempt} times without success. Unless the payment goes through, the organization will be suspended on ${suspendsAt}.`
            : `We could not collect ${amount} for ${ctx.organizationName} (attempt ${p.attempt} of ${p.maxAttempts}). Stripe will try again; please update your payment method before ${suspendsAt} to keep full access.`,
        },
        { kind: "facts", rows: facts },
        {
          kind: "paragraph",
          text: p.hostedInvoiceUrl
            ? "Pay the invoice now on its secure page (your bank may ask you to confirm), or update your card and we will try again."
            : "Update your card and we will try again.",
        },
        ...invoiceButtons(p.hostedInvoiceUrl),
        cardButton(ctx),
      ],
    };
  };
}

/** The template of each notice type (the outbox's `type`). */
export const EMAIL_TEMPLATES: Readonly<Record<string, Template>> = {
  "billing.payment_failed": paymentFailed("billing.payment_failed", false),
  "billing.payment_failed.final": paymentFailed("billing.payment_failed.final", true),

  "billing.payment_action_required": (payload, ctx) => {
    const p = parse("billing.payment_action_required", actionRequiredPayload, payload);
    const amount = formatAmount(p.amountDue, p.currency);
    const facts: [string, string][] = [
      ["Amount", amount],
      ["Waiting since", formatDate(p.requiredAt)],
    ];
    if (p.graceEndsAt) facts.push(["Confirm before", formatDate(p.graceEndsAt)]);
    return {
      subject: `Confirm your payment of ${amount} for ${ctx.organizationName}`,
      preview: "Your bank asks you to confirm this payment. It takes a minute.",
      heading: "Confirm your payment",
      blocks: [
        {
          kind: "paragraph",
          text: `Your bank needs you to confirm the payment of ${amount} for ${ctx.organizationName} (a security check such as 3-D Secure). Your card is fine: nothing is charged until you confirm.${p.graceEndsAt ? ` Please confirm before ${formatDate(p.graceEndsAt)} to keep full access.` : ""}`,
        },
        { kind: "facts", rows: facts },
        ...invoiceButtons(p.hostedInvoiceUrl, "Confirm and pay this invoice"),
        { kind: "paragraph", text: "Prefer another card? Update it and we will try again." },
        cardButton(ctx),
      ],
    };
  },

  "billing.trial_will_end": (payload, ctx) => {
    const p = parse("billing.trial_will_end", trialEndingPayload, payload);
    const ends = formatDate(p.trialEnd);
    const plan = planName(p.planSlug);
    const price = p.amount !== null && p.currency ? formatAmount(p.amount, p.currency) : null;
    const facts: [string, string][] = [
      ["Plan", plan],
      ["Trial ends", ends],
    ];
    if (price) facts.push(["Then", `${price} per period, plus any tax`]);
    if (p.card) facts.push(["Card", cardName(p.card)]);
    return {
      subject: `Your ${plan} trial for ${ctx.organizationName} ends on ${formatDay(p.trialEnd)}`,
      preview: p.card
        ? `We will charge ${cardName(p.card)} when it ends.`
        : "Add a card to keep your plan.",
      heading: "Your trial ends soon",
      blocks: [
        {
          kind: "paragraph",
          text: p.card
            ? `The ${plan} trial of ${ctx.organizationName} ends on ${ends}. We will then charge ${price ?? "the plan's price"} to your ${cardName(p.card)}, and again each period until you cancel.`
            : `The ${plan} trial of ${ctx.organizationName} ends on ${ends}. There is no card on file: add one before then to keep the ${plan} plan${price ? ` (${price} per period)` : ""}; without one the subscription ends with the trial and the organization goes back to the free plan.`,
        },
        { kind: "facts", rows: facts },
        p.card ? billingButton(ctx) : { ...cardButton(ctx), label: "Add a card" },
      ],
    };
  },

  "billing.card_expiring": (payload, ctx) => {
    const p = parse("billing.card_expiring", cardExpiringPayload, payload);
    const card = cardName(p);
    const expiry = `${String(p.expMonth).padStart(2, "0")}/${p.expYear}`;
    return {
      subject: `The card of ${ctx.organizationName} expires at the end of ${monthName(p.expMonth)} ${p.expYear}`,
      preview: `${card} expires ${expiry}. Update it to avoid a failed payment.`,
      heading: "Your card expires soon",
      blocks: [
        {
          kind: "paragraph",
          text: `The ${card} that pays for ${ctx.organizationName} expires at the end of ${monthName(p.expMonth)} ${p.expYear} (in ${p.daysBefore <= 7 ? "less than a week" : "about a month"}), before your next renewal. Update it now so the payment does not fail.`,
        },
        {
          kind: "facts",
          rows: [
            ["Card", card],
            ["Expires", expiry],
          ],
        },
        cardButton(ctx),
      ],
    };
  },

  "ops.dispute_opened": (payload, ctx) => {
    const p = parse("ops.dispute_opened", disputeOpenedPayload, payload);
    const amount = formatAmount(p.amount, p.currency);
    const dashboard = `https://dashboard.stripe.com/${p.isLivemode ? "" : "test/"}disputes/${encodeURIComponent(p.disputeId)}`;
    const facts: [string, string][] = [
      ["Organization", ctx.organizationName],
      ["Amount", amount],
      ["Reason", p.reason.replace(/_/g, " ")],
      ["Status", p.status.replace(/_/g, " ")],
      ["Evidence due", p.evidenceDueBy ? formatDate(p.evidenceDueBy) : "none"],
      ["Dispute", p.disputeId],
    ];
    return {
      subject: `Payment disputed: ${amount} by ${ctx.organizationName}`,
      preview: p.evidenceDueBy
        ? `Evidence is due ${formatDate(p.evidenceDueBy)}.`
        : "A customer disputed a payment.",
      heading: "A payment was disputed",
      blocks: [
        {
          kind: "paragraph",
          text: `${ctx.organizationName} disputed a payment of ${amount} with their bank (${p.reason.replace(/_/g, " ")}).${p.evidenceDueBy ? ` Submit evidence in Stripe before ${formatDate(p.evidenceDueBy)}, or accept the dispute.` : ""}`,
        },
        { kind: "facts", rows: facts },
        { kind: "button", label: "Open the dispute in Stripe", url: dashboard },
      ],
      footer: "You receive this because you are a zigznote platform admin.",
    };
  },

  "billing.suspended": (payload, ctx) => {
    const p = parse("billing.suspended", suspendedPayload, payload);
    return {
      subject: `${ctx.organizationName} is suspended: update your payment method`,
      preview: "Your grace period has ended and the organization is suspended.",
      heading: "Your organization is suspended",
      blocks: [
        {
          kind: "paragraph",
          text: `The payment grace period of ${ctx.organizationName} ended on ${formatDate(p.graceEndedAt)} without a successful payment. Recording and other changes are paused; your data is kept. Pay the open invoice to restore access at once.`,
        },
        cardButton(ctx),
      ],
    };
  },

  "billing.access_restored": (payload, ctx) => {
    parse("billing.access_restored", restoredPayload, payload);
    return {
      subject: `Access restored for ${ctx.organizationName}`,
      preview: "Your payment went through. Everything works again.",
      heading: "Access restored",
      blocks: [
        {
          kind: "paragraph",
          text: `Thank you: your payment went through and ${ctx.organizationName} has full access again.`,
        },
        { kind: "button", label: "Open zigznote", url: ctx.appUrl },
      ],
    };
  },

  "billing.duplicate_subscription_canceled": (payload, ctx) => {
    const p = parse("billing.duplicate_subscription_canceled", duplicatePayload, payload);
    const kept = planName(p.keptPlanSlug);
    return {
      subject: `A second subscription of ${ctx.organizationName} was canceled`,
      preview: "You were about to pay twice; the second subscription is canceled and credited.",
      heading: "We canceled a second subscription",
      blocks: [
        {
          kind: "paragraph",
          text: `${ctx.organizationName} already has a ${kept} subscription, and a second one (${planName(p.canceledPlanSlug)}) was just paid, probably from a second checkout page. An organization has one subscription, so we kept the ${kept} one and canceled the second; its unused time is credited to your account and pays your next invoices. To change plan, use the billing page.`,
        },
        {
          kind: "facts",
          rows: [
            ["Kept", `${kept} (${p.keptSubscriptionId})`],
            ["Canceled", `${planName(p.canceledPlanSlug)} (${p.canceledSubscriptionId})`],
          ],
        },
        billingButton(ctx),
      ],
    };
  },

  "plan.violation": (payload, ctx) => {
    const p = parse("plan.violation", violationPayload, payload);
    const label = LIMIT_LABELS[p.type];
    const plan = planName(p.planSlug);
    const facts: [string, string][] = [
      ["Plan", plan],
      ["Limit", `${formatUsage(p.type, p.limit)} ${p.type === "storage" ? "" : label}`.trim()],
      ["Current usage", formatUsage(p.type, p.current)],
    ];
    if (p.action === "read_only") {
      return {
        subject: `${ctx.organizationName} is read-only: over the ${label} limit of the ${plan} plan`,
        preview: "New recordings and meetings are paused until usage is within the plan.",
        heading: "Your organization is read-only",
        blocks: [
          {
            kind: "paragraph",
            text: `${ctx.organizationName} uses more ${label} than the ${plan} plan allows, so it is read-only from now on: you can read and delete, but not add. Reduce usage or upgrade to lift it.`,
          },
          { kind: "facts", rows: facts },
          billingButton(ctx),
        ],
      };
    }
    if (p.action === "grace_period" && p.graceEndsAt) {
      const ends = formatDate(p.graceEndsAt);
      return {
        subject: `${ctx.organizationName} is over its storage limit: read-only from ${ends}`,
        preview: `Free some storage or upgrade before ${ends}.`,
        heading: "You are over your storage limit",
        blocks: [
          {
            kind: "paragraph",
            text: `${ctx.organizationName} stores more than the ${plan} plan allows. Delete recordings or upgrade before ${ends}; after that the organization becomes read-only.`,
          },
          { kind: "facts", rows: [...facts, ["Grace period ends", ends]] },
          billingButton(ctx),
        ],
      };
    }
    return {
      subject: `${ctx.organizationName} is over the ${label} limit of the ${plan} plan`,
      preview: "Remove members or upgrade to stay within your plan.",
      heading: `You are over your ${label} limit`,
      blocks: [
        {
          kind: "paragraph",
          text: `${ctx.organizationName} has more ${label} than the ${plan} plan allows. Nothing is blocked, but please remove members or upgrade.`,
        },
        { kind: "facts", rows: facts },
        billingButton(ctx),
      ],
    };
  },

  "plan.storage_grace_ending": (payload, ctx) => {
    const p = parse("plan.storage_grace_ending", storageGraceEndingPayload, payload);
    const ends = formatDate(p.graceEndsAt);
    return {
      subject: `${ctx.organizationName} turns read-only in less than 24 hours`,
      preview: `Storage grace period ends ${ends}.`,
      heading: "Your storage grace period ends tomorrow",
      blocks: [
        {
          kind: "paragraph",
          text: `${ctx.organizationName} still stores more than the ${planName(p.planSlug)} plan allows. On ${ends} it becomes read-only unless you free space or upgrade.`,
        },
        {
          kind: "facts",
          rows: [
            ["Limit", formatUsage("storage", p.limit)],
            ["Current usage", formatUsage("storage", p.current)],
            ["Read-only from", ends],
          ],
        },
        billingButton(ctx),
      ],
    };
  },

  "plan.violation_resolved": (payload, ctx) => {
    const p = parse("plan.violation_resolved", violationResolvedPayload, payload);
    const label = LIMIT_LABELS[p.type];
    return {
      subject: `${ctx.organizationName} is back within the ${label} limit`,
      preview: "Nothing more to do.",
      heading: "Back within your plan",
      blocks: [
        {
          kind: "paragraph",
          text: `${ctx.organizationName} is within the ${label} limit of the ${planName(p.planSlug)} plan again. Any restriction it caused is lifted.`,
        },
        { kind: "button", label: "Open zigznote", url: ctx.appUrl },
      ],
    };
  },
};

/** The content of a notice's e-mail; throws NoticePayloadError for an unknown type or payload. */
export function buildEmailContent(
  type: string,
  payload: unknown,
  ctx: TemplateContext,
): EmailContent {
  const template = EMAIL_TEMPLATES[type];
  if (!template) throw new NoticePayloadError(type, "no template for this type");
  return template(payload, ctx);
}
