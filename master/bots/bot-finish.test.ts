import { readBotStatus, writeBotStatus } from '../../shared/contract/fleet-status';
import { loadMasterConfig } from '../../shared/config/master-config';
import { createLogger } from '../../shared/platform/logger';
import { createTickerSimulator, type TickerSimulator } from '../../sim/simulator';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { masterTestEnv } from '../../test/helpers/master-env';
import { startService, type ServiceProcess } from '../../test/helpers/process';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { waitFor } from '../../test/helpers/wait';
import { describeAlert, readAlertStream } from '../../test/helpers/worker-streams';
import { createMaster, type Master } from '../app';

/**
 * A runtime bot whose rule is done, end to end: a real master, a generic worker process and the simulator. The bot is
 * disabled by the master (actor system) with an audit row saying why, and published exactly what its rule allows.
 */

const TOKEN = 'finish-operator-token-12345678';
let tdb: TestDatabase;
let tr: TestRedis;
let sim: TickerSimulator;
let master: Master;
let worker: ServiceProcess | undefined;

beforeAll(async () => {
  [tdb, tr, sim] = await Promise.all([createTestDatabase(), createTestRedis(), createTickerSimulator({ pairs: {}, rateLimit: 0, volatilityPercent: '0' })]);
  const config = loadMasterConfig({ ...masterTestEnv(tdb.url, tr), API_TOKEN: TOKEN, BOTS_RECONCILE_MS: '200' });
  master = await createMaster({ config, logger: createLogger({ name: 'finish-test', level: 'silent' }) });
});

afterAll(async () => {
  await worker?.stop();
  await master?.close();
  await sim?.close();
  await tr?.cleanup();
  await tdb?.drop();
});

