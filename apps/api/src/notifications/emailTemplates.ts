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
}

/** What every template may use besides its notice's payload. */
export interface TemplateContext {
  organizationName: string;
  /** Where the web app's billing page is (it opens Stripe's Customer Portal). */
  billingUrl: string;
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

function planName(slug: string): string {
  return slug.charAt(0).toUpperCase() + slug.slice(1);
}

const payButton = (ctx: TemplateContext): EmailBlock => ({
  kind: "button",
  label: "Update payment method",
  url: ctx.billingUrl,
});

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
        payButton(ctx),
      ],
    };
  };
}

/** The template of each notice type (the outbox's `type`). */
export const EMAIL_TEMPLATES: Readonly<Record<string, Template>> = {
  "billing.payment_failed": paymentFailed("billing.payment_failed", false),
  "billing.payment_failed.final": paymentFailed("billing.payment_failed.final", true),

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
        payButton(ctx),
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

/** A rendering of every template and variant with sample data (the preview command, tests). */
export const EMAIL_SAMPLES: readonly {
  name: string;
  type: string;
  payload: Record<string, unknown>;
}[] = [
  {
    name: "payment-failed",
    type: "billing.payment_failed",
    payload: {
      attempt: 1,
      maxAttempts: 4,
      amountDue: 1900,
      currency: "usd",
      graceEndsAt: "2026-12-06T09:00:00.000Z",
    },
  },
  {
    name: "payment-failed-final",
    type: "billing.payment_failed.final",
    payload: {
      attempt: 4,
      maxAttempts: 4,
      amountDue: 4900,
      currency: "eur",
      graceEndsAt: "2026-12-06T09:00:00.000Z",
      suspendsAt: "2026-12-06T09:00:00.000Z",
    },
  },
  {
    name: "suspended",
    type: "billing.suspended",
    payload: { graceEndedAt: "2026-12-06T09:00:00.000Z" },
  },
  { name: "access-restored", type: "billing.access_restored", payload: {} },
  {
    name: "duplicate-subscription-canceled",
    type: "billing.duplicate_subscription_canceled",
    payload: {
      keptSubscriptionId: "sub_1PkeptExample",
      keptPlanSlug: "pro",
      canceledSubscriptionId: "sub_1PsecondExample",
      canceledPlanSlug: "business",
    },
  },
  {
    name: "violation-meetings-read-only",
    type: "plan.violation",
    payload: { planSlug: "free", type: "meetings", limit: 10, current: 14, action: "read_only" },
  },
  {
    name: "violation-team-members",
    type: "plan.violation",
    payload: {
      planSlug: "pro",
      type: "team_members",
      limit: 5,
      current: 7,
      action: "notify_admin",
    },
  },
  {
    name: "violation-storage-grace",
    type: "plan.violation",
    payload: {
      planSlug: "free",
      type: "storage",
      limit: 1073741824,
      current: 1610612736,
      action: "grace_period",
      graceEndsAt: "2026-12-06T09:00:00.000Z",
    },
  },
  {
    name: "violation-storage-read-only",
    type: "plan.violation",
    payload: {
      planSlug: "free",
      type: "storage",
      limit: 1073741824,
      current: 1610612736,
      action: "read_only",
      graceEndsAt: "2026-12-06T09:00:00.000Z",
    },
  },
  {
    name: "storage-grace-ending",
    type: "plan.storage_grace_ending",
    payload: {
      planSlug: "free",
      limit: 1073741824,
      current: 1610612736,
      graceEndsAt: "2026-11-30T09:00:00.000Z",
    },
  },
  {
    name: "violation-resolved",
    type: "plan.violation_resolved",
    payload: { planSlug: "free", type: "storage" },
  },
];
