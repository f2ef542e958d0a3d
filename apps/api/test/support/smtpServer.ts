/**
 * A real SMTP server in the test process (`smtp-server`), with every message it accepts parsed
 * by `mailparser`: the app's nodemailer transport talks SMTP to it as to any relay. Failures are
 * programmed per recipient at RCPT TO (a 4xx reply is temporary, a 5xx permanent), so what the
 * app does with them is what it would do with a real relay's answers.
 */
import type { AddressInfo } from "node:net";
import { simpleParser, type ParsedMail } from "mailparser";
import { SMTPServer } from "smtp-server";

export interface ReceivedMail {
  /** RCPT TO addresses of the SMTP transaction. */
  envelopeTo: string[];
  parsed: ParsedMail;
}

interface HoldRule {
  to: string;
  release: Promise<void>;
  onHeld: () => void;
}

interface FailureRule {
  to?: string;
  code: number;
  message: string;
  remaining: number;
}

export class TestSmtpServer {
  readonly messages: ReceivedMail[] = [];
  private readonly failures: FailureRule[] = [];
  private readonly holds: HoldRule[] = [];

  private constructor(
    private readonly server: SMTPServer,
    readonly port: number,
  ) {}

  static async start(): Promise<TestSmtpServer> {
    const holder: { smtp?: TestSmtpServer } = {};
    const server = new SMTPServer({
      authOptional: true,
      disableReverseLookup: true,
      disabledCommands: ["STARTTLS", "AUTH"],
      logger: false,
      size: 1024 * 1024,
      onRcptTo(address, _session, callback) {
        const hold = holder.smtp!.takeHold(address.address);
        if (hold) {
          // A slow relay: the RCPT answer waits until the test releases it.
          hold.onHeld();
          void hold.release.then(() => callback());
          return;
        }
        const failure = holder.smtp!.takeFailure(address.address);
        if (!failure) return callback();
        const error = new Error(failure.message) as Error & { responseCode: number };
        error.responseCode = failure.code;
        return callback(error);
      },
      onData(stream, session, callback) {
        simpleParser(stream)
          .then((parsed) => {
            holder.smtp!.messages.push({
              envelopeTo: session.envelope.rcptTo.map((rcpt) => rcpt.address),
              parsed,
            });
            callback();
          })
          .catch((error: Error) => callback(error));
      },
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.server.address() as AddressInfo).port;
    holder.smtp = new TestSmtpServer(server, port);
    return holder.smtp;
  }

  /** For SMTP_URL. */
  url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Refuses the next `times` (1) recipients matching `to` (any when unset) with `code`. */
  failNext(rule: { to?: string; code: number; message?: string; times?: number }): void {
    this.failures.push({
      to: rule.to?.toLowerCase(),
      code: rule.code,
      message: rule.message ?? (rule.code >= 500 ? "mailbox unavailable" : "try again later"),
      remaining: rule.times ?? 1,
    });
  }

  /**
   * Holds the answer to the next RCPT TO `to` (once) until `release` is called: a relay slow to
   * answer one message. `held` resolves when the client is waiting on it.
   */
  holdNext(to: string): { held: Promise<void>; release: () => void } {
    let release!: () => void;
    let onHeld!: () => void;
    const held = new Promise<void>((resolve) => (onHeld = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    this.holds.push({ to: to.toLowerCase(), release: released, onHeld });
    return { held, release };
  }

  /** Messages whose envelope goes to `address`. */
  to(address: string): ReceivedMail[] {
    const wanted = address.toLowerCase();
    return this.messages.filter((mail) =>
      mail.envelopeTo.some((rcpt) => rcpt.toLowerCase() === wanted),
    );
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private takeHold(address: string): HoldRule | null {
    const index = this.holds.findIndex((hold) => hold.to === address.toLowerCase());
    return index === -1 ? null : this.holds.splice(index, 1)[0]!;
  }

  private takeFailure(address: string): FailureRule | null {
    const rule = this.failures.find(
      (candidate) =>
        candidate.remaining > 0 && (!candidate.to || candidate.to === address.toLowerCase()),
    );
    if (!rule) return null;
    rule.remaining -= 1;
    return rule;
  }
}
