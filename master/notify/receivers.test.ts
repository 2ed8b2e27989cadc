import { DateTime } from 'luxon';
import { loadMasterConfig } from '../../shared/config/master-config';
import { createLogger } from '../../shared/platform/logger';
import { createReceiversRepository } from '../../shared/read-model/receivers-repository';
import { makeAlert, publishAlert } from '../../test/helpers/alerts';
import {
  discordRateLimited,
  slackRateLimited,
  startDiscordServer,
  startSlackServer,
  startTelegramServer,
  telegramRateLimited,
  type DiscordServer,
  type SlackServer,
  type TelegramServer,
} from '../../test/helpers/chat-servers';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { masterTestEnv } from '../../test/helpers/master-env';
import { startService, type ServiceProcess } from '../../test/helpers/process';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { startSmtpServer, type TestSmtpServer } from '../../test/helpers/smtp';
import { waitFor } from '../../test/helpers/wait';
import { startWebhookReceiver, type TestWebhookReceiver } from '../../test/helpers/webhook';
import { createMaster, type Master, type MasterTuning } from '../app';
import type { WebhookPayload } from './notification-format';

/**
 * Receivers end to end, with a real master, Postgres, Redis, SMTP server, webhook receiver and Telegram Bot API
 * stand-in: who gets what, quiet hours, grouping, Retry-After, and a master killed mid-delivery.
 */
