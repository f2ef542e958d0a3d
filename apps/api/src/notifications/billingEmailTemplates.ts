import { z } from "zod";
import {
  billingButton,
  formatAmount,
  formatDate,
  isoDate,
  parse,
  planName,
  type EmailBlock,
  type Template,
  type TemplateContext,
} from "./emailContent";

/** The e-mails of billing notices (dunning, trials, cards, subscriptions) and disputes. */

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
/** `reason`: absent when a payment restored access, `invoice_voided` when the invoice was voided. */
const restoredPayload = z.object({ reason: z.enum(["invoice_voided"]).optional() }).loose();
const duplicatePayload = z.object({
  keptSubscriptionId: z.string(),
  keptPlanSlug: z.string(),
  canceledSubscriptionId: z.string(),
  canceledPlanSlug: z.string(),
});

function monthName(month: number): string {
  return new Intl.DateTimeFormat("en-GB", { month: "long", timeZone: "UTC" }).format(
    new Date(Date.UTC(2000, month - 1, 1)),
  );
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

/** The template of each billing notice type (and the platform admins' dispute notice). */
export const BILLING_EMAIL_TEMPLATES: Readonly<Record<string, Template>> = {
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
    const p = parse("billing.access_restored", restoredPayload, payload);
    if (p.reason === "invoice_voided") {
      return {
        subject: `Access restored for ${ctx.organizationName}`,
        preview: "The unpaid invoice was voided: nothing is owed. Everything works again.",
        heading: "Access restored",
        blocks: [
          {
            kind: "paragraph",
            text: `The unpaid invoice of ${ctx.organizationName} was voided, so nothing is owed on it any more, and ${ctx.organizationName} has full access again.`,
          },
          { kind: "button", label: "Open zigznote", url: ctx.appUrl },
        ],
      };
    }
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
};
