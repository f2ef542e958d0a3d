import { z } from "zod";

/**
 * What the e-mail templates share: the content model (a heading, paragraphs, facts, a button)
 * that `emailRender.ts` turns into both the HTML (MJML) and the plain-text part, payload parsing,
 * and the formatting every notice family uses. Templates hold plain strings only: every value,
 * whether it comes from a user (the organization's name) or from Stripe (amounts, currencies,
 * URLs), is escaped by the renderer, never here.
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

/** One notice type's e-mail, from its outbox payload. */
export type Template = (payload: unknown, ctx: TemplateContext) => EmailContent;

/** The payload parsed by `schema`; a payload that does not fit throws NoticePayloadError. */
export function parse<T>(type: string, schema: z.ZodType<T>, payload: unknown): T {
  const result = schema.safeParse(payload);
  if (!result.success) throw new NoticePayloadError(type, result.error.issues[0]?.message ?? "");
  return result.data;
}

/** A timestamp in a payload, with its offset (as the outbox writes them). */
export const isoDate = z.iso.datetime({ offset: true });

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

/** A plan as people read it: "pro" -> "Pro". */
export function planName(slug: string): string {
  return slug.charAt(0).toUpperCase() + slug.slice(1);
}

/** The billing page's button (it opens Stripe's Customer Portal). */
export const billingButton = (ctx: TemplateContext): EmailBlock => ({
  kind: "button",
  label: "Manage your plan",
  url: ctx.billingUrl,
});
