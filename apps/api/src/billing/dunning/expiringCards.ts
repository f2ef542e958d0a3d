import type { PrismaClient } from "@zigznote/database";
import { transaction } from "../../lib/afterCommit";
import { DAY_MS } from "../../lib/time";
import type { AdminNotice } from "../../notifications";
import * as customerStore from "../customers/store";
import type { BillingSettings } from "../settings";

/**
 * Pre-dunning: Stripe does not warn customers that their card is about to expire, and an expired
 * card fails the next renewal. The daily `warnExpiringCards` job e-mails the admins (and the
 * billing e-mail) 30 days and again 7 days before the organization's default card expires, once
 * per threshold and card (the outbox's dedupe key names the card, its expiry and the threshold,
 * so a rerun or a second instance queues nothing new), only while a paid subscription will renew
 * after the expiry (live, not set to cancel at the end of its period). A card the card updater
 * renewed has its new expiry (`payment_method.automatically_updated`), so it is not warned about;
 * a notice queued before the renewal is skipped at delivery (`isNoticeObsolete`).
 */

/** The thresholds, in days before the expiry, largest first. */
export const CARD_WARNING_DAYS = [30, 7] as const;

/** The threshold a card expiring at `expiresAt` has reached at `now`, or null. */
export function cardWarningThreshold(expiresAt: Date, now: Date): number | null {
  const left = expiresAt.getTime() - now.getTime();
  if (left <= 0) return null;
  let reached: number | null = null;
  for (const days of CARD_WARNING_DAYS) {
    if (left <= days * DAY_MS) reached = days;
  }
  return reached;
}

/** The dedupe key of a card's warning: one per card, expiry and threshold. */
export function cardWarningKey(paymentMethodId: string, expiresAt: Date, days: number): string {
  return `card-expiring:${paymentMethodId}:${expiresAt.toISOString().slice(0, 7)}:${days}`;
}

/**
 * Queues the warnings due at `now` in one transaction. Returns the cards due a warning and the
 * notices newly queued (0 for cards already warned at their threshold).
 */
export async function warnExpiringCards(
  deps: { db: PrismaClient; settings: Pick<BillingSettings, "notices"> },
  input: { now: Date },
): Promise<{ cards: number; queued: number }> {
  const { now } = input;
  const until = new Date(now.getTime() + Math.max(...CARD_WARNING_DAYS) * DAY_MS);
  return transaction(deps.db, async (tx) => {
    const cards = await customerStore.findExpiringDefaultCards(tx, { now, until });
    const notices: AdminNotice[] = [];
    for (const card of cards) {
      const days = card.expires_at ? cardWarningThreshold(card.expires_at, now) : null;
      if (days === null || !card.expires_at || card.exp_month === null || card.exp_year === null) {
        continue;
      }
      notices.push({
        organizationId: card.organization_id,
        type: "billing.card_expiring",
        payload: {
          paymentMethodId: card.id,
          brand: card.brand ?? "unknown",
          last4: card.last4 ?? "????",
          expMonth: card.exp_month,
          expYear: card.exp_year,
          expiresAt: card.expires_at.toISOString(),
          daysBefore: days,
        },
        dedupeKey: cardWarningKey(card.id, card.expires_at, days),
      });
    }
    const queued = await deps.settings.notices.enqueue(tx, notices);
    return { cards: notices.length, queued };
  });
}
