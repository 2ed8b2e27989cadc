import type { FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { writeBotStatus, type BotStatus } from '../../../shared/contract/fleet-status';
import { parseDesiredBot } from '../../../shared/contract/bots';
import { loadMasterConfig } from '../../../shared/config/master-config';
import { createLogger } from '../../../shared/platform/logger';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/db';
import { createTestRedis, type TestRedis } from '../../../test/helpers/redis';
import { createMetrics } from '../../metrics';
import { createApiServer } from '../server';
import { Writable } from 'node:stream';

/** The bots API against a real Postgres and Redis: CRUD, refusals naming the field, roles, audit and the mirror. */

const OPERATOR = 'operator-token-a1b2c3d4e5f6';
const ANALYST = 'analyst-token-z9y8x7w6v5u4';
const SECOND_OPERATOR = 'ops2-token-q1w2e3r4t5y6u7';
const config = loadMasterConfig({ API_TOKENS: `alice:analyst:${ANALYST},bob:operator:${SECOND_OPERATOR}`, API_TOKEN: OPERATOR });

let tdb: TestDatabase;
let tr: TestRedis;
let app: FastifyInstance;
const logLines: string[] = [];

const as = (token: string) => ({ authorization: `Bearer ${token}` });
const op = as(OPERATOR);

async function mirror(): Promise<Record<string, { version: number; enabled: boolean; thresholdPercent: string }>> {
  const hash = await tr.redis.hgetall(tr.keys.desiredBots);
  const out: Record<string, { version: number; enabled: boolean; thresholdPercent: string }> = {};
  for (const [id, text] of Object.entries(hash)) {
    const parsed = parseDesiredBot(text);
    if (parsed.ok) out[id] = parsed.bot;
  }
  return out;
}

beforeAll(async () => {
  [tdb, tr] = await Promise.all([createTestDatabase(), createTestRedis()]);
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  });
  app = await createApiServer({
    db: tdb.db,
    redis: tr.redis,
    keys: tr.keys,
    metrics: createMetrics({ defaultMetrics: false }),
    logger: createLogger({ name: 'bots-test', level: 'debug', destination: sink }),
    apiToken: config.api.token,
    apiTokens: config.api.tokens,
    authMaxFailures: 10_000,
  });
});

afterAll(async () => {
  await app?.close();
  await tr?.cleanup();
  await tdb?.drop();
});

