import type { Prisma } from "@zigznote/database";

import { WEBHOOK_PROVIDERS, type WebhookProvider } from "@zigznote/shared";

export { WEBHOOK_PROVIDERS, type WebhookProvider };

/** A verified provider event, as handlers see it. */
export interface WebhookEvent<TPayload = unknown> {
  provider: WebhookProvider;
  /** The provider's id of the event (Stripe `evt_...`, Svix message id): stable across retries. */
  id: string;
  type: string;
  /** The parsed, signature-checked body. */
  payload: TPayload;
  /** When this delivery arrived (the app's clock). */
  receivedAt: Date;
}

export interface WebhookHandlerHooks {
  /**
   * Runs `task` after the transaction has committed (never when it rolls back), without holding
   * the HTTP answer. A failing task is logged and not retried: use it for best-effort work such as
   * delivering what an outbox row already records, or outbound calls that must not run inside the
   * transaction.
   */
  afterCommit(task: () => Promise<void>): void;
}

/**
 * Applies one event's effects through `tx`, the transaction that also records the event as
 * processed. Throwing rolls both back and the provider's retry runs the handler again.
 */
export type WebhookHandler<TPayload = unknown> = (
  event: WebhookEvent<TPayload>,
  tx: Prisma.TransactionClient,
  hooks: WebhookHandlerHooks,
) => Promise<void>;

/**
 * A handler whose whole effect is one data-modifying SQL statement (an upsert, say). It runs as
 * a single autocommit statement together with the event's claim, one round trip instead of a
 * transaction's four: `statement` builds the effect, which must act only when `claimed` (a SQL
 * condition: the claim inserted this event's record) holds. Atomic like the transactional form:
 * if the statement fails, the claim is not recorded either.
 */
export interface StatementHandler<TPayload = unknown> {
  statement(event: WebhookEvent<TPayload>, claimed: Prisma.Sql): Prisma.Sql;
}

/**
 * A handler that must ask the provider something before it can apply the event (a Stripe
 * dispute names only its charge; the charge names the customer). `prepare` runs before the
 * claim transaction, never inside one (outbound calls are allowed there); its result is handed
 * to `handle`, which runs in the transaction like any handler. A `prepare` that throws answers
 * 5xx and records nothing, so the provider retries. An event already processed is answered as
 * a duplicate without preparing it.
 */
export interface PreparedHandler<TPayload = unknown, TPrepared = unknown> {
  prepare(event: WebhookEvent<TPayload>): Promise<TPrepared>;
  handle(
    event: WebhookEvent<TPayload>,
    tx: Prisma.TransactionClient,
    hooks: WebhookHandlerHooks,
    prepared: TPrepared,
  ): Promise<void>;
}

export type AnyWebhookHandler = WebhookHandler | StatementHandler | PreparedHandler;

/** True for the single-statement form. */
export function isStatementHandler(handler: AnyWebhookHandler): handler is StatementHandler {
  return typeof handler === "object" && "statement" in handler;
}

/** True for the form that asks the provider first. */
export function isPreparedHandler(handler: AnyWebhookHandler): handler is PreparedHandler {
  return typeof handler === "object" && "prepare" in handler;
}

/**
 * (provider, event type) -> handler. Each app builds its own (the composition root registers
 * each feature's handlers with their dependencies),
 * so a test can change one app's handlers without affecting another's. Event types with no
 * handler are acknowledged and not recorded (see the processor).
 */
export class WebhookRegistry {
  private readonly handlers = new Map<string, AnyWebhookHandler>();

  private static key(provider: WebhookProvider, type: string): string {
    return `${provider}\u0000${type}`;
  }

  /** Adds a handler; registering the same (provider, type) twice is a mistake and throws. */
  register<TPayload, TPrepared = unknown>(
    provider: WebhookProvider,
    type: string,
    handler:
      WebhookHandler<TPayload> | StatementHandler<TPayload> | PreparedHandler<TPayload, TPrepared>,
  ): this {
    const key = WebhookRegistry.key(provider, type);
    if (this.handlers.has(key)) {
      throw new Error(`a ${provider} webhook handler for "${type}" is already registered`);
    }
    this.handlers.set(key, handler as AnyWebhookHandler);
    return this;
  }

  /** Replaces (or adds) the handler of (provider, type): for wrapping one, e.g. in tests. */
  replace<TPayload, TPrepared = unknown>(
    provider: WebhookProvider,
    type: string,
    handler:
      WebhookHandler<TPayload> | StatementHandler<TPayload> | PreparedHandler<TPayload, TPrepared>,
  ): this {
    this.handlers.set(WebhookRegistry.key(provider, type), handler as AnyWebhookHandler);
    return this;
  }

  get(provider: WebhookProvider, type: string): AnyWebhookHandler | undefined {
    return this.handlers.get(WebhookRegistry.key(provider, type));
  }

  has(provider: WebhookProvider, type: string): boolean {
    return this.handlers.has(WebhookRegistry.key(provider, type));
  }
}
