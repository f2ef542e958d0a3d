import { useId, useState, type ReactNode } from "react";
import type { paths } from "@zigznote/api-client";
import { api, unwrap } from "../../api";
import { ActionDialog } from "../../components/Dialog";
import { formatDateTime, fromDateTimeInput, humanize, toDateTimeInput } from "../../format";
import type { Detail, Done, Notice, Subscription, Violation } from "./types";

const DAY_MS = 86_400_000;

/** What each action acts on, besides the organization itself. */
interface ActionTargets {
  extendGrace: { violation: Violation };
  waive: { violation: Violation };
  recheck: object;
  resend: { notice: Notice };
  liftSuspension: { subscription: Subscription };
}
export type ActionKind = keyof ActionTargets;

/** An action the operator opened, with its target (one kind, or any kind by default). */
export type PendingAction<K extends ActionKind = ActionKind> = {
  [P in K]: { kind: P } & ActionTargets[P];
}[K];

type PostOf<P extends keyof paths> = paths[P] extends { post: infer Operation } ? Operation : never;
type RequestBody<P extends keyof paths> =
  PostOf<P> extends { requestBody?: { content: { "application/json": infer Body } } }
    ? Body
    : never;
type Answer<P extends keyof paths> =
  PostOf<P> extends { responses: { 200: { content: { "application/json": infer Body } } } }
    ? Body
    : never;
/** The endpoints an action can call: a POST on `{id}` whose answer names its audit entry. */
type ActionEndpoint = {
  [P in keyof paths]: PostOf<P> extends { parameters: { path: { id: string } } }
    ? Answer<P> extends { auditId: string }
      ? P
      : never
    : never;
}[keyof paths];

/** One row of the table: what the dialog shows, what it sends and what the banner says after. */
interface ActionRow<K extends ActionKind, E extends ActionEndpoint> {
  title: string;
  confirmLabel: string;
  description: (action: PendingAction<K>) => ReactNode;
  /** An input above the reason (a date, a number of days) and its value when the dialog opens. */
  input?: {
    label: string;
    type: "datetime-local" | "number";
    min?: number;
    max?: number;
    initial: (action: PendingAction<K>) => string;
  };
  endpoint: E;
  /** The `{id}` in the endpoint's path. */
  pathId: (action: PendingAction<K>, organizationId: string) => string;
  body: (action: PendingAction<K>, reason: string, input: string) => RequestBody<E>;
  doneText: (answer: Answer<E>) => string;
  /** Where the audit log link of the banner points. */
  target: (action: PendingAction<K>, organizationId: string) => Omit<Done, "text" | "auditId">;
}

/** A row with its endpoint bound: what the dialog needs, whatever the endpoint's types. */
interface Action<K extends ActionKind> {
  title: string;
  confirmLabel: string;
  description: ActionRow<K, ActionEndpoint>["description"];
  input: ActionRow<K, ActionEndpoint>["input"];
  run: (
    action: PendingAction<K>,
    organizationId: string,
    reason: string,
    input: string,
  ) => Promise<Done>;
}

function defineAction<K extends ActionKind, E extends ActionEndpoint>(
  row: ActionRow<K, E>,
): Action<K> {
  return {
    title: row.title,
    confirmLabel: row.confirmLabel,
    description: row.description,
    input: row.input,
    run: async (action, organizationId, reason, input) => {
      const answer = await post(
        row.endpoint,
        row.pathId(action, organizationId),
        row.body(action, reason, input),
      );
      return {
        text: row.doneText(answer),
        auditId: answer.auditId,
        ...row.target(action, organizationId),
      };
    },
  };
}

/**
 * POSTs `body` to an action's endpoint. openapi-fetch cannot work out its own types for a path
 * that is a type parameter, so the call is typed here by hand from the same `paths`: the body and
 * the answer a row declares are the endpoint's, and ActionEndpoint admits only answers with an
 * `auditId`.
 */
async function post<E extends ActionEndpoint>(
  endpoint: E,
  id: string,
  body: RequestBody<E>,
): Promise<Answer<E> & { auditId: string }> {
  const send = api.POST.bind(api) as (
    url: ActionEndpoint,
    init: { params: { path: { id: string } }; body: unknown },
  ) => Promise<{ data?: Answer<E> & { auditId: string }; error?: unknown; response: Response }>;
  return unwrap(send(endpoint, { params: { path: { id } }, body }));
}

