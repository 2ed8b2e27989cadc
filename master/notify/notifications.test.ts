import { loadMasterConfig } from '../../shared/config/master-config';
import { createLogger } from '../../shared/platform/logger';
import { makeAlert, publishAlert } from '../../test/helpers/alerts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { startSmtpServer, type TestSmtpServer } from '../../test/helpers/smtp';
import { waitFor } from '../../test/helpers/wait';
import { startWebhookReceiver, type TestWebhookReceiver } from '../../test/helpers/webhook';
import { createMaster, type Master } from '../app';
import { verifyWebhookSignature, type WebhookPayload } from './notification-format';
import { masterTestEnv } from '../../test/helpers/master-env';

const SECRET = 'test-webhook-secret';

describe('master notifications', () => {
  let t: TestDatabase;
  let r: TestRedis;
  let smtp: TestSmtpServer;
  let hook: TestWebhookReceiver;
  let master: Master | undefined;

  async function start(env: Record<string, string>): Promise<Master> {
    const config = loadMasterConfig({
      ...masterTestEnv(t.url, r),
      SMTP_URL: smtp.url,
      MAIL_TO: 'ops@example.com,analyst@example.com',
      MAIL_FROM: 'Tickwatch <alerts@example.com>',
      WEBHOOK_URL: hook.url,
      WEBHOOK_SECRET: SECRET,
      EMAIL_DIGEST_SECONDS: '1',
      ...env,
    });
    return createMaster({ config, logger: createLogger({ name: 'master', level: process.env.TEST_LOG_LEVEL ?? 'silent' }), tuning: { streamBlockMs: 500, pairsRefreshMs: 200, notifyPollMs: 100, notifyRetryBaseMs: 200 } });
  }
  const notificationsOf = (alertId: string) => t.db('notifications').whereRaw('? = ANY(alert_ids)', [alertId]).orderBy('id');

  beforeAll(async () => {
    [t, r, smtp, hook] = await Promise.all([createTestDatabase(), createTestRedis(), startSmtpServer(), startWebhookReceiver()]);
  });
  beforeEach(async () => {
    smtp.mails.length = 0;
    smtp.refused.length = 0;
    smtp.respond(undefined);
    hook.requests.length = 0;
    hook.respond(() => 200);
    await t.db('notifications').delete();
  });
  afterEach(async () => {
    await master?.close();
    master = undefined;
  });
  afterAll(async () => {
    await Promise.all([smtp?.stop(), hook?.stop()]);
    await r?.cleanup();
    await t?.drop();
  });

  it('mails one digest per recipient listing every alert of the window, and signs each webhook call', async () => {
    master = await start({ NOTIFY: 'email,webhook' });
    const alerts = [
      makeAlert({ pair: 'BTC-USD', direction: 'up', changePercent: '2.500000000000000000', price: '51250', referencePrice: '50000' }),
      makeAlert({ pair: 'ETH-USD', direction: 'down', changePercent: '-1.000000000000000000', price: '2970.5', referencePrice: '3000.505' }),
      makeAlert({ pair: 'BTC-USD', direction: 'up', changePercent: '0.010000000000000000', price: '51255.125', referencePrice: '51250' }),
    ];
    for (const a of alerts) await publishAlert(r.redis, r.keys, a);

    const mails = await smtp.waitForMails(2);
    await new Promise((res) => setTimeout(res, 1500)); // a second digest would have gone out by now
    expect(smtp.mails).toHaveLength(2);
    expect(mails.map((m) => m.to).sort()).toEqual([['analyst@example.com'], ['ops@example.com']]);
    for (const mail of mails) {
      expect(mail.parsed.subject).toBe('Tickwatch: 3 price alerts (BTC-USD, ETH-USD)');
      expect(mail.from).toBe('alerts@example.com');
      const text = mail.parsed.text ?? '';
      expect(text).toContain('BTC-USD up +2.5% at 51250 (reference 50000');
      expect(text).toContain('ETH-USD down -1% at 2970.5 (reference 3000.505');
      expect(text).toContain('BTC-USD up +0.01% at 51255.125');
      const html = String(mail.parsed.html);
      expect(html).toContain('<td style="padding:2px 8px;">ETH-USD</td><td style="padding:2px 8px;">down</td><td style="padding:2px 8px;text-align:right;">-1%</td><td style="padding:2px 8px;text-align:right;">2970.5</td><td style="padding:2px 8px;text-align:right;">3000.505</td>');
      for (const a of alerts) expect(html).toContain(a.observedAt);
    }

    await hook.waitForRequests(1);
    await waitFor('every alert in a webhook call', () => {
      const ids = hook.requests.flatMap((c) => (c.json as WebhookPayload).alerts.map((a) => a.id));
      return alerts.every((a) => ids.includes(a.id));
    });
    for (const call of hook.requests) {
      expect(call.headers['content-type']).toBe('application/json');
      expect(verifyWebhookSignature(call.body, SECRET, call.headers['x-tickwatch-signature'] as string)).toBe(true);
      expect(verifyWebhookSignature(call.body, 'another-secret', call.headers['x-tickwatch-signature'] as string)).toBe(false);
      const payload = call.json as WebhookPayload;
      expect(payload.text).toMatch(/Tickwatch/);
      expect(payload.delivery_id).toBe(call.headers['x-tickwatch-delivery']);
    }
    // The batch may span calls: the first alert is looked up in all of them, and must be there.
    const first = hook.requests.flatMap((c) => (c.json as WebhookPayload).alerts).find((a) => a.id === alerts[0]!.id);
    expect(first).toMatchObject({ pair: 'BTC-USD', price: '51250', change_percent: '2.5', observed_at: alerts[0]!.observedAt });

    const rows = await notificationsOf(alerts[1]!.id);
    expect(rows.map((n) => [n.channel, n.target, n.status, n.attempts])).toEqual(
      expect.arrayContaining([
        ['email', 'ops@example.com', 'sent', 1],
        ['email', 'analyst@example.com', 'sent', 1],
        ['webhook', new URL(hook.url).origin, 'sent', 1],
      ]),
    );
  });

  it('delivers the digest once the SMTP server is back, recording the failed attempts', async () => {
    master = await start({ NOTIFY: 'email', MAIL_TO: 'ops@example.com', EMAIL_DIGEST_SECONDS: '0' });
    await smtp.stop();
    const alert = makeAlert({ pair: 'XRP-EUR' });
    await publishAlert(r.redis, r.keys, alert);
    const failed = await waitFor('two failed attempts', async () => {
      const [row] = await notificationsOf(alert.id);
      return row && row.attempts >= 2 ? row : null;
    });
    expect(failed).toMatchObject({ status: 'pending', channel: 'email' });
    expect(failed.last_error).toMatch(/ECONNREFUSED|connect/i);

    await smtp.start();
    const [mail] = await smtp.waitForMails(1, 15_000);
    expect(mail!.parsed.text).toContain('XRP-EUR');
    const sent = await waitFor('the row marked sent', async () => {
      const [row] = await notificationsOf(alert.id);
      return row?.status === 'sent' ? row : null;
    });
    expect(sent.attempts).toBeGreaterThanOrEqual(3);
    expect(sent.last_error).toBeNull();
    expect(sent.sent_at).toBeInstanceOf(Date);
  });

  it('marks a notification failed at once when the server refuses it permanently (SMTP 5xx, HTTP 400)', async () => {
    smtp.respond(() => ({ code: 550, message: 'mailbox unavailable' }));
    hook.respond(() => 400);
    master = await start({ NOTIFY: 'email,webhook', MAIL_TO: 'nobody@example.com', EMAIL_DIGEST_SECONDS: '0' });
    const alert = makeAlert();
    await publishAlert(r.redis, r.keys, alert);
    const rows = await waitFor('both rows failed', async () => {
      const found = await notificationsOf(alert.id);
      return found.length === 2 && found.every((n) => n.status === 'failed') ? found : null;
    });
    const byChannel = Object.fromEntries(rows.map((n) => [n.channel, n]));
    expect(byChannel.email).toMatchObject({ attempts: 1, last_error: expect.stringMatching(/SMTP 550.*mailbox unavailable/) });
    expect(byChannel.webhook).toMatchObject({ attempts: 1, last_error: 'webhook answered HTTP 400: status 400' });
  });

  it('retries a webhook answered 503 or 429 and marks it sent when the receiver recovers', async () => {
    hook.respond(({ index }) => (index === 0 ? 503 : index === 1 ? 429 : 200));
    master = await start({ NOTIFY: 'webhook' });
    const alert = makeAlert();
    await publishAlert(r.redis, r.keys, alert);
    await hook.waitForRequests(3);
    const row = await waitFor('the row sent', async () => {
      const [n] = await notificationsOf(alert.id);
      return n?.status === 'sent' ? n : null;
    });
    expect(row.attempts).toBe(3);
    expect(hook.requests.map((q) => q.status)).toEqual([503, 429, 200]);
    // Every attempt carries the same alert and a valid signature.
    for (const q of hook.requests) {
      expect((q.json as WebhookPayload).alerts.map((a) => a.id)).toEqual([alert.id]);
      expect(verifyWebhookSignature(q.body, SECRET, q.headers['x-tickwatch-signature'] as string)).toBe(true);
    }
  });

  it('gives up waiting on a webhook after WEBHOOK_TIMEOUT_MS and retries it', async () => {
    hook.respond(({ index }) => (index === 0 ? { status: 200, delayMs: 1500 } : 200));
    master = await start({ NOTIFY: 'webhook', WEBHOOK_TIMEOUT_MS: '300' });
    const alert = makeAlert();
    await publishAlert(r.redis, r.keys, alert);
    const row = await waitFor('the row sent on the second attempt', async () => {
      const [n] = await notificationsOf(alert.id);
      return n?.status === 'sent' ? n : null;
    });
    expect(row.attempts).toBe(2);
  });

  it('sends what a previous master left pending, after a restart', async () => {
    await smtp.stop();
    master = await start({ NOTIFY: 'email', MAIL_TO: 'ops@example.com', EMAIL_DIGEST_SECONDS: '0' });
    const alert = makeAlert({ pair: 'BCH-USD' });
    await publishAlert(r.redis, r.keys, alert);
    await waitFor('a failed attempt', async () => (await notificationsOf(alert.id))[0]?.attempts >= 1);
    await master.close();
    master = undefined;

    await smtp.start();
    master = await start({ NOTIFY: 'email', MAIL_TO: 'ops@example.com', EMAIL_DIGEST_SECONDS: '0' });
    const [mail] = await smtp.waitForMails(1, 15_000);
    expect(mail!.parsed.text).toContain('BCH-USD');
    await waitFor('the row sent', async () => (await notificationsOf(alert.id))[0]?.status === 'sent');
  });

  it('holds alerts back once a recipient reached EMAIL_MAX_PER_HOUR', async () => {
    master = await start({ NOTIFY: 'email', MAIL_TO: 'capped@example.com', EMAIL_DIGEST_SECONDS: '0', EMAIL_MAX_PER_HOUR: '1' });
    const first = makeAlert();
    await publishAlert(r.redis, r.keys, first);
    await smtp.waitForMails(1);
    const second = makeAlert();
    await publishAlert(r.redis, r.keys, second);
    const held = await waitFor('the second alert held back', async () => {
      const [n] = await notificationsOf(second.id);
      return n?.held_back ? n : null;
    });
    expect(held.status).toBe('pending');
    // Due again one hour after the first mail: then one summary goes out.
    expect(held.next_attempt_at.getTime()).toBeGreaterThan(Date.now() + 3500_000);
    expect(smtp.mails).toHaveLength(1);
  });
});
