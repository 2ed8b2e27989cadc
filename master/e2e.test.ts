import { parseAlertMessage, type AlertMessage } from '../shared/contract/alert';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db';
import { startService, type ServiceProcess } from '../test/helpers/process';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { startSmtpServer, type TestSmtpServer } from '../test/helpers/smtp';
import { waitFor } from '../test/helpers/wait';
import { startWebhookReceiver, type TestWebhookReceiver } from '../test/helpers/webhook';
import { createTickerSimulator, type TickerSimulator } from '../sim/simulator';
import { verifyWebhookSignature, type WebhookPayload } from './notify/notification-format';

const SECRET = 'end-to-end-secret';

/**
 * The whole path with real processes: workers polling the ticker simulator publish alerts; the master stores each once,
 * mails one digest listing them and calls the webhook with a verifiable signature.
 */
describe('end to end: workers -> master -> Postgres, email and webhook', () => {
  let t: TestDatabase;
  let r: TestRedis;
  let sim: TickerSimulator;
  let smtp: TestSmtpServer;
  let hook: TestWebhookReceiver;
  const processes: ServiceProcess[] = [];

  beforeAll(async () => {
    [t, r, smtp, hook] = await Promise.all([createTestDatabase(), createTestRedis(), startSmtpServer(), startWebhookReceiver()]);
    sim = await createTickerSimulator({
      rateLimit: 0,
      // 100 -> 101 is +1 % (up); 101 -> 99.99 is -1 % (down) against the last alert; 2000 -> 2010 is +0.5 %.
      script: { repeat: false, pairs: { 'BTC-USD': ['100', '101', '101', '99.99'], 'ETH-USD': ['2000', '2010'] } },
    });
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGTERM')));
    await Promise.all([sim?.close(), smtp?.stop(), hook?.stop()]);
    await r?.cleanup();
    await t?.drop();
  });

  const common = () => ({ REDIS_URL: r.url, REDIS_KEY_PREFIX: r.prefix, LOG_LEVEL: 'info' });
  function worker(pair: string): ServiceProcess {
    // Scripted prices step per pair request: each worker fetches its own pair (the shared list does not consume scripts).
    const p = startService('worker/main.ts', { ...common(), PAIR: pair, FETCH_INTERVAL_MS: '100', OSCILLATION_PERCENT: '0.01', TICKER_BASE_URL: sim.url, TICKER_RATE_LIMIT_PER_MIN: '0', TICKER_FETCH: 'pair' });
    processes.push(p);
    return p;
  }
  async function streamAlerts(pair: string): Promise<AlertMessage[]> {
    const entries = await r.redis.xrange(r.keys.alertStream(pair), '-', '+');
    return entries.map(([, fields]) => {
      const parsed = parseAlertMessage(fields[fields.indexOf('alert') + 1]!);
      if (!parsed.ok) throw new Error(parsed.reason);
      return parsed.alert;
    });
  }

  it('stores one row per alert with every column right, mails one digest listing them, and signs the webhook calls', async () => {
    const startedAt = Date.now();
    // Workers first: the master, started later, catches up from the durable streams.
    worker('BTC-USD');
    worker('ETH-USD');
    const published = await waitFor(
      'three alerts on the streams',
      async () => {
        const all = [...(await streamAlerts('BTC-USD')), ...(await streamAlerts('ETH-USD'))];
        return all.length >= 3 ? all : null;
      },
      { timeoutMs: 30_000 },
    );
    expect(published.map((a) => [a.pair, a.direction, a.price, a.referencePrice]).sort()).toEqual([
      ['BTC-USD', 'down', '99.99', '101'],
      ['BTC-USD', 'up', '101', '100'],
      ['ETH-USD', 'up', '2010', '2000'],
    ]);

    const master = startService('master/main.ts', {
      ...common(),
      DATABASE_URL: t.url,
      API_HOST: '127.0.0.1',
      API_PORT: '0',
      NOTIFY: 'email,webhook',
      SMTP_URL: smtp.url,
      MAIL_TO: 'desk@example.com',
      EMAIL_DIGEST_SECONDS: '1',
      WEBHOOK_URL: hook.url,
      WEBHOOK_SECRET: SECRET,
    });
    processes.push(master);
    await master.waitForOutput('master started', 30_000);

    const rows = await waitFor('three rows', async () => {
      const found = await t.db('alerts').orderBy('observed_at');
      return found.length >= 3 ? found : null;
    });
    expect(rows).toHaveLength(3);
    for (const alert of published) {
      expect(rows.map((x) => x.id)).toContain(alert.id);
      const row = rows.find((x) => x.id === alert.id);
      expect({
        bot_id: row.bot_id,
        pair: row.pair,
        direction: row.direction,
        price: Number(row.price),
        reference_price: Number(row.reference_price),
        change_percent: row.change_percent,
        threshold_percent: Number(row.threshold_percent),
        observed_at: row.observed_at.toISOString(),
        config: row.config,
      }).toEqual({
        bot_id: alert.pair,
        pair: alert.pair,
        direction: alert.direction,
        price: Number(alert.price),
        reference_price: Number(alert.referencePrice),
        change_percent: alert.changePercent,
        threshold_percent: 0.01,
        observed_at: alert.observedAt,
        config: alert.config,
      });
      expect(row.config).toMatchObject({ botId: alert.pair, pair: alert.pair, intervalMs: 100, thresholdPercent: '0.01', tickerBaseUrl: sim.url });
      expect(row.observed_at.getTime()).toBeGreaterThanOrEqual(startedAt - 1000);
      expect(row.received_at.getTime()).toBeGreaterThanOrEqual(row.observed_at.getTime() - 1000);
    }
    expect(rows.map((x) => x.change_percent).sort()).toEqual(['-1.000000000000000000', '0.500000000000000000', '1.000000000000000000']);

    const [mail] = await smtp.waitForMails(1, 15_000);
    expect(mail!.to).toEqual(['desk@example.com']);
    expect(mail!.parsed.subject).toBe('Tickwatch: 3 price alerts (BTC-USD, ETH-USD)');
    const text = mail!.parsed.text ?? '';
    expect(text).toContain('BTC-USD up +1% at 101 (reference 100');
    expect(text).toContain('BTC-USD down -1% at 99.99 (reference 101');
    expect(text).toContain('ETH-USD up +0.5% at 2010 (reference 2000');
    for (const alert of published) expect(String(mail!.parsed.html)).toContain(alert.observedAt);

    await waitFor('webhook calls carrying the three alerts', () => {
      const ids = hook.requests.flatMap((q) => (q.json as WebhookPayload).alerts.map((a) => a.id));
      return published.every((a) => ids.includes(a.id));
    });
    for (const call of hook.requests) {
      expect(verifyWebhookSignature(call.body, SECRET, call.headers['x-tickwatch-signature'] as string)).toBe(true);
      expect((call.json as WebhookPayload).text).toContain('BTC-USD up +1% at 101');
    }

    // Live path: a new move while everything runs arrives as a fourth row and its own digest.
    sim.setPrice('ETH-USD', '2110.5');
    const fourth = await waitFor('a fourth row', async () => t.db('alerts').where({ pair: 'ETH-USD', price: '2110.5' }).first(), { timeoutMs: 15_000 });
    expect(fourth).toMatchObject({ direction: 'up', reference_price: '2010.000000000000000000', change_percent: '5.000000000000000000' });
    const mails = await smtp.waitForMails(2, 15_000);
    expect(mails[1]!.parsed.text).toContain('ETH-USD up +5% at 2110.5 (reference 2010');
    expect(await t.db('alerts').count<{ n: string }[]>('* as n')).toEqual([{ n: '4' }]);
  });
});
