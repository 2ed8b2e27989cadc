import nodemailer from 'nodemailer';
import { describeError } from '../../shared/platform/errors';
import { scrubSecrets, urlCredentialForms } from '../../shared/platform/secrets';
import { renderDigest } from './notification-format';
import { DeliveryError, type ChannelSender } from './notifier';

export interface EmailNotifierOptions {
  /** smtp:// or smtps:// URL, credentials included. */
  readonly smtpUrl: string;
  readonly from: string;
  /**
   * Send only after STARTTLS: a server that does not offer it is a permanent failure, and the credentials in the URL are
   * never sent in clear text (nodemailer's `requireTLS`). smtps:// URLs use TLS from the start either way.
   * @defaultValue false
   */
  readonly requireTls?: boolean;
  /** Connection, greeting and socket timeouts, so a hung server cannot hold a delivery forever. @defaultValue 10000 */
  readonly timeoutMs?: number;
}

/**
 * SMTP classification (RFC 5321): 4xx replies are transient (mailbox busy, greylisting), 5xx permanent (no such user,
 * rejected). No reply code at all means the network or the server is down: transient.
 */
export function classifySmtpError(err: unknown, options: { requireTls?: boolean; secrets?: readonly string[] } = {}): DeliveryError {
  const { responseCode: code, code: errorCode, command } = err as { responseCode?: unknown; code?: unknown; command?: unknown };
  // The server refused STARTTLS for good (5xx: it does not offer it); waiting will not make it offer TLS. A 454 ("TLS not
  // available due to temporary reason", RFC 3207) stays transient like any 4xx.
  if (options.requireTls && errorCode === 'ETLS' && command === 'STARTTLS' && typeof code === 'number' && code >= 500) {
    return new DeliveryError(`SMTP server does not offer STARTTLS (answered ${code}) and SMTP_REQUIRE_TLS is set: not sending in clear text`, false, { cause: err });
  }
  // The reply text is the server's: it may quote the credentials it refused.
  const reason = scrubSecrets(describeError(err), options.secrets ?? []);
  if (typeof code === 'number' && code >= 500) return new DeliveryError(`SMTP ${code}: ${reason}`, false, { cause: err });
  if (typeof code === 'number' && code >= 400) return new DeliveryError(`SMTP ${code}: ${reason}`, true, { cause: err });
  return new DeliveryError(reason, true, { cause: err });
}

/** Email digests over a pooled nodemailer SMTP transport: connections are reused across digests and receivers. */
export function createEmailSender(options: EmailNotifierOptions): ChannelSender<'email'> {
  const timeout = options.timeoutMs ?? 10_000;
  const secrets = urlCredentialForms(options.smtpUrl);
  const transport = nodemailer.createTransport({
    url: options.smtpUrl,
    pool: true,
    requireTLS: options.requireTls === true,
    maxConnections: 2,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout * 3,
  });
  return {
    kind: 'email',
    async send(target, alerts, { summary, heldFor, deliveryId }) {
      const mail = renderDigest(alerts, { summary, heldFor });
      try {
        // The delivery id travels as a header: a mail filter or a ticketing inbox can drop a repeated delivery by it.
        const info = await transport.sendMail({ from: options.from, to: target.to, subject: mail.subject, text: mail.text, html: mail.html, headers: { 'X-Tickwatch-Delivery': deliveryId } });
        return { messageId: String(info.messageId) };
      } catch (err) {
        throw classifySmtpError(err, { requireTls: options.requireTls, secrets });
      }
    },
    async close() {
      transport.close();
    },
  };
}