describe('POST /bots', () => {
  it('creates a bot with the worker defaults, bot_id defaulting to the pair (201), and mirrors it', async () => {
    const res = await app.inject({ method: 'POST', url: '/bots', headers: op, payload: { pair: 'btc-usd' } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({
      bot_id: 'BTC-USD',
      pair: 'BTC-USD',
      interval_ms: 5000,
      threshold_percent: '0.01',
      price_field: 'ask',
      reference_mode: 'last-alert',
      enabled: true,
      source: 'api',
      service: null,
      version: 1,
      created_by: 'operator',
      updated_by: 'operator',
    });
    expect(res.headers.etag).toBe('"1"');
    expect((await mirror())['BTC-USD']).toMatchObject({ version: 1, enabled: true });
  });

  it('takes every setting', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/bots',
      headers: op,
      payload: { pair: 'ETH-USD', bot_id: 'eth-fast', interval_ms: 1000, threshold_percent: '0.5', price_field: 'mid', reference_mode: 'first' },
    });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ bot_id: 'eth-fast', pair: 'ETH-USD', interval_ms: 1000, threshold_percent: '0.5', price_field: 'mid', reference_mode: 'first' });
  });

  it('answers 409 when the bot id is taken, and changes nothing', async () => {
    const res = await app.inject({ method: 'POST', url: '/bots', headers: op, payload: { pair: 'ETH-USD', bot_id: 'BTC-USD' } });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ error: 'conflict', reason: 'taken', bot_id: 'BTC-USD', version: 1 });
    expect((await app.inject({ url: '/bots/BTC-USD', headers: op })).json()).toMatchObject({ pair: 'BTC-USD', version: 1 });
  });

  const BAD: [string, unknown, RegExp][] = [
    ['pair', 'BTCUSD', /a pair such as BTC-USD/],
    ['pair', 42, /a pair such as BTC-USD/],
    ['bot_id', 'has space', /1-64 characters/],
    ['bot_id', true, /1-64 characters/],
    ['interval_ms', 99, /an integer from 100 to 86400000/],
    ['interval_ms', '5000', /an integer from 100 to 86400000/],
    ['interval_ms', 1.5, /an integer from 100 to 86400000/],
    ['threshold_percent', '0', /greater than 0 and at most 1000/],
    ['threshold_percent', '1e-3', /greater than 0 and at most 1000/],
    ['threshold_percent', 2000, /greater than 0 and at most 1000/],
    ['price_field', 'last', /one of ask, bid, mid/],
    ['reference_mode', null, /one of first, last-alert/],
  ];
  it.each(BAD)('answers 400 naming %s for %j, with what the worker allows', async (field, value, allowed) => {
    const res = await app.inject({ method: 'POST', url: '/bots', headers: op, payload: { pair: 'LTC-USD', bot_id: 'ltc', [field]: value } });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body).toMatchObject({ error: 'bad_request', parameter: field });
    expect(body.value).toEqual(value);
    expect(String(body.allowed)).toMatch(allowed);
    expect(body.message).toContain(field);
    expect((await app.inject({ url: '/bots/ltc', headers: op })).statusCode).toBe(404);
  });

  it('answers 400 naming an unknown field, listing the known ones', async () => {
    const res = await app.inject({ method: 'POST', url: '/bots', headers: op, payload: { pair: 'LTC-USD', threshold: '0.5' } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ parameter: 'threshold', allowed: ['pair', 'bot_id', 'interval_ms', 'threshold_percent', 'price_field', 'reference_mode', 'rule', 'window_ms', 'pending_polls', 'cooldown_ms', 'max_alerts', 'expires_at'] });
  });

  it('answers 400 for a huge value, echoing what was sent, and 413 for a body beyond the limit', async () => {
    const huge = '9'.repeat(200_000);
    const res = await app.inject({ method: 'POST', url: '/bots', headers: op, payload: { pair: 'LTC-USD', threshold_percent: huge } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ parameter: 'threshold_percent', value: huge });
    const tooBig = await app.inject({ method: 'POST', url: '/bots', headers: op, payload: { pair: 'LTC-USD', bot_id: 'x'.repeat(2_000_000) } });
    expect(tooBig.statusCode).toBe(413);
  });

  it('answers 400 naming if-match for a malformed version', async () => {
    const res = await app.inject({ method: 'PATCH', url: '/bots/BTC-USD', headers: { ...op, 'if-match': 'yesterday' }, payload: { enabled: true } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ parameter: 'if-match', value: 'yesterday' });
  });

  it('answers 400 naming pair when it is missing', async () => {
    const res = await app.inject({ method: 'POST', url: '/bots', headers: op, payload: { interval_ms: 1000 } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ parameter: 'pair' });
  });
});

describe('PATCH /bots/{bot_id}', () => {
  it('changes a setting, bumps the version, mirrors it and announces the bot id', async () => {
    const sub = tr.redis.duplicate();
    const heard = new Promise<string>((resolve) => sub.on('message', (_c, m) => resolve(m)));
    await sub.subscribe(tr.keys.botsChangedChannel);
    try {
      const res = await app.inject({ method: 'PATCH', url: '/bots/BTC-USD', headers: as(SECOND_OPERATOR), payload: { threshold_percent: '0.25' } });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ threshold_percent: '0.25', version: 2, updated_by: 'bob', created_by: 'operator' });
      expect(await heard).toBe('BTC-USD');
      expect((await mirror())['BTC-USD']).toMatchObject({ version: 2, thresholdPercent: '0.25' });
    } finally {
      await sub.quit();
    }
  });

  it('pauses and resumes (enabled), each a new version; the mirror keeps a paused bot with enabled false', async () => {
    const paused = await app.inject({ method: 'PATCH', url: '/bots/BTC-USD', headers: op, payload: { enabled: false } });
    expect(paused.json()).toMatchObject({ enabled: false, version: 3 });
    expect((await mirror())['BTC-USD']).toMatchObject({ enabled: false, version: 3 });
    const resumed = await app.inject({ method: 'PATCH', url: '/bots/BTC-USD', headers: op, payload: { enabled: true } });
    expect(resumed.json()).toMatchObject({ enabled: true, version: 4 });
  });

  it('refuses a stale If-Match with 409 and applies a current one', async () => {
    const stale = await app.inject({ method: 'PATCH', url: '/bots/BTC-USD', headers: { ...op, 'if-match': '"2"' }, payload: { interval_ms: 2000 } });
    expect(stale.statusCode).toBe(409);
    expect(stale.json()).toMatchObject({ reason: 'version', version: 4 });
    const current = await app.inject({ method: 'PATCH', url: '/bots/BTC-USD', headers: { ...op, 'if-match': '"4"' }, payload: { interval_ms: 2000 } });
    expect(current.json()).toMatchObject({ interval_ms: 2000, version: 5 });
  });

  it('answers 404 for an unknown bot and 400 naming the field for a bad value', async () => {
    expect((await app.inject({ method: 'PATCH', url: '/bots/nobody', headers: op, payload: { enabled: false } })).statusCode).toBe(404);
    const bad = await app.inject({ method: 'PATCH', url: '/bots/BTC-USD', headers: op, payload: { enabled: 'no' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ parameter: 'enabled', value: 'no', allowed: 'true or false' });
    const identity = await app.inject({ method: 'PATCH', url: '/bots/BTC-USD', headers: op, payload: { bot_id: 'other' } });
    expect(identity.json()).toMatchObject({ parameter: 'bot_id' });
    const empty = await app.inject({ method: 'PATCH', url: '/bots/BTC-USD', headers: op, payload: {} });
    expect(empty.json()).toMatchObject({ parameter: 'body' });
  });
});

