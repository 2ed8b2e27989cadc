import type { AlertMessage } from '../shared/contract/alert';
import { makeAlert, publishAlert } from '../test/helpers/alerts';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db';
import { masterTestEnv } from '../test/helpers/master-env';
import { startService, type ServiceProcess } from '../test/helpers/process';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { startSmtpServer, type TestSmtpServer } from '../test/helpers/smtp';
import { waitFor } from '../test/helpers/wait';
import { startWebhookReceiver, type TestWebhookReceiver } from '../test/helpers/webhook';

/**
 * Silences with a real master, the default notifiers (MAIL_TO over a real SMTP server, WEBHOOK_URL to a real HTTP
 * receiver) and alerts published on the streams as workers publish them: an alert an active silence matches is stored
 * and listed with silenced_by and gets no mail and no webhook call; alerts outside its window or matchers do, and so does
 * one observed after the silence was expired.
 */

const OPERATOR = 'silences-e2e-operator-token';
const SECRET = 'silences-e2e-secret';

describe('silences through a running master', () => {
  let t: TestDatabase;
  let r: TestRedis;
  let smtp: TestSmtpServer;
  let hook: TestWebhookReceiver;
  let master: ServiceProcess | undefined;
  let api: string;

  beforeAll(async () => {
    [t, r, smtp, hook] = await Promise.all([createTestDatabase(), createTestRedis(), startSmtpServer(), startWebhookReceiver()]);
    master = startService('master/main.ts', {
      ...masterTestEnv(t.url, r),
      API_TOKEN: OPERATOR,
      NOTIFY: 'email,webhook',
      SMTP_URL: smtp.url,
      MAIL_TO: 'desk@example.com',
      EMAIL_DIGEST_SECONDS: '1',
      WEBHOOK_URL: hook.url,
      WEBHOOK_SECRET: SECRET,
      LOG_LEVEL: 'info',
    });
    await master.waitForOutput('master started', 60_000);
    api = /master started; API on (http:\/\/[^\s"]+)/.exec(master.output())![1]!;
  }, 90_000);

  afterAll(async () => {
    await master?.stop('SIGTERM', 10_000);
    await Promise.all([smtp?.stop(), hook?.stop()]);
    await r?.cleanup();
    await t?.drop();
  }, 60_000);

  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(`${api}${path}`, {
      method,
      headers: { authorization: `Bearer ${OPERATOR}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  }

  /** Every alert id any webhook call or mail carried so far (mails list each alert's observed_at). */
  const webhookIds = () => hook.requests.flatMap((q) => ((q.json as { alerts?: { id: string }[] }).alerts ?? []).map((a) => a.id));
  const mailed = (a: AlertMessage) => smtp.mails.some((m) => String(m.parsed.html ?? '').includes(a.observedAt) || String(m.parsed.text ?? '').includes(a.observedAt));
  const notified = (a: AlertMessage) => webhookIds().includes(a.id) && mailed(a);
  const pendingRows = async () => Number((await t.db('notifications').where('status', 'pending').count({ n: '*' }).first())?.n);

  it('stores a matching alert with silenced_by and notifies nobody of it, while the others are mailed and posted', async () => {
    const created = await call('POST', '/silences', { matchers: { pair: 'eth-usd' }, duration: '1h', comment: 'ETH-USD feed is noisy during the upgrade' });
    expect(created.status).toBe(201);
    const silence = created.body;
    expect(silence).toMatchObject({ state: 'active', created_by: 'operator', matchers: { pair: 'ETH-USD' } });
    const start = Date.parse(silence.starts_at);

    const silenced = makeAlert({ pair: 'ETH-USD', botId: 'eth-1', observedAt: new Date(start + 1000).toISOString() });
    // Observed before the silence began (a late delivery): outside its window, so notified.
    const earlier = makeAlert({ pair: 'ETH-USD', botId: 'eth-1', observedAt: new Date(start - 60_000).toISOString() });
    const otherPair = makeAlert({ pair: 'BTC-USD', botId: 'btc-1', observedAt: new Date(start + 2000).toISOString() });
    // The silenced alert first: once the later ones have gone out on both channels, it had every chance to.
    await publishAlert(r.redis, r.keys, silenced);
    await publishAlert(r.redis, r.keys, earlier);
    await publishAlert(r.redis, r.keys, otherPair);

    const listed = await waitFor('the three alerts in GET /alerts', async () => {
      const page = await call('GET', '/alerts?pair=ETH-USD,BTC-USD');
      return page.body.items?.length === 3 ? (page.body.items as { id: string; silenced_by: string | null }[]) : null;
    }, { timeoutMs: 30_000 });
    expect(Object.fromEntries(listed.map((a) => [a.id, a.silenced_by]))).toEqual({ [silenced.id]: silence.id, [earlier.id]: null, [otherPair.id]: null });
    expect((await call('GET', '/alerts?silenced=true')).body.items.map((a: { id: string }) => a.id)).toEqual([silenced.id]);
    expect((await call('GET', `/alerts?silenced_by=${silence.id}`)).body.items.map((a: { id: string }) => a.id)).toEqual([silenced.id]);

    await waitFor('the two unsilenced alerts mailed and posted', () => notified(earlier) && notified(otherPair), { timeoutMs: 30_000 });
    await waitFor('no notification pending', async () => (await pendingRows()) === 0, { timeoutMs: 30_000 });
    expect(webhookIds()).not.toContain(silenced.id);
    expect(mailed(silenced)).toBe(false);
    // History keeps it, with no delivery.
    const detail = await call('GET', `/alerts/${silenced.id}`);
    expect(detail.body).toMatchObject({ id: silenced.id, pair: 'ETH-USD', silenced_by: silence.id, notifications: [] });
    expect(master!.output()).toMatch(/alert ETH-USD up [^\n]*\(silenced\)|alert ETH-USD down [^\n]*\(silenced\)/);

    // Expired now: the next ETH-USD alert is notified again.
    const expired = await call('DELETE', `/silences/${silence.id}`);
    expect(expired.body).toMatchObject({ state: 'expired', expired_by: 'operator' });
    const after = makeAlert({ pair: 'ETH-USD', botId: 'eth-1', observedAt: new Date(Date.now() + 1000).toISOString() });
    await publishAlert(r.redis, r.keys, after);
    await waitFor('the alert after the expiry mailed and posted', () => notified(after), { timeoutMs: 30_000 });
    expect((await call('GET', `/alerts/${after.id}`)).body.silenced_by).toBeNull();
    expect(webhookIds()).not.toContain(silenced.id);
  }, 120_000);
});
