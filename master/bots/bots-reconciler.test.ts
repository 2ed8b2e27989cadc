import { parseDesiredBot } from '../../shared/contract/bots';
import { writeBotStatus, type BotStatus } from '../../shared/contract/fleet-status';
import { loadMasterConfig } from '../../shared/config/master-config';
import { createLogger } from '../../shared/platform/logger';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { masterTestEnv } from '../../test/helpers/master-env';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { waitFor } from '../../test/helpers/wait';
import { createMaster, type Master } from '../app';
import { createBotsRepository } from '../../shared/read-model/bots-repository';
import { createBotsReconciler } from './bots-reconciler';

/** The master's bots reconcile loop, wired as the master runs it: the mirror follows the table, compose bots get rows. */

const TOKEN = 'reconciler-operator-token-1234';
let tdb: TestDatabase;
let tr: TestRedis;
let master: Master;

beforeAll(async () => {
  [tdb, tr] = await Promise.all([createTestDatabase(), createTestRedis()]);
  const config = loadMasterConfig({ ...masterTestEnv(tdb.url, tr), API_TOKEN: TOKEN, BOTS_RECONCILE_MS: '200' });
  master = await createMaster({ config, logger: createLogger({ name: 'reconciler-test', level: 'silent' }) });
});

afterAll(async () => {
  await master?.close();
  await tr?.cleanup();
  await tdb?.drop();
});

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${master.url}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) } });

/** Equal maps whatever their order (a Redis hash answers HGETALL in no set order). */
const sameEntries = (a: Record<string, number>, b: Record<string, number>) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

async function mirror(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [id, text] of Object.entries(await tr.redis.hgetall(tr.keys.desiredBots))) {
    const parsed = parseDesiredBot(text);
    out[id] = parsed.ok ? parsed.bot.version : -1;
  }
  return out;
}

describe('the bots reconcile loop in a running master', () => {
  it('mirrors a change at once, and rebuilds the hash after someone deletes it', async () => {
    expect((await api('/bots', { method: 'POST', body: JSON.stringify({ pair: 'BTC-USD' }) })).status).toBe(201);
    expect((await api('/bots', { method: 'POST', body: JSON.stringify({ pair: 'ETH-USD', bot_id: 'eth' }) })).status).toBe(201);
    // Rewritten before the answer, not by the next round.
    expect((await api('/bots/eth', { method: 'PATCH', body: JSON.stringify({ threshold_percent: '2' }) })).status).toBe(200);
    expect(await mirror()).toEqual({ 'BTC-USD': 1, eth: 2 });

    await tr.redis.del(tr.keys.desiredBots);
    await waitFor('the mirror rebuilt', async () => sameEntries(await mirror(), { 'BTC-USD': 1, eth: 2 }));

    // A bot written into the mirror behind the table's back, or an entry at an old version, is put right too.
    await tr.redis.hset(tr.keys.desiredBots, 'ghost', '{}', 'eth', '{"stale":true}');
    await waitFor('the mirror repaired', async () => sameEntries(await mirror(), { 'BTC-USD': 1, eth: 2 }));
  });

  it('records a compose worker from its heartbeat as a compose bot, once, and keeps it out of the mirror', async () => {
    const at = new Date().toISOString();
    const heartbeat: BotStatus = {
      botId: 'sol-compose',
      pair: 'SOL-USD',
      status: 'ok',
      consecutiveErrors: 0,
      startedAt: at,
      heartbeatAt: at,
      ttlMs: 30_000,
      rateLimited: false,
      effectiveIntervalMs: 3000,
      alertsPublished: 0,
      alertsDropped: 0,
      alertsQueued: 0,
      config: { botId: 'sol-compose', pair: 'SOL-USD', intervalMs: 3000, thresholdPercent: '0.2', priceField: 'bid', referenceMode: 'first', tickerBaseUrl: 'http://127.0.0.1:9' },
      workerId: 'host-1',
      source: 'compose',
      service: 'worker-sol',
    };
    await writeBotStatus(tr.redis, tr.keys, heartbeat);
    const row = await waitFor('the compose row', async () => (await api('/bots/sol-compose')).status === 200 && (await (await api('/bots/sol-compose')).json()));
    expect(row).toMatchObject({ source: 'compose', service: 'worker-sol', pair: 'SOL-USD', interval_ms: 3000, threshold_percent: '0.2', price_field: 'bid', version: 1 });
    expect(Object.keys(await mirror())).not.toContain('sol-compose');

    // Its settings change in compose: the row follows with a new version.
    await writeBotStatus(tr.redis, tr.keys, { ...heartbeat, config: { ...heartbeat.config, thresholdPercent: '0.3' } });
    await waitFor('the compose row updated', async () => ((await (await api('/bots/sol-compose')).json()) as { version: number }).version === 2);
    const audit = (await (await api('/audit?bot_id=sol-compose')).json()) as { items: { action: string; actor: string }[] };
    expect(audit.items).toEqual([
      expect.objectContaining({ action: 'compose-sync', actor: 'compose:worker-sol' }),
      expect.objectContaining({ action: 'compose-sync', actor: 'compose:worker-sol' }),
    ]);

    // Once the fleet forgets it (an operator removed it, or it is past FLEET_RETENTION), the table does too.
    expect((await api('/fleet/sol-compose', { method: 'DELETE' })).status).toBe(204);
    await waitFor('the compose row removed', async () => (await api('/bots/sol-compose')).status === 404);
    const last = (await (await api('/audit?bot_id=sol-compose&limit=1')).json()) as { items: { action: string; before: { source: string } }[] };
    expect(last.items[0]).toMatchObject({ action: 'delete', before: { source: 'compose' } });
  });

  it('is safe to run from several writers at once: the mirror ends equal to the table', async () => {
    const logger = createLogger({ name: 'reconciler-test', level: 'silent' });
    const others = [1, 2, 3].map(() => createBotsReconciler({ db: tdb.db, redis: tr.redis, keys: tr.keys, repository: createBotsRepository(tdb.db), logger }));
    const changes = Array.from({ length: 10 }, (_, i) => api('/bots/eth', { method: 'PATCH', body: JSON.stringify({ interval_ms: 1000 + i }) }));
    await Promise.all([...changes, ...others.map((o) => o.reconcileOnce()), ...others.map((o) => o.reconcileOnce())]);
    const version = ((await (await api('/bots/eth')).json()) as { version: number }).version;
    expect(version).toBe(12);
    expect((await mirror()).eth).toBe(12);
  });
});
