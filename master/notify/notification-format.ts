import { createHmac, timingSafeEqual } from 'node:crypto';
import escapeHtml from 'escape-html';
import type { StoredAlert } from '../ingest/alert-repository';
import { toWireAlert, wireDecimal, type WireAlert } from '../../shared/read-model/alert-wire';

/** Longest list a single mail or webhook `text` spells out; the rest is counted ("and N more"). */
export const MAX_LISTED_ALERTS = 500;

/** A change percent with its sign, e.g. "+1.25" or "-0.5". */
export function formatChange(changePercent: string): string {
  const t = wireDecimal(changePercent);
  return t.startsWith('-') ? t : `+${t}`;
}

/** One human line per alert, used by the plain-text mail and the webhook `text` (the log line is the alert store's own). */
export function alertLine(a: StoredAlert): string {
  return `${a.pair} ${a.direction} ${formatChange(a.changePercent)}% at ${wireDecimal(a.price)} (reference ${wireDecimal(a.referencePrice)}, threshold ${wireDecimal(a.thresholdPercent)}%) ${a.observedAt.toISOString()} [${a.botId}]`;
}

export interface RenderedMail {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

/**
 * The digest mail: a sentence, then every alert (pair, direction, change %, price, reference, time) as text lines and an
 * HTML table. A `summary` is the mail sent after quiet hours or the hourly cap held alerts back; it says how many and why.
 */
export function renderDigest(alerts: readonly StoredAlert[], options: { summary: boolean; heldFor?: 'quiet_hours' | 'email_cap' }): RenderedMail {
  const n = alerts.length;
  const pairs = [...new Set(alerts.map((a) => a.pair))].sort();
  const noun = n === 1 ? 'alert' : 'alerts';
  const quiet = options.heldFor === 'quiet_hours';
  const subject = options.summary
    ? `Tickwatch: ${n} ${noun} held back by ${quiet ? 'quiet hours' : 'the hourly email limit'}`
    : `Tickwatch: ${n} price ${noun} (${pairs.slice(0, 5).join(', ')}${pairs.length > 5 ? ', …' : ''})`;
  const intro = options.summary
    ? quiet
      ? `${n} ${noun} arrived during your quiet hours. Here they are.`
      : `The hourly email limit was reached, so ${n} ${noun} were held back. Here they are.`
    : `${n} price ${noun} since the last email.`;
  const listed = alerts.slice(0, MAX_LISTED_ALERTS);
  const more = n - listed.length;
  const moreLine = more > 0 ? `…and ${more} more (see the alert history).` : '';

  const text = [intro, '', ...listed.map(alertLine), ...(moreLine ? ['', moreLine] : [])].join('\n');

  const cell = (v: string, right = false) => `<td style="padding:2px 8px;${right ? 'text-align:right;' : ''}">${escapeHtml(v)}</td>`;
  const rows = listed
    .map((a) =>
      [
        '<tr>',
        cell(a.pair),
        cell(a.direction),
        cell(`${formatChange(a.changePercent)}%`, true),
        cell(wireDecimal(a.price), true),
        cell(wireDecimal(a.referencePrice), true),
        cell(a.observedAt.toISOString()),
        cell(a.botId),
        '</tr>',
      ].join(''),
    )
    .join('\n');
  const html = [
    '<!doctype html><html><body style="font-family:sans-serif">',
    `<p>${escapeHtml(intro)}</p>`,
    '<table style="border-collapse:collapse" border="1">',
    '<thead><tr><th>Pair</th><th>Direction</th><th>Change</th><th>Price</th><th>Reference</th><th>Observed at (UTC)</th><th>Bot</th></tr></thead>',
    `<tbody>\n${rows}\n</tbody></table>`,
    moreLine ? `<p>${escapeHtml(moreLine)}</p>` : '',
    '</body></html>',
  ].join('\n');
  return { subject, text, html };
}

/**
 * The JSON a webhook receives. Its field names are the HTTP API's (snake_case) and each alert is the wire alert of
 * `GET /alerts` (shared/read-model/alert-wire.ts), `config` included as the alert carried it.
 */
export interface WebhookPayload {
  /** Slack-compatible summary: a Slack incoming webhook shows it as the message. */
  readonly text: string;
  /** The same on every retry of the same outbox row (also sent as X-Tickwatch-Delivery): receivers drop a delivery they already processed. */
  readonly delivery_id: string;
  /** When this request was made (ISO-8601); receivers may refuse old ones to stop replays. */
  readonly sent_at: string;
  readonly alerts: readonly WireAlert[];
}

export function renderWebhook(alerts: readonly StoredAlert[], deliveryId: string, sentAt: Date): WebhookPayload {
  const listed = alerts.slice(0, 20);
  const head = alerts.length === 1 ? 'Tickwatch alert' : `Tickwatch: ${alerts.length} alerts`;
  const text = [head, ...listed.map((a) => `• ${alertLine(a)}`), ...(alerts.length > listed.length ? [`…and ${alerts.length - listed.length} more`] : [])].join('\n');
  return { text, delivery_id: deliveryId, sent_at: sentAt.toISOString(), alerts: alerts.map(toWireAlert) };
}

export const SIGNATURE_HEADER = 'X-Tickwatch-Signature';

/** `sha256=<hex HMAC-SHA256 of the exact raw request body, keyed with WEBHOOK_SECRET>`. */
export function signWebhookBody(rawBody: string | Buffer, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`;
}

/** What a receiver does: recompute the signature over the raw body and compare in constant time. */
export function verifyWebhookSignature(rawBody: string | Buffer, secret: string, header: string | undefined): boolean {
  if (!header) return false;
  const expected = Buffer.from(signWebhookBody(rawBody, secret));
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
