import { BILLING_EMAIL_TEMPLATES } from "./billingEmailTemplates";
import {
  NoticePayloadError,
  type EmailContent,
  type Template,
  type TemplateContext,
} from "./emailContent";
import { PLAN_EMAIL_TEMPLATES } from "./planEmailTemplates";

/**
 * One template per notice type, written once as content (`emailContent.ts`) that
 * `emailRender.ts` turns into both the HTML and the plain-text part. The templates live by notice
 * family: billing (`billingEmailTemplates.ts`) and plan limits (`planEmailTemplates.ts`).
 */

/** The template of each notice type (the outbox's `type`). */
export const EMAIL_TEMPLATES: Readonly<Record<string, Template>> = {
  ...BILLING_EMAIL_TEMPLATES,
  ...PLAN_EMAIL_TEMPLATES,
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