describe('GET /bots and /bots/{bot_id}', () => {
  it('lists every bot and shows one with its holder and heartbeat', async () => {
    const list = (await app.inject({ url: '/bots', headers: as(ANALYST) })).json() as { bots: { bot_id: string }[] };
    expect(list.bots.map((b) => b.bot_id)).toEqual(['BTC-USD', 'eth-fast']);
    await tr.redis.set(tr.keys.botLease('eth-fast', 'ETH-USD'), 'worker-7:3', 'PX', 10_000);
    const one = (await app.inject({ url: '/bots/eth-fast', headers: as(ANALYST) })).json();
    expect(one.holder).toMatchObject({ worker_id: 'worker-7', generation: 3 });
    expect(one.holder.ttl_ms).toBeGreaterThan(0);
    expect(one.status).toBeNull();
    expect((await app.inject({ url: '/bots/BTC-USD', headers: op })).json().holder).toBeNull();
    expect((await app.inject({ url: '/bots/nobody', headers: op })).statusCode).toBe(404);
  });
});

function composeHeartbeat(botId: string, service: string): BotStatus {
  const at = new Date().toISOString();
  return {
    botId,
    pair: 'XRP-USD',
    status: 'ok',
    consecutiveErrors: 0,
    startedAt: at,
    heartbeatAt: at,
    ttlMs: 15_000,
    rateLimited: false,
    effectiveIntervalMs: 5000,
    alertsPublished: 0,
    alertsDropped: 0,
    alertsQueued: 0,
    config: { botId, pair: 'XRP-USD', intervalMs: 5000, thresholdPercent: '0.01', priceField: 'ask', referenceMode: 'first', tickerBaseUrl: 'http://127.0.0.1:9999' },
    ...({ source: 'compose', service, workerId: `${service}-1` } as object),
  };
}

describe('DELETE /bots/{bot_id}', () => {
  it('removes a runtime bot (204), drops it from the mirror, then answers 404', async () => {
    const del = await app.inject({ method: 'DELETE', url: '/bots/eth-fast', headers: op });
    expect(del.statusCode).toBe(204);
    expect(Object.keys(await mirror())).not.toContain('eth-fast');
    expect((await app.inject({ method: 'DELETE', url: '/bots/eth-fast', headers: op })).statusCode).toBe(404);
  });
});

describe('roles', () => {
  it('GET /me names the caller and its scope', async () => {
    expect((await app.inject({ url: '/me', headers: as(ANALYST) })).json()).toEqual({ name: 'alice', scope: 'analyst' });
    expect((await app.inject({ url: '/me', headers: op })).json()).toEqual({ name: 'operator', scope: 'operator' });
    expect((await app.inject({ url: '/me' })).statusCode).toBe(401);
  });

  it('refuses every write of an analyst with 403 naming the scope, and changes nothing', async () => {
    const before = (await app.inject({ url: '/bots', headers: op })).body;
    const audited = (await app.inject({ url: '/audit', headers: op })).json().items.length;
    const writes = [
      { method: 'POST' as const, url: '/bots', payload: { pair: 'DOT-USD' } },
      { method: 'PATCH' as const, url: '/bots/BTC-USD', payload: { enabled: false } },
      { method: 'DELETE' as const, url: '/bots/BTC-USD' },
      { method: 'DELETE' as const, url: '/fleet/BTC-USD' },
    ];
    for (const w of writes) {
      const res = await app.inject({ ...w, headers: as(ANALYST) });
      expect(res.statusCode).toBe(403);
      expect(res.json()).toEqual({ error: 'forbidden', message: 'needs the operator scope', required_scope: 'operator' });
      const anonymous = await app.inject(w);
      expect(anonymous.statusCode).toBe(401);
    }
    expect((await app.inject({ url: '/bots', headers: op })).body).toBe(before);
    expect((await app.inject({ url: '/audit', headers: op })).json().items.length).toBe(audited);
  });

  it('lets an analyst open the live feed (POST /events/ticket is a read)', async () => {
    expect((await app.inject({ method: 'POST', url: '/events/ticket', headers: as(ANALYST) })).statusCode).toBe(200);
  });
});