/** The organization page's actions; one dialog renders any of them. */
const ACTIONS: { [K in ActionKind]: Action<K> } = {
  extendGrace: defineAction({
    title: "Extend the grace period",
    confirmLabel: "Extend grace",
    description: ({ violation }) => (
      <p>
        The {humanize(violation.type)} violation is not enforced until the new date.{" "}
        {violation.graceEndsAt
          ? `Its grace ends now: ${formatDateTime(violation.graceEndsAt)}.`
          : "It has no grace period now: this starts one."}
      </p>
    ),
    input: {
      label: "New grace end (UTC)",
      type: "datetime-local",
      // A week past the current grace end, or past now when that is earlier.
      initial: ({ violation }) => {
        const base = violation.graceEndsAt ? Date.parse(violation.graceEndsAt) : Date.now();
        return toDateTimeInput(new Date(Math.max(base, Date.now()) + 7 * DAY_MS));
      },
    },
    endpoint: "/api/v1/admin/violations/{id}/extend-grace",
    pathId: ({ violation }) => violation.id,
    body: ({ violation }, reason, input) => ({
      reason,
      expectedVersion: violation.version,
      graceEndsAt: fromDateTimeInput(input),
    }),
    doneText: (answer) => `Grace extended to ${formatDateTime(answer.violation.graceEndsAt)}`,
    target: ({ violation }) => ({ targetType: "violation", targetId: violation.id }),
  }),
  waive: defineAction({
    title: "Waive the violation",
    confirmLabel: "Waive",
    description: ({ violation }) => (
      <p>
        The {humanize(violation.type)} violation stays listed but is not enforced until the date
        below; after it, it is enforced again.
      </p>
    ),
    input: {
      label: "Waived until (UTC)",
      type: "datetime-local",
      initial: () => toDateTimeInput(new Date(Date.now() + 30 * DAY_MS)),
    },
    endpoint: "/api/v1/admin/violations/{id}/waive",
    pathId: ({ violation }) => violation.id,
    body: ({ violation }, reason, input) => ({
      reason,
      expectedVersion: violation.version,
      until: fromDateTimeInput(input),
    }),
    doneText: (answer) => `Violation waived until ${formatDateTime(answer.violation.waivedUntil)}`,
    target: ({ violation }) => ({ targetType: "violation", targetId: violation.id }),
  }),
  recheck: defineAction({
    title: "Re-check violations now",
    confirmLabel: "Re-check",
    description: () => <p>Measures usage against the plan now and updates the violations.</p>,
    endpoint: "/api/v1/admin/organizations/{id}/recheck-violations",
    pathId: (_action, organizationId) => organizationId,
    body: (_action, reason) => ({ reason }),
    doneText: (answer) =>
      `Re-checked: ${answer.violations.length} unresolved, ${answer.added.length} new, ${answer.resolved.length} resolved`,
    target: (_action, organizationId) => ({ targetType: "organization", targetId: organizationId }),
  }),
  resend: defineAction({
    title: "Resend the notice",
    confirmLabel: "Resend",
    description: ({ notice }) => (
      <p>Queues the {humanize(notice.type)} notice for delivery again.</p>
    ),
    endpoint: "/api/v1/admin/notices/{id}/resend",
    pathId: ({ notice }) => notice.id,
    body: (_action, reason) => ({ reason }),
    doneText: (answer) => `Notice queued again (${answer.notice.status})`,
    target: ({ notice }) => ({ targetType: "notice", targetId: notice.id }),
  }),
  liftSuspension: defineAction({
    title: "Lift the suspension",
    confirmLabel: "Lift suspension",
    description: () => (
      <p>
        The organization may write again for the number of days below without paying (a comp); after
        it, the suspension applies again unless they pay.
      </p>
    ),
    input: { label: "Days (1–90)", type: "number", min: 1, max: 90, initial: () => "7" },
    endpoint: "/api/v1/admin/organizations/{id}/lift-suspension",
    pathId: (_action, organizationId) => organizationId,
    body: ({ subscription }, reason, input) => ({
      reason,
      expectedVersion: subscription.version,
      days: Number(input),
    }),
    doneText: (answer) =>
      `Suspension lifted until ${formatDateTime(answer.subscription?.compUntil)}`,
    target: ({ subscription }) => ({ targetType: "subscription", targetId: subscription.id }),
  }),
};

/**
 * The action with its target as last loaded: after a 409 the page reloads, and confirming again
 * sends the version just read instead of the stale one.
 */
export function withCurrentTarget(action: PendingAction, data: Detail): PendingAction {
  switch (action.kind) {
    case "extendGrace":
    case "waive": {
      const current = data.violations.find((violation) => violation.id === action.violation.id);
      return current ? { ...action, violation: current } : action;
    }
    case "liftSuspension":
      return data.subscription ? { ...action, subscription: data.subscription } : action;
    default:
      return action;
  }
}

/** The confirm dialog of any action in the table, with the action's own input. */
export function OrganizationActionDialog<K extends ActionKind>({
  action,
  organizationId,
  onDone,
  onConflict,
  onClose,
}: {
  action: PendingAction<K>;
  organizationId: string;
  onDone: (done: Done) => void;
  onConflict: () => void;
  onClose: () => void;
}) {
  const row: Action<K> = ACTIONS[action.kind];
  const inputId = useId();
  const [input, setInput] = useState(() => row.input?.initial(action) ?? "");
  return (
    <ActionDialog
      title={row.title}
      confirmLabel={row.confirmLabel}
      description={row.description(action)}
      onConflict={onConflict}
      onClose={onClose}
      onConfirm={async (reason) => {
        onDone(await row.run(action, organizationId, reason, input));
      }}
    >
      {row.input ? (
        <>
          <label htmlFor={inputId}>{row.input.label}</label>
          <input
            id={inputId}
            type={row.input.type}
            min={row.input.min}
            max={row.input.max}
            required
            value={input}
            onChange={(event) => setInput(event.target.value)}
          />
        </>
      ) : null}
    </ActionDialog>
  );
}
