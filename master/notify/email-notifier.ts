import nodemailer from 'nodemailer';
import { describeError } from '../../shared/platform/errors';
import { renderDigest } from './notification-format';
import { DeliveryError, type Notifier } from './notifier';

export interface EmailNotifierOptions {
  /** smtp:// or smtps:// URL, credentials included. */
  readonly smtpUrl: string;
  readonly from: string;
  /** Connection, greeting and socket timeouts, so a hung server cannot hold a delivery forever. @defaultValue 10000 */
  readonly timeoutMs?: number;
}

/**
 * SMTP classification (RFC 5321): 4xx replies are transient (mailbox busy, greylisting), 5xx permanent (no such user,
 * rejected). No reply code at all means the network or the server is down: transient.
 */
export function classifySmtpError(err: unknown): DeliveryError {
  const code = (err as { responseCode?: unknown }).responseCode;
  const reason = describeError(err);
  if (typeof code === 'number' && code >= 500) return new DeliveryError(`SMTP ${code}: ${reason}`, false, { cause: err });
  if (typeof code === 'number' && code >= 400) return new DeliveryError(`SMTP ${code}: ${reason}`, true, { cause: err });
  return new DeliveryError(reason, true, { cause: err });
}

/** Email digests over a pooled nodemailer SMTP transport: connections are reused across digests. */
export function createEmailNotifier(options: EmailNotifierOptions): Notifier {
  const timeout = options.timeoutMs ?? 10_000;
  const transport = nodemailer.createTransport({
    url: options.smtpUrl,
    pool: true,
    maxConnections: 2,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout * 3,
  });
  return {
    channel: 'email',
    async send(target, alerts, { summary }) {
      const mail = renderDigest(alerts, { summary });
      try {
        const info = await transport.sendMail({ from: options.from, to: target, subject: mail.subject, text: mail.text, html: mail.html });
        return { messageId: String(info.messageId) };
      } catch (err) {
        throw classifySmtpError(err);
      }
    },
    async close() {
      transport.close();
    },
  };
}