describe('GET /audit', () => {
  it('lists every change newest first with the actor by token name, pages by cursor and filters by bot', async () => {
    const all = (await app.inject({ url: '/audit?limit=1000', headers: as(ANALYST) })).json() as { items: { action: string; actor: string; bot_id: string; before: unknown; after: unknown }[] };
    expect(all.items.map((i) => `${i.action}:${i.bot_id}:${i.actor}`)).toEqual([
      'delete:eth-fast:operator',
      'update:BTC-USD:operator',
      'resume:BTC-USD:operator',
      'pause:BTC-USD:operator',
      'update:BTC-USD:bob',
      'create:eth-fast:operator',
      'create:BTC-USD:operator',
    ]);
    expect(all.items[0]!.after).toBeNull();
    expect(all.items[4]!.before).toMatchObject({ threshold_percent: '0.01', version: 1 });
    expect(all.items[4]!.after).toMatchObject({ threshold_percent: '0.25', version: 2 });

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/audit?limit=3${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await app.inject({ url, headers: op })).json() as { items: { action: string; bot_id: string }[]; next_cursor: string | null };
      seen.push(...page.items.map((i) => `${i.action}:${i.bot_id}`));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual(all.items.map((i) => `${i.action}:${i.bot_id}`));

    const eth = (await app.inject({ url: '/audit?bot_id=eth-fast', headers: op })).json() as { items: { action: string }[] };
    expect(eth.items.map((i) => i.action)).toEqual(['delete', 'create']);
    for (const q of ['limit=0', 'limit=x', 'cursor=bogus', 'bot_id=a%20b', 'page=2']) {
      const res = await app.inject({ url: `/audit?${q}`, headers: op });
      expect(res.statusCode).toBe(400);
      expect(res.json().parameter).toBe(q.split('=')[0]);
    }
  });

  it('never shows a token value in any answer or log line', async () => {
    const everything = [
      (await app.inject({ url: '/audit?limit=1000', headers: op })).body,
      (await app.inject({ url: '/bots', headers: op })).body,
      (await app.inject({ url: '/me', headers: op })).body,
      logLines.join(''),
    ].join('\n');
    for (const token of [OPERATOR, ANALYST, SECOND_OPERATOR]) expect(everything).not.toContain(token);
    expect(logLines.join('')).toContain('refused a write without the operator scope');
  });
});

describe('compose bots', () => {
  it('are recorded from their heartbeats by the reconcile round and cannot be changed (409 naming the service)', async () => {
    const { createBotsReconciler } = await import('../../bots/bots-reconciler');
    const { createBotsRepository } = await import('../../../shared/read-model/bots-repository');
    await writeBotStatus(tr.redis, tr.keys, composeHeartbeat('xrp-compose', 'worker-xrp'));
    const reconciler = createBotsReconciler({ db: tdb.db, redis: tr.redis, keys: tr.keys, repository: createBotsRepository(tdb.db), logger: createLogger({ name: 't', level: 'silent' }) });
    await reconciler.reconcileOnce();
    await reconciler.reconcileOnce();
    const bot = (await app.inject({ url: '/bots/xrp-compose', headers: op })).json();
    expect(bot).toMatchObject({ source: 'compose', service: 'worker-xrp', pair: 'XRP-USD', version: 1, created_by: 'compose:worker-xrp' });
    expect(bot.status).toMatchObject({ bot_id: 'xrp-compose', status: 'ok' });
    // Only runtime bots are mirrored.
    expect(Object.keys(await mirror())).not.toContain('xrp-compose');
    for (const w of [
      { method: 'PATCH' as const, url: '/bots/xrp-compose', payload: { enabled: false } },
      { method: 'DELETE' as const, url: '/bots/xrp-compose' },
      { method: 'POST' as const, url: '/bots', payload: { pair: 'XRP-USD', bot_id: 'xrp-compose' } },
    ]) {
      const res = await app.inject({ ...w, headers: op });
      expect(res.statusCode).toBe(409);
      expect(res.json()).toMatchObject({ reason: 'compose', service: 'worker-xrp' });
      expect(res.json().message).toContain('worker-xrp');
    }
    expect((await app.inject({ url: '/bots/xrp-compose', headers: op })).json().version).toBe(1);
  });
});

