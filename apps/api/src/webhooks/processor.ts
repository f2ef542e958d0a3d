import type { AppContext } from "../context";
import {
  checkAndMarkProcessed,
  processWebhookOnce,
  processWebhookStatementOnce,
  WebhookInProgressError,
} from "../utils/webhookIdempotency";
import { isStatementHandler, type WebhookEvent, type WebhookRegistry } from "./registry";

/**
 * - processed: the handler ran and its effects committed with the record;
 * - duplicate: an earlier (or concurrent, now committed) delivery already did that;
 * - unhandled: no handler for this type: recorded and acknowledged.
 */
export type WebhookOutcome = "processed" | "duplicate" | "unhandled";

export interface WebhookProcessor {
  /** Applies the event exactly once. Throws when the handler fails (nothing is recorded). */
  process(event: WebhookEvent): Promise<WebhookOutcome>;
  /** Resolves when every after-commit task started so far has settled (tests, shutdown). */
  idle(): Promise<void>;
}

/** One per app: runs the registry's handlers inside the claim transaction. */
export function createWebhookProcessor(
  ctx: AppContext,
  registry: WebhookRegistry,
): WebhookProcessor {
  const events = ctx.metrics.webhookEvents;
  const pending = new Set<Promise<void>>();

  function runAfterCommit(event: WebhookEvent, tasks: Array<() => Promise<void>>): void {
    if (tasks.length === 0) return;
    const run = (async () => {
      // In order, each on its own: one failing task does not stop the next.
      for (const task of tasks) {
        try {
          await task();
        } catch (error) {
          ctx.logger.error(
            { err: error, provider: event.provider, eventId: event.id, eventType: event.type },
            "webhook after-commit task failed",
          );
        }
      }
    })();
    pending.add(run);
    void run.finally(() => pending.delete(run));
  }

  async function process(event: WebhookEvent): Promise<WebhookOutcome> {
    const claim = { provider: event.provider, eventId: event.id, eventType: event.type };
    const handler = registry.get(event.provider, event.type);
    try {
      if (!handler) {
        // Nothing to apply: one statement, no transaction needed.
        const isFirst = await checkAndMarkProcessed(
          ctx.db,
          claim.provider,
          claim.eventId,
          claim.eventType,
          event.receivedAt,
        );
        const outcome = isFirst ? "unhandled" : "duplicate";
        events.inc({ provider: event.provider, outcome });
        return outcome;
      }

      if (isStatementHandler(handler)) {
        const outcome = await processWebhookStatementOnce(
          ctx.db,
          claim,
          (claimed) => handler.statement(event, claimed),
          { now: event.receivedAt, lockTimeoutMs: ctx.config.WEBHOOK_LOCK_TIMEOUT_MS },
        );
        events.inc({ provider: event.provider, outcome });
        return outcome;
      }

      const tasks: Array<() => Promise<void>> = [];
      const result = await processWebhookOnce(
        ctx.db,
        claim,
        (tx) =>
          handler(event, tx, {
            ctx,
            afterCommit: (task) => {
              tasks.push(task);
            },
          }),
        {
          now: event.receivedAt,
          lockTimeoutMs: ctx.config.WEBHOOK_LOCK_TIMEOUT_MS,
          timeoutMs: ctx.config.WEBHOOK_TRANSACTION_TIMEOUT_MS,
        },
      );
      if (result.status === "duplicate") {
        events.inc({ provider: event.provider, outcome: "duplicate" });
        return "duplicate";
      }
      events.inc({ provider: event.provider, outcome: "processed" });
      runAfterCommit(event, tasks);
      return "processed";
    } catch (error) {
      events.inc({
        provider: event.provider,
        outcome: error instanceof WebhookInProgressError ? "in_progress" : "failed",
      });
      throw error;
    }
  }

  return {
    process,
    async idle() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}