const api = async (path: string, init: { method?: string; body?: unknown } = {}) => {
  const res = await fetch(`${master.url}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${TOKEN}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  return { status: res.status, body: (res.status === 204 ? null : await res.json()) as Record<string, any> };
};

describe('a runtime bot whose rule is done', () => {
  it('max_alerts 1: one alert, then the master disables it (version + 1) with an audit row "exhausted" by system', async () => {
    const pair = 'EXH-USD';
    // Every step moves at least 0.5 %: without the limit each would alert.
    sim.setScript(pair, ['100', '101', '102', '103', '104', '105']);
    worker = startService('worker/main.ts', { WORKER_ID: 'finish-w1', TICKER_BASE_URL: sim.url, REDIS_URL: tr.url, REDIS_KEY_PREFIX: tr.prefix, TICKER_RATE_LIMIT_PER_MIN: '0', TICKER_FETCH: 'pair' });
    const created = await api('/bots', { method: 'POST', body: { pair, interval_ms: 100, threshold_percent: '0.5', max_alerts: 1 } });
    expect(created.status).toBe(201);

    await waitFor('the bot disabled', async () => (await api(`/bots/${pair}`)).body.enabled === false, { timeoutMs: 30_000 });
    const bot = (await api(`/bots/${pair}`)).body;
    expect(bot).toMatchObject({ enabled: false, version: 2, updated_by: 'system', max_alerts: 1 });
    const audit = (await api(`/audit?bot_id=${pair}`)).body.items as { action: string; actor: string; before: { enabled: boolean; version: number }; after: { enabled: boolean; version: number } }[];
    expect(audit.map((a) => `${a.action} by ${a.actor}`)).toEqual(['exhausted by system', 'create by operator']);
    expect(audit[0]).toMatchObject({ before: { enabled: true, version: 1 }, after: { enabled: false, version: 2 } });

    // Its worker gave it up, and its last heartbeat still says why.
    await waitFor('the worker idle again', async () => JSON.parse((await tr.redis.get(tr.keys.workerHeartbeat('finish-w1'))) ?? '{}').state === 'idle', { timeoutMs: 15_000 });
    expect(await readBotStatus(tr.redis, tr.keys, pair)).toMatchObject({ status: 'exhausted', statusReason: 'published 1 of max_alerts 1' });
    expect((await readAlertStream(tr.redis, tr.keys, pair)).map(describeAlert)).toEqual(['up 101 vs 100']);
  }, 60_000);

  it('expires_at: the master disables it once the time has passed, with an audit row "expired", worker or not', async () => {
    const expiresAt = new Date(Date.now() + 1500).toISOString();
    const created = await api('/bots', { method: 'POST', body: { pair: 'EXP-USD', interval_ms: 100, expires_at: expiresAt } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ enabled: true, expires_at: expiresAt });
    await waitFor('the bot disabled', async () => (await api('/bots/EXP-USD')).body.enabled === false, { timeoutMs: 15_000 });
    // Not before its time.
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(expiresAt));
    const audit = (await api('/audit?bot_id=EXP-USD')).body.items as { action: string; actor: string }[];
    expect(audit.map((a) => `${a.action} by ${a.actor}`)).toEqual(['expired by system', 'create by operator']);
  }, 30_000);

  it('a paused bot is never finished by the master (only an enabled one, at the version that finished)', async () => {
    const created = await api('/bots', { method: 'POST', body: { pair: 'OLD-USD', bot_id: 'old', expires_at: '2020-01-01T00:00:00Z' } });
    expect(created.status).toBe(201);
    await waitFor('the expired bot disabled', async () => (await api('/bots/old')).body.enabled === false);
    // Resumed by hand: disabled again, one audit row each time, never a row for a bot already paused.
    expect((await api('/bots/old', { method: 'PATCH', body: { enabled: true } })).status).toBe(200);
    await waitFor('disabled again', async () => (await api('/bots/old')).body.enabled === false);
    await new Promise((r) => setTimeout(r, 600));
    const actions = ((await api('/audit?bot_id=old')).body.items as { action: string }[]).map((a) => a.action);
    expect(actions).toEqual(['expired', 'resume', 'expired', 'create']);
  });
});

describe('a compose bot with a rule', () => {
  it('is recorded with its rule settings from its heartbeat, and never disabled by the master (compose owns it)', async () => {
    const now = new Date().toISOString();
    await writeBotStatus(tr.redis, tr.keys, {
      botId: 'compose-once',
      pair: 'CMP-USD',
      status: 'exhausted',
      statusReason: 'published 1 of max_alerts 1',
      consecutiveErrors: 0,
      startedAt: now,
      heartbeatAt: now,
      ttlMs: 60_000,
      rateLimited: false,
      effectiveIntervalMs: 1000,
      alertsPublished: 0,
      alertsDropped: 0,
      alertsQueued: 0,
      source: 'compose',
      service: 'worker-cmp',
      config: { botId: 'compose-once', pair: 'CMP-USD', intervalMs: 1000, thresholdPercent: '1', priceField: 'ask', referenceMode: 'last-alert', tickerBaseUrl: 'http://127.0.0.1:1/v0/ticker', rule: 'window', windowMs: 60_000, pendingPolls: 2, maxAlerts: 1 },
    });
    await tr.redis.hset(tr.keys.ruleState('CMP-USD', 'compose-once'), 'published', '1');
    await waitFor('the compose bot recorded', async () => (await api('/bots/compose-once')).status === 200);
    expect((await api('/bots/compose-once')).body).toMatchObject({ source: 'compose', rule: 'window', window_ms: 60_000, pending_polls: 2, cooldown_ms: 0, max_alerts: 1, expires_at: null, enabled: true });
    expect((await api('/bots/compose-once')).body.status).toMatchObject({ status: 'exhausted', status_reason: 'published 1 of max_alerts 1' });
    await new Promise((r) => setTimeout(r, 600));
    expect((await api('/bots/compose-once')).body).toMatchObject({ enabled: true, version: 1 });
  });
});
