import type { Schema } from "../../api";

export type Detail = Schema<"AdminOrganizationDetail">;
export type Violation = Schema<"AdminViolationWithHistory">;
export type Notice = Schema<"AdminNotice">;
// The document marks the component nullable (the detail's `subscription` is): a row is not.
export type Subscription = NonNullable<Schema<"AdminSubscription">>;

/** An action just done: the banner's text and the audit entry it links to. */
export interface Done {
  text: string;
  auditId: string;
  targetType: Schema<"AdminAuditTargetType">;
  targetId: string;
}
