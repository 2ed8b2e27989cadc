import type { AlertMessage } from '../shared/contract/alert';
import { makeAlert, publishAlert } from '../test/helpers/alerts';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db';
import { startService, type ServiceProcess } from '../test/helpers/process';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { startSmtpServer, type TestSmtpServer } from '../test/helpers/smtp';
import { startTcpProxy, type TcpProxy } from '../test/helpers/tcp-proxy';
import { startWebhookReceiver, type TestWebhookReceiver } from '../test/helpers/webhook';
import { waitFor } from '../test/helpers/wait';
import { printFigures } from './figures';
import { masterTestEnv } from '../test/helpers/master-env';

/**
 * Alerts arrive while the SMTP server is stopped and the webhook receiver is unreachable (a TCP proxy in front of it
 * resets every connection). The master must record each failed attempt in the outbox, keep retrying, and deliver every
 * notification once both come back.
 */
const ALERTS = 30;
interface OutboxRow {
  channel: string;
  status: string;
  attempts: number;
  last_error: string | null;
  alert_ids: string[];
}

describe('when the SMTP server and the webhook receiver are down, then back', () => {
  let database: TestDatabase;
  let redis: TestRedis;
  let smtp: TestSmtpServer;
  let webhook: TestWebhookReceiver;
  let proxy: TcpProxy;
  let master: ServiceProcess | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
    redis = await createTestRedis();
    smtp = await startSmtpServer();
    webhook = await startWebhookReceiver();
    const target = new URL(webhook.url);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
  });
  afterAll(async () => {
    await master?.stop('SIGKILL');
    await proxy?.close();
    await webhook?.stop();
    await smtp?.stop();
    await redis?.cleanup();
    await database?.drop();
  });

  const outbox = async () => (await database.db('notifications').select('channel', 'status', 'attempts', 'last_error', 'alert_ids')) as OutboxRow[];

  it('delivers every notification after they return, with the failed attempts recorded', async () => {
    await smtp.stop();
    proxy.down('reset');
    const hook = new URL(webhook.url);
    hook.port = String(proxy.port);
    master = startService('master/main.ts', {
      ...masterTestEnv(database.url, redis),
      NOTIFY: 'log,email,webhook',
      SMTP_URL: smtp.url,
      MAIL_TO: 'ops@example.com',
      EMAIL_DIGEST_SECONDS: '0',
      WEBHOOK_URL: hook.toString(),
      WEBHOOK_SECRET: 'fault-suite-secret',
      WEBHOOK_TIMEOUT_MS: '2000',
      LOG_LEVEL: 'info',
    });
    await master.waitForOutput('master started', 30_000);

    // Three bursts, so there are several outbox rows per channel.
    const alerts: AlertMessage[] = [];
    for (let burst = 0; burst < 3; burst++) {
      for (let i = 0; i < ALERTS / 3; i++) {
        const alert = makeAlert({ pair: i % 2 ? 'BTC-USD' : 'ETH-USD' });
        alerts.push(alert);
        await publishAlert(redis.redis, redis.keys, alert);
      }
      await waitFor('the burst to be stored', async () => Number(((await database.db('alerts').count('* as n')) as { n: string }[])[0]!.n) >= alerts.length);
    }
    // Down long enough for every row of both channels to have failed at least twice.
    const failed = await waitFor('every notification to have failed twice', async () => {
      const rows = await outbox();
      const both = new Set(rows.map((r) => r.channel)).size === 2;
      return both && rows.every((r) => r.status === 'pending' && r.attempts >= 2 && r.last_error) ? rows : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200 });
    const attemptsWhileDown = failed.reduce((a, r) => a + r.attempts, 0);
    const errors = [...new Set(failed.map((r) => `${r.channel}: ${r.last_error!.slice(0, 60)}`))];

    await smtp.start();
    proxy.up();
    const backAt = Date.now();
    const delivered = await waitFor('every notification to be sent', async () => {
      const rows = await outbox();
      return rows.length > 0 && rows.every((r) => r.status === 'sent') ? rows : undefined;
    }, { timeoutMs: 90_000, intervalMs: 200 });
    const recoveryMs = Date.now() - backAt;

    // What people received: every alert in some mail (by its unique price) and in some accepted webhook call (by id).
    const mailText = smtp.mails.map((m) => m.parsed.text ?? '').join('\n');
    const trim = (v: string) => v.replace(/0+$/, '').replace(/\.$/, '');
    const missingInMail = alerts.filter((a) => !mailText.includes(trim(a.price))).length;
    const hookIds = new Set(
      webhook.requests
        .filter((r) => r.status >= 200 && r.status < 300)
        .flatMap((r) => ((r.json as { alerts?: { id: string }[] } | undefined)?.alerts ?? []).map((a) => a.id)),
    );
    const missingInWebhook = alerts.filter((a) => !hookIds.has(a.id)).length;
    const byChannel = (channel: string) => delivered.filter((r) => r.channel === channel);
    printFigures(
      'notify-outage',
      {
        alerts: alerts.length,
        outbox_rows: delivered.length,
        sent: delivered.filter((r) => r.status === 'sent').length,
        attempts_while_down: attemptsWhileDown,
        max_attempts: Math.max(...delivered.map((r) => r.attempts)),
        mails: smtp.mails.length,
        webhook_calls_ok: webhook.requests.filter((r) => r.status < 300).length,
        missing_in_mail: missingInMail,
        missing_in_webhook: missingInWebhook,
        recovery_ms: recoveryMs,
      },
      `SMTP stopped + webhook behind a resetting proxy; errors recorded: ${errors.join(' | ')}`,
    );
    expect(byChannel('email').length).toBeGreaterThan(0);
    expect(byChannel('webhook').length).toBeGreaterThan(0);
    expect(delivered.every((r) => r.attempts >= 3)).toBe(true);
    expect(missingInMail).toBe(0);
    expect(missingInWebhook).toBe(0);
  });
});
