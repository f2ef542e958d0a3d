import type { PrismaClient } from "@zigznote/database";
import type { Counter } from "prom-client";
import { afterCommit, collectAfterCommit, type AfterCommitTask } from "../lib/afterCommit";
import type { Logger } from "../lib/logger";
import { inSpan } from "../lib/tracing";
import {
  isProcessed,
  processWebhookOnce,
  processWebhookStatementOnce,
  WebhookInProgressError,
} from "./idempotency";
import {
  isPreparedHandler,
  isStatementHandler,
  type WebhookEvent,
  type WebhookHandler,
  type WebhookRegistry,
} from "./registry";

/**
 * - processed: the handler ran and its effects committed with the record;
 * - duplicate: an earlier (or concurrent, now committed) delivery already did that;
 * - unhandled: no handler for this type: acknowledged, not recorded (a handler added later
 *   applies a redelivery).
 */
export type WebhookOutcome = "processed" | "duplicate" | "unhandled";

export interface WebhookProcessor {
  /** Applies the event exactly once. Throws when the handler fails (nothing is recorded). */
  process(event: WebhookEvent): Promise<WebhookOutcome>;
  /** Resolves when every after-commit task started so far has settled (tests, shutdown). */
  idle(): Promise<void>;
}

export interface WebhookProcessorDeps {
  db: PrismaClient;
  logger: Logger;
  /** Counts events by provider and outcome. */
  events: Counter<"provider" | "outcome">;
  lockTimeoutMs: number;
  transactionTimeoutMs: number;
}

/** One per app: runs the registry's handlers inside the claim transaction. */
export function createWebhookProcessor(
  deps: WebhookProcessorDeps,
  registry: WebhookRegistry,
): WebhookProcessor {
  const { events, db: database, logger } = deps;
  const pending = new Set<Promise<void>>();

  function runAfterCommit(event: WebhookEvent, tasks: AfterCommitTask[]): void {
    if (tasks.length === 0) return;
    const run = (async () => {
      // In order, each on its own: one failing task does not stop the next.
      for (const task of tasks) {
        try {
          await task();
        } catch (error) {
          logger.error(
            { err: error, provider: event.provider, eventId: event.id, eventType: event.type },
            "webhook after-commit task failed",
          );
        }
      }
    })();
    pending.add(run);
    void run.finally(() => pending.delete(run));
  }

  /**
   * One span per delivery (`webhook <provider> <type>`, with its outcome), and below it the claim
   * (`webhook.claim`) and the handler (`webhook.handle`), each with its statements.
   */
  async function process(event: WebhookEvent): Promise<WebhookOutcome> {
    const attributes = {
      "zigznote.webhook.provider": event.provider,
      "zigznote.webhook.event_type": event.type,
      "zigznote.webhook.event_id": event.id,
    };
    return inSpan(`webhook ${event.provider} ${event.type}`, { attributes }, async (span) => {
      const outcome = await processEvent(event);
      span.setAttribute("zigznote.webhook.outcome", outcome);
      return outcome;
    });
  }

  async function processEvent(event: WebhookEvent): Promise<WebhookOutcome> {
    const claim = { provider: event.provider, eventId: event.id, eventType: event.type };
    const handler = registry.get(event.provider, event.type);
    try {
      if (!handler) {
        // Nothing to apply, so nothing is recorded: a record would make a later redelivery of
        // this event (a provider's replay once a handler for its type has shipped) a "duplicate"
        // that never takes effect. Acknowledged so that the provider does not retry it.
        events.inc({ provider: event.provider, outcome: "unhandled" });
        return "unhandled";
      }

      if (isStatementHandler(handler)) {
        // The claim and the effect are one statement: one span for both.
        const outcome = await inSpan(
          "webhook.claim",
          { attributes: { "zigznote.webhook.handled_in_claim": true } },
          () =>
            processWebhookStatementOnce(
              database,
              claim,
              (claimed) => handler.statement(event, claimed),
              { now: event.receivedAt, lockTimeoutMs: deps.lockTimeoutMs },
            ),
        );
        events.inc({ provider: event.provider, outcome });
        return outcome;
      }

      let handle: WebhookHandler;
      if (isPreparedHandler(handler)) {
        // Asking the provider again for an event already applied would be wasted (or fail).
        if (await isProcessed(database, claim.provider, claim.eventId)) {
          events.inc({ provider: event.provider, outcome: "duplicate" });
          return "duplicate";
        }
        const prepared = await handler.prepare(event);
        handle = (preparedEvent, tx, hooks) => handler.handle(preparedEvent, tx, hooks, prepared);
      } else {
        handle = handler;
      }
      const { result, tasks } = await collectAfterCommit(() =>
        processWebhookOnce(
          database,
          claim,
          (tx) => inSpan("webhook.handle", {}, () => handle(event, tx, { afterCommit })),
          {
            now: event.receivedAt,
            lockTimeoutMs: deps.lockTimeoutMs,
            timeoutMs: deps.transactionTimeoutMs,
          },
        ),
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