describe('receivers', () => {
  let t: TestDatabase;
  let r: TestRedis;
  let smtp: TestSmtpServer;
  let hook: TestWebhookReceiver;
  let telegram: TelegramServer;
  let slack: SlackServer;
  let discord: DiscordServer;
  let master: Master | undefined;
  const processes: ServiceProcess[] = [];

  const env = () => ({ ...masterTestEnv(t.url, r), SMTP_URL: smtp.url, TELEGRAM_API_BASE: telegram.apiBase, NOTIFY_MAX_ATTEMPTS: '50' });
  const tuning: MasterTuning = { streamBlockMs: 500, pairsRefreshMs: 200, notifyPollMs: 100, notifyRetryBaseMs: 200 };
  async function start(extra: Partial<MasterTuning> = {}): Promise<Master> {
    return createMaster({ config: loadMasterConfig(env()), logger: createLogger({ name: 'master', level: process.env.TEST_LOG_LEVEL ?? 'silent' }), tuning: { ...tuning, ...extra } });
  }
  async function addReceiver(m: Master, body: Record<string, unknown>): Promise<void> {
    const res = await fetch(`${m.url}/receivers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (res.status !== 201) throw new Error(`POST /receivers answered ${res.status}: ${await res.text()}`);
  }
  const rowsOf = (receiver: string) => t.db('notifications').where({ receiver_name: receiver }).orderBy('id');
  const hookAlertIds = () => hook.requests.filter((q) => q.status === 200).flatMap((q) => (q.json as WebhookPayload).alerts.map((a) => a.id));

  beforeAll(async () => {
    [t, r, smtp, hook, telegram, slack, discord] = await Promise.all([createTestDatabase(), createTestRedis(), startSmtpServer(), startWebhookReceiver(), startTelegramServer(), startSlackServer(), startDiscordServer()]);
  });
  beforeEach(async () => {
    smtp.mails.length = 0;
    hook.requests.length = 0;
    hook.respond(() => 200);
    telegram.requests.length = 0;
    telegram.messages.length = 0;
    await t.db('notifications').delete();
    await t.db('receivers').delete();
  });
  afterEach(async () => {
    await master?.close();
    master = undefined;
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await Promise.all([smtp?.stop(), hook?.stop(), telegram?.stop(), slack?.stop(), discord?.stop()]);
    await r?.cleanup();
    await t?.drop();
  });

  it('Alice (email, BTC-USD) and Bob (Telegram, ETH-USD moving at least 1%) get exactly their alerts, each delivery visible on the alert; a silence on ETH-USD mutes Bob', async () => {
    master = await start();
    await addReceiver(master, { name: 'alice', kind: 'email', target: { to: 'alice@example.com' }, match: { pairs: ['BTC-USD'] } });
    await addReceiver(master, { name: 'bob', kind: 'telegram', target: { bot_token: telegram.botToken, chat_id: telegram.chatId }, match: { pairs: ['ETH-USD'], min_change: '1' } });
    const alerts = {
      btcUp: makeAlert({ pair: 'BTC-USD', direction: 'up', changePercent: '2.500000000000000000' }),
      btcDown: makeAlert({ pair: 'BTC-USD', direction: 'down', changePercent: '-0.200000000000000000' }),
      ethSmall: makeAlert({ pair: 'ETH-USD', direction: 'up', changePercent: '0.999999999999999999' }),
      ethEdge: makeAlert({ pair: 'ETH-USD', direction: 'down', changePercent: '-1.000000000000000000' }),
      ethBig: makeAlert({ pair: 'ETH-USD', direction: 'up', changePercent: '1.500000000000000000' }),
      xrp: makeAlert({ pair: 'XRP-USD', direction: 'up', changePercent: '5.000000000000000000' }),
    };
    for (const a of Object.values(alerts)) await publishAlert(r.redis, r.keys, a);

    await waitFor('every routed row sent', async () => {
      const rows = await t.db('notifications').select('status');
      return rows.length === 4 && rows.every((x) => x.status === 'sent');
    }, { timeoutMs: 20_000 });
    const aliceIds = (await rowsOf('alice')).map((x) => x.alert_ids[0]);
    const bobIds = (await rowsOf('bob')).map((x) => x.alert_ids[0]);
    expect(aliceIds.sort()).toEqual([alerts.btcUp.id, alerts.btcDown.id].sort());
    expect(bobIds.sort()).toEqual([alerts.ethEdge.id, alerts.ethBig.id].sort());

    const mailText = smtp.mails.map((m) => m.parsed.text ?? '').join('\n');
    expect(smtp.mails.every((m) => m.to.join() === 'alice@example.com')).toBe(true);
    expect(mailText).toContain('BTC-USD up +2.5%');
    expect(mailText).toContain('BTC-USD down -0.2%');
    expect(mailText).not.toMatch(/ETH-USD|XRP-USD/);
    const chat = telegram.messages.map((m) => m.text).join('\n');
    expect(telegram.messages.every((m) => m.chatId === telegram.chatId)).toBe(true);
    expect(chat).toMatch(/ETH-USD/);
    expect(chat).toMatch(/-1%/);
    expect(chat).toMatch(/\+1\.5%/);
    expect(chat).not.toMatch(/BTC-USD|XRP-USD|0\.999999999999999999/);

    const detail = await (await fetch(`${master.url}/alerts/${alerts.ethBig.id}`)).json();
    expect(detail.notifications).toEqual([
      expect.objectContaining({ receiver: 'bob', kind: 'telegram', target: `chat ${telegram.chatId}`, status: 'sent', attempts: 1, delivery_id: expect.stringMatching(/^notifications?-/), sent_at: expect.any(String) }),
    ]);
    const none = await (await fetch(`${master.url}/alerts/${alerts.xrp.id}`)).json();
    expect(none.notifications).toEqual([]);

    // A silence on ETH-USD mutes Bob's next alert: stored (with silenced_by), in the history, and sent to no one.
    const silence = await fetch(`${master.url}/silences`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ matchers: { pair: 'ETH-USD' }, duration: '1h', comment: 'ETH maintenance' }) });
    expect(silence.status).toBe(201);
    const muted = makeAlert({ pair: 'ETH-USD', direction: 'up', changePercent: '3.000000000000000000', observedAt: new Date().toISOString() });
    const afterIt = makeAlert({ pair: 'BTC-USD', direction: 'up', changePercent: '3.000000000000000000', observedAt: new Date().toISOString() });
    await publishAlert(r.redis, r.keys, muted);
    await publishAlert(r.redis, r.keys, afterIt);
    await waitFor('the next BTC alert mailed to Alice', async () => (await rowsOf('alice')).some((x) => x.alert_ids[0] === afterIt.id && x.status === 'sent'));
    const stored = await (await fetch(`${master.url}/alerts/${muted.id}`)).json();
    expect(stored).toMatchObject({ id: muted.id, silenced_by: (await silence.json()).id, notifications: [] });
    expect(await rowsOf('bob')).toHaveLength(2);
  });

  it('holds notifications during quiet hours and sends them once, as one summary, when the period ends', async () => {
    // The master's quiet-hours clock is set 3 s before a minute boundary, so the period [that minute, the next) ends
    // about 3 s into the test, whatever the real time.
    const realStart = Date.now();
    const fakeStart = DateTime.fromISO('2026-12-02T21:59:57', { zone: 'Europe/Lisbon' }).toMillis();
    const clock = () => new Date(fakeStart + (Date.now() - realStart));
    master = await start({ notifyNow: clock });
    await addReceiver(master, { name: 'night-hook', kind: 'webhook', target: { url: hook.url }, quiet_hours: { start: '21:00', end: '22:00', tz: 'Europe/Lisbon' } });
    const held = [makeAlert({ pair: 'BTC-USD' }), makeAlert({ pair: 'ETH-USD' }), makeAlert({ pair: 'SOL-USD' })];
    for (const a of held) await publishAlert(r.redis, r.keys, a);
    const rows = await waitFor('the rows held for quiet hours', async () => {
      const found = await rowsOf('night-hook');
      return found.length === 3 && found.every((x) => x.held_for === 'quiet_hours') ? found : null;
    });
    expect(hook.requests).toHaveLength(0);
    expect(rows.every((x) => x.status === 'pending' && x.next_attempt_at.getTime() > Date.now())).toBe(true);

    const [call] = await hook.waitForRequests(1, 15_000);
    expect(clock().getTime()).toBeGreaterThanOrEqual(DateTime.fromISO('2026-12-02T22:00:00', { zone: 'Europe/Lisbon' }).toMillis());
    expect((call!.json as WebhookPayload).alerts.map((a) => a.id).sort()).toEqual(held.map((a) => a.id).sort());
    await waitFor('the rows sent', async () => (await rowsOf('night-hook')).every((x) => x.status === 'sent'));
    await new Promise((res) => setTimeout(res, 800));
    expect(hook.requests).toHaveLength(1);
    expect(new Set((await rowsOf('night-hook')).map((x) => x.delivery_id)).size).toBe(1);
  });

  it('turns a five-pair burst into one message per receiver (group_wait_ms)', async () => {
    master = await start();
    await addReceiver(master, { name: 'desk', kind: 'email', target: { to: 'desk@example.com' }, group_wait_ms: 2000 });
    await addReceiver(master, { name: 'desk-hook', kind: 'webhook', target: { url: hook.url }, group_wait_ms: 2000 });
    await addReceiver(master, { name: 'desk-chat', kind: 'telegram', target: { bot_token: telegram.botToken, chat_id: telegram.chatId }, group_wait_ms: 2000 });
    const burst = ['BTC-USD', 'ETH-USD', 'SOL-USD', 'XRP-USD', 'ADA-USD'].map((pair) => makeAlert({ pair }));
    // Spread over about a second: without the group wait the first alerts would each go out alone.
    for (const a of burst) {
      await publishAlert(r.redis, r.keys, a);
      await new Promise((res) => setTimeout(res, 250));
    }
    await waitFor('all 15 rows sent', async () => {
      const rows = await t.db('notifications').select('status');
      return rows.length === 15 && rows.every((x) => x.status === 'sent');
    }, { timeoutMs: 20_000 });
    await new Promise((res) => setTimeout(res, 500));
    expect(smtp.mails).toHaveLength(1);
    expect(smtp.mails[0]!.parsed.subject).toBe('Tickwatch: 5 price alerts (ADA-USD, BTC-USD, ETH-USD, SOL-USD, XRP-USD)');
    expect(hook.requests).toHaveLength(1);
    expect((hook.requests[0]!.json as WebhookPayload).alerts.map((a) => a.id).sort()).toEqual(burst.map((a) => a.id).sort());
    expect(telegram.messages).toHaveLength(1);
    for (const a of burst) expect(telegram.messages[0]!.text).toContain(a.pair);
    for (const name of ['desk', 'desk-hook', 'desk-chat']) expect(new Set((await rowsOf(name)).map((x) => x.delivery_id)).size).toBe(1);
  });

  it.each(['slack', 'discord', 'telegram'] as const)('waits the %s 429 retry hint through the outbox, then delivers the message once', async (kind) => {
    const server = kind === 'slack' ? slack : kind === 'discord' ? discord : telegram;
    server.requests.length = 0;
    server.queue(kind === 'slack' ? slackRateLimited(1) : kind === 'discord' ? discordRateLimited(1.2) : telegramRateLimited(1));
    master = await start();
    const target = kind === 'telegram' ? { bot_token: telegram.botToken, chat_id: telegram.chatId } : { url: (server as SlackServer | DiscordServer).url };
    await addReceiver(master, { name: `${kind}-desk`, kind, target });
    const alert = makeAlert({ pair: 'LTC-USD' });
    await publishAlert(r.redis, r.keys, alert);
    const [row] = await waitFor('the row sent', async () => {
      const rows = await rowsOf(`${kind}-desk`);
      return rows[0]?.status === 'sent' ? rows : null;
    }, { timeoutMs: 20_000 });
    expect(row).toMatchObject({ attempts: 2, last_error: null });
    const requests = server.requests;
    expect(requests.map((q) => q.status)).toEqual([429, 200]);
    expect(server.messages).toHaveLength(1);
    // The second request came no sooner than the hint (Discord's is fractional: 1.2 s).
    expect(requests.length).toBe(2);
    const gapMs = row!.sent_at.getTime() - row!.created_at.getTime();
    expect(gapMs).toBeGreaterThanOrEqual(kind === 'discord' ? 1200 : 1000);
  });

  it('waits the Retry-After of a 429 and loses or duplicates nothing when the master is killed mid-delivery', async () => {
    const repo = createReceiversRepository(t.db);
    await repo.create({ name: 'ops-hook', kind: 'webhook', target: { url: hook.url, secret: 'ops-hook-secret' }, match: {}, quiet_hours: null, digest_seconds: 0, group_wait_ms: 0 }, 'test');
    // 1st call: answered only after 4 s (the master is killed meanwhile; the receiver still processes it);
    // 2nd (after the restart): 429 Retry-After 2; then 200.
    const arrivals: { at: number; status: number }[] = [];
    hook.respond(({ index }) => {
      const answer = index === 0 ? { status: 200, delayMs: 4000 } : index === 1 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 200 };
      arrivals.push({ at: Date.now(), status: answer.status });
      return answer;
    });
    const processEnv = { ...env(), LOG_LEVEL: 'info' };
    const first = startService('master/main.ts', processEnv);
    processes.push(first);
    const sent = [makeAlert({ pair: 'BTC-USD' }), makeAlert({ pair: 'ETH-USD' })];
    for (const a of sent) await publishAlert(r.redis, r.keys, a);
    await waitFor('the first call in flight', () => arrivals.length > 0, { timeoutMs: 30_000 });
    await first.stop('SIGKILL');
    // An alert stored while no master runs: the restarted master must not fold it into the interrupted message (that
    // would change its delivery id), but resend that message as it was and send this one after it.
    const late = makeAlert({ pair: 'SOL-USD' });
    await t.db('alerts').insert({ id: late.id, bot_id: late.botId, pair: late.pair, direction: late.direction, price: late.price, reference_price: late.referencePrice, change_percent: late.changePercent, threshold_percent: late.thresholdPercent, observed_at: late.observedAt, config: JSON.stringify(late.config) });
    const [receiver] = await t.db('receivers').where({ name: 'ops-hook' }).select('id');
    await t.db('notifications').insert({ alert_ids: [late.id], receiver_id: receiver.id, receiver_name: 'ops-hook', channel: 'webhook', target: new URL(hook.url).origin });
    sent.push(late);

    const second = startService('master/main.ts', processEnv);
    processes.push(second);
    await waitFor('every row sent', async () => {
      const rows = await rowsOf('ops-hook');
      return rows.length === 3 && rows.every((x) => x.status === 'sent');
    }, { timeoutMs: 40_000 });
    await second.stop();
    // Every request has been answered (the killed master's one included) once the rows are sent and the 4 s are over.
    await waitFor('every call answered (the delayed one included)', () => hook.requests.length === arrivals.length, { timeoutMs: 10_000 });
    expect(arrivals.map((a) => a.status).slice(0, 3)).toEqual([200, 429, 200]);

    const byDelivery = new Map<string, Set<string>>();
    for (const q of hook.requests) {
      const payload = q.json as WebhookPayload;
      expect(q.headers['x-tickwatch-delivery']).toBe(payload.delivery_id);
      const ids = byDelivery.get(payload.delivery_id) ?? new Set<string>();
      for (const a of payload.alerts) ids.add(a.id);
      byDelivery.set(payload.delivery_id, ids);
    }
    // Each alert went out under exactly one delivery id: the resends after the kill and the 429 reused it, so a
    // receiver deduping on delivery_id processes each alert once.
    const owners = sent.map((a) => [...byDelivery.entries()].filter(([, ids]) => ids.has(a.id)).map(([id]) => id));
    expect(owners.map((o) => o.length)).toEqual([1, 1, 1]);
    expect(new Set(hookAlertIds())).toEqual(new Set(sent.map((a) => a.id)));
    const rows = await rowsOf('ops-hook');
    expect(new Set(rows.map((x) => x.delivery_id))).toEqual(new Set(byDelivery.keys()));
    // The retry after the 429 came no sooner than its Retry-After.
    expect(arrivals[2]!.at - arrivals[1]!.at).toBeGreaterThanOrEqual(2000);
  });
});