describe('the mirror', () => {
  it('is rebuilt by the reconcile loop after someone deletes the hash', async () => {
    const { createBotsReconciler } = await import('../../bots/bots-reconciler');
    const { createBotsRepository } = await import('../../../shared/read-model/bots-repository');
    const expected = await mirror();
    expect(Object.keys(expected)).toEqual(['BTC-USD']);
    await tr.redis.del(tr.keys.desiredBots);
    await tr.redis.hset(tr.keys.desiredBots, 'ghost', '{"not":"a bot"}');
    const reconciler = createBotsReconciler({ db: tdb.db, redis: tr.redis, keys: tr.keys, repository: createBotsRepository(tdb.db), logger: createLogger({ name: 't', level: 'silent' }), periodMs: 50 });
    reconciler.start();
    try {
      for (let i = 0; i < 200 && JSON.stringify(await mirror()) !== JSON.stringify(expected); i++) await new Promise((r) => setTimeout(r, 25));
      expect(await mirror()).toEqual(expected);
      expect(await tr.redis.hkeys(tr.keys.desiredBots)).toEqual(['BTC-USD']);
    } finally {
      await reconciler.stop();
    }
  });
});

describe('1,000 hostile write bodies', () => {
  it('get no 5xx and change nothing', async () => {
    const snapshot = async () => JSON.stringify(((await app.inject({ url: '/bots', headers: op })).json() as { bots: { bot_id: string; version: number }[] }).bots.map((b) => [b.bot_id, b.version]));
    const before = await snapshot();
    const auditBefore = (await app.inject({ url: '/audit?limit=1000', headers: op })).json().items.length;
    const FIELDS = ['pair', 'bot_id', 'interval_ms', 'threshold_percent', 'price_field', 'reference_mode', 'enabled'];
    const hostileKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'pair ', 'PAIR', '');
    // bot_id stays the taken BTC-USD (a POST is at best a 409), so no generated body is a valid change.
    const settingKey = fc.constantFrom('pair', 'interval_ms', 'threshold_percent', 'price_field', 'reference_mode', 'enabled');
    const wrongValue = fc.oneof(fc.anything(), fc.string({ maxLength: 20_000 }), fc.double(), fc.constant(null), fc.array(fc.string()), fc.object());
    // Each body is hostile: a value of the wrong kind, an unknown or prototype key, or not an object at all.
    const body = fc.oneof(
      fc.anything().filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)),
      fc.tuple(hostileKey, fc.anything().filter((v) => v !== undefined)).map(([k, v]) => ({ pair: 'ADA-USD', [k]: v })),
      fc.tuple(settingKey, wrongValue).map(([k, v]) => ({ pair: 'ADA-USD', bot_id: 'BTC-USD', [k]: v })),
      fc.dictionary(fc.string().filter((k) => !FIELDS.includes(k)), fc.anything(), { minKeys: 1 }),
    );
    const target = fc.constantFrom(
      { method: 'POST' as const, url: '/bots' },
      { method: 'PATCH' as const, url: '/bots/BTC-USD' },
      { method: 'PATCH' as const, url: '/bots/xrp-compose' },
    );
    const raw = fc.constantFrom('{"__proto__":{"admin":true},"pair":"ADA-USD"}', '{"constructor":{"prototype":{"x":1}}}', '{', '[]', 'null', '"x"', '{"pair":"ADA-USD"', '\u0000');
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(target, fc.oneof(body.map((b) => ({ json: b })), raw.map((r) => ({ text: r }))), async (t, b) => {
        const payload = 'text' in b ? b.text : JSON.stringify(b.json) ?? 'null';
        const res = await app.inject({ ...t, headers: { ...op, 'content-type': 'application/json' }, payload });
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        // Every body is hostile: refused (400, or 409 for a taken id or a compose bot), never accepted, never a 5xx.
        expect(res.statusCode).toBeGreaterThanOrEqual(400);
        expect(res.statusCode).toBeLessThan(500);
        expect(({} as Record<string, unknown>).admin).toBeUndefined();
      }),
      { numRuns: 1000 },
    );
    expect(await snapshot()).toBe(before);
    expect((await app.inject({ url: '/audit?limit=1000', headers: op })).json().items.length).toBe(auditBefore);
    expect([...statuses.keys()].every((code) => code === 400 || code === 409)).toBe(true);
  }, 120_000);
});
