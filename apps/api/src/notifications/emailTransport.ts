import nodemailer, { type SendMailOptions } from "nodemailer";
import type { Logger } from "../lib/logger";
import { inSpan, SpanKind } from "../lib/tracing";
import { NoticePayloadError } from "./emailContent";
import { buildEmailContent } from "./emailTemplates";
import { renderEmail } from "./emailRender";
import { PermanentDeliveryError, type NotificationTransport } from "./outbox";

/**
 * Notices as e-mails, through nodemailer: one message per outbox row, to the row's recipient,
 * rendered from the notice's template. The Message-ID is derived from the row id, so a resend
 * after a crash (sent, then the deliverer died before marking it) carries the same id and a
 * receiver can drop it. SMTP answers are classified for the outbox: a 5xx reply (other than
 * 503) is permanent; 4xx replies, timeouts and refused or cut connections are temporary.
 */

export interface EmailSettings {
  /** `log`: render and write to the log (no network); `smtp`: send to SMTP_URL. */
  mode: "log" | "smtp";
  smtpUrl?: string;
  /** The From header: `zigznote <notices@example.com>` or a bare address. */
  from: string;
  /** The web app's origin: links in e-mails point under it. */
  appUrl: string;
  /** Connection, greeting and socket timeouts of one send (ms). */
  timeoutMs?: number;
}

/** The domain of the From address (the right-hand side of Message-IDs). */
export function messageIdDomain(from: string): string {
  const address = /<([^>]+)>/.exec(from)?.[1] ?? from;
  const domain = address.split("@")[1]?.trim();
  return domain && /^[A-Za-z0-9.-]+$/.test(domain) ? domain.toLowerCase() : "zigznote.invalid";
}

/** The Message-ID of a notice's e-mail: the same for every attempt of one outbox row. */
export function noticeMessageId(notificationId: string, from: string): string {
  return `<notice.${notificationId}@${messageIdDomain(from)}>`;
}

/** True when an SMTP error will not go away by retrying (5xx reply, except 503). */
function isPermanentSmtpError(error: unknown): boolean {
  const code = (error as { responseCode?: unknown } | null)?.responseCode;
  return typeof code === "number" && code >= 500 && code < 600 && code !== 503;
}

/** The SMTP server's host and port from SMTP_URL (its default port when the URL has none). */
function smtpServerOf(smtpUrl: string | undefined): { host: string; port: number } | null {
  if (!smtpUrl) return null;
  const url = new URL(smtpUrl);
  const port = url.port ? Number(url.port) : url.protocol === "smtps:" ? 465 : 587;
  return { host: url.hostname, port };
}

/** The web app's billing page (it opens Stripe's Customer Portal for the organization). */
export function billingPageUrl(appUrl: string): string {
  return new URL("/settings/billing", appUrl).toString();
}

/**
 * The billing page asked to open the portal's card form directly: the web app passes `flow` on
 * to `POST /api/v1/billing/portal` (a portal session itself expires within minutes, so an
 * e-mail cannot carry one).
 */
export function cardUpdatePageUrl(appUrl: string): string {
  const url = new URL("/settings/billing", appUrl);
  url.searchParams.set("flow", "payment_method_update");
  return url.toString();
}

/** Renders a notice's e-mail (subject, HTML, text) as it will be sent. */
export async function renderNoticeEmail(
  notice: { type: string; payload: unknown; organizationName: string },
  appUrl: string,
) {
  const content = buildEmailContent(notice.type, notice.payload, {
    organizationName: notice.organizationName,
    appUrl: new URL("/", appUrl).toString(),
    billingUrl: billingPageUrl(appUrl),
    cardUpdateUrl: cardUpdatePageUrl(appUrl),
  });
  return renderEmail(content);
}

/** The e-mail transport of the outbox. */
export function createEmailTransport(
  settings: EmailSettings,
  logger: Logger,
): NotificationTransport & { close(): void } {
  const timeoutMs = settings.timeoutMs ?? 15_000;
  const mailer =
    settings.mode === "smtp"
      ? nodemailer.createTransport({
          url: settings.smtpUrl,
          connectionTimeout: timeoutMs,
          greetingTimeout: timeoutMs,
          socketTimeout: timeoutMs,
        })
      : nodemailer.createTransport({ jsonTransport: true });

  // Where the SMTP span says it went: host and port only (the URL may hold credentials).
  const smtpServer = settings.mode === "smtp" ? smtpServerOf(settings.smtpUrl) : null;
  const deliver = async (message: SendMailOptions, noticeType: string): Promise<void> => {
    if (!smtpServer) {
      await mailer.sendMail(message);
      return;
    }
    await inSpan(
      "smtp send",
      {
        kind: SpanKind.CLIENT,
        attributes: {
          "server.address": smtpServer.host,
          "server.port": smtpServer.port,
          "network.protocol.name": "smtp",
          "zigznote.notice.type": noticeType,
        },
      },
      async () => {
        await mailer.sendMail(message);
      },
    );
  };

  return {
    async send(notice) {
      if (!notice.recipientEmail) {
        throw new PermanentDeliveryError("the recipient has no e-mail address");
      }
      let rendered;
      try {
        rendered = await renderNoticeEmail(notice, settings.appUrl);
      } catch (error) {
        if (error instanceof NoticePayloadError) {
          throw new PermanentDeliveryError(error.message, { cause: error });
        }
        throw error;
      }
      const messageId = noticeMessageId(notice.id, settings.from);
      try {
        await deliver(
          {
            from: settings.from,
            to: notice.recipientEmail,
            subject: rendered.subject,
            html: rendered.html,
            text: rendered.text,
            messageId,
            headers: {
              "Auto-Submitted": "auto-generated",
              "X-Zigznote-Notice": `${notice.type}; id=${notice.id}`,
            },
          },
          notice.type,
        );
      } catch (error) {
        if (isPermanentSmtpError(error)) {
          const message = error instanceof Error ? error.message : String(error);
          throw new PermanentDeliveryError(message, { cause: error });
        }
        throw error;
      }
      if (settings.mode === "log") {
        logger.info(
          {
            notificationId: notice.id,
            type: notice.type,
            organizationId: notice.organizationId,
            to: notice.recipientEmail,
            subject: rendered.subject,
            messageId,
          },
          "e-mail (EMAIL_TRANSPORT=log: not sent)",
        );
      }
    },
    close() {
      mailer.close();
    },
  };
}
