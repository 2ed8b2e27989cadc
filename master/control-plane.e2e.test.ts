import type { AlertMessage } from '../shared/contract/alert';
import { createTickerSimulator, type RequestLogEntry, type TickerSimulator } from '../sim/simulator';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db';
import { masterTestEnv } from '../test/helpers/master-env';
import { startService, type ServiceProcess } from '../test/helpers/process';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { waitFor } from '../test/helpers/wait';
import { readAlertStream } from '../test/helpers/worker-streams';

/**
 * The runtime control plane as an operator sees it, with real processes: a master (bots table, Redis mirror, API with an
 * analyst and an operator token), three generic workers (no PAIR), one compose-style pinned worker (PAIR and
 * COMPOSE_SERVICE) and the ticker simulator, whose request log (User-Agent `tickwatch-worker/<WORKER_ID>`) shows which
 * worker polled which pair and when.
 */

const OPERATOR_TOKEN = 'ops-token-7f3a9c21d4e8b605';
const ANALYST_TOKEN = 'ana-token-2b8e6d40c1f9a735';
const INTERVAL = 500;
const COMPOSE_SERVICE = 'worker-cmp';

const A = { id: 'bot-a', pair: 'AAA-USD' };
const B = { id: 'bot-b', pair: 'BBB-USD' };
const COMPOSE_PAIR = 'CMP-USD';
const GENERIC = ['gw-1', 'gw-2', 'gw-3'] as const;

const UA = (workerId: string) => `tickwatch-worker/${workerId}`;
/** Collapses runs of one value: ['a','a','b'] -> ['a','b']. */
const runs = <T>(values: readonly T[]): T[] => values.filter((v, i) => i === 0 || values[i - 1] !== v);

interface HttpAnswer {
  readonly status: number;
  readonly text: string;
  /** The parsed JSON answer (the text when it is not JSON). */
  readonly body: any;
}

interface WireAlertItem {
  id: string;
  bot_id: string;
  direction: string;
  price: string;
  reference_price: string;
  threshold_percent: string;
  observed_at: string;
  config: { botVersion?: number };
}

describe('the runtime control plane: a master, generic workers, a compose worker and the simulator', () => {
  let t: TestDatabase | undefined;
  let r: TestRedis | undefined;
  let sim: TickerSimulator | undefined;
  let master: ServiceProcess | undefined;
  let api = '';
  const workers = new Map<string, ServiceProcess>();
  /** Every status an operator write answered, in order: `METHOD path -> status`. */
  const operatorWrites: string[] = [];

  const call = async (method: string, path: string, token: string | null, payload?: unknown): Promise<HttpAnswer> => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (payload !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${api}${path}`, { method, headers, body: payload === undefined ? undefined : JSON.stringify(payload) });
    const text = await res.text();
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = text;
    }
    return { status: res.status, text, body };
  };
  const read = (path: string) => call('GET', path, ANALYST_TOKEN);
  const write = async (method: string, path: string, payload?: unknown) => {
    const res = await call(method, path, OPERATOR_TOKEN, payload);
    operatorWrites.push(`${method} ${path.split('?')[0]} -> ${res.status}`);
    return res;
  };

  const requests = (pair: string): RequestLogEntry[] => sim!.requestLog.filter((e) => e.path.endsWith(`/${pair}`));
  const agents = (pair: string) => requests(pair).map((e) => e.userAgent);
  const alerts = async (pair: string): Promise<WireAlertItem[]> => (await read(`/alerts?pair=${pair}&ordering=observed_at&limit=1000`)).body.items;
  const botView = async (botId: string) => (await read(`/bots/${botId}`)).body;
  const workerState = async (workerId: string) => {
    const raw = await r!.redis.get(r!.keys.workerHeartbeat(workerId));
    return raw ? (JSON.parse(raw) as { state: string; botId?: string }) : null;
  };
  const summary = (a: WireAlertItem) => `${a.direction} ${a.price} vs ${a.reference_price} at ${a.threshold_percent} % v${a.config.botVersion}`;
  /** Resolves once `pair` (polled by a worker that keeps running) was requested after `after`: time passing, as an event. */
  const polledAfter = (pair: string, after: number) => waitFor(`a poll of ${pair} after ${new Date(after).toISOString()}`, () => requests(pair).some((e) => e.at > after), { timeoutMs: 15_000 });

  const startWorker = (workerId: string, extra: Record<string, string> = {}) => {
    const p = startService('worker/main.ts', {
      WORKER_ID: workerId,
      TICKER_BASE_URL: sim!.url,
      TICKER_RATE_LIMIT_PER_MIN: '0',
      // Each bot requests its own pair's endpoint, so the request log tells which worker polled which bot.
      TICKER_FETCH: 'pair',
      REDIS_URL: r!.url,
      REDIS_KEY_PREFIX: r!.prefix,
      LOG_LEVEL: 'info',
      ...extra,
    });
    workers.set(workerId, p);
    return p;
  };

  beforeAll(async () => {
    [t, r] = await Promise.all([createTestDatabase(), createTestRedis()]);
    sim = await createTickerSimulator({ pairs: {}, rateLimit: 0, volatilityPercent: '0' });
    sim.setPrice(A.pair, '100');
    // Every request alternates 100 / 100.5: with threshold 0.1 % each poll after the first alerts.
    sim.setScript(B.pair, Array.from({ length: 2000 }, (_, i) => (i % 2 === 0 ? '100' : '100.5')));
    sim.setPrice(COMPOSE_PAIR, '50');

    master = startService('master/main.ts', {
      ...masterTestEnv(t.url, r),
      API_TOKENS: `ana:analyst:${ANALYST_TOKEN},ops:operator:${OPERATOR_TOKEN}`,
      BOTS_RECONCILE_MS: '200',
      LOG_LEVEL: 'info',
    });
    await master.waitForOutput('master started', 60_000);
    api = /master started; API on (http:\/\/[^\s"]+)/.exec(master.output())![1]!;

    startWorker(`${COMPOSE_SERVICE}-1`, { PAIR: COMPOSE_PAIR, COMPOSE_SERVICE, FETCH_INTERVAL_MS: String(INTERVAL) });
    for (const id of GENERIC) startWorker(id);
    await Promise.all([...workers.values()].map((w) => w.waitForOutput(/generic worker started|worker started/, 60_000)));
    await waitFor('every generic worker idle', async () => (await Promise.all(GENERIC.map(workerState))).every((s) => s?.state === 'idle'), { timeoutMs: 30_000 });
  }, 90_000);

  afterAll(async () => {
    await Promise.all([...workers.values()].map((w) => w.stop('SIGTERM', 10_000)));
    await master?.stop('SIGTERM', 10_000);
    await sim?.close();
    await r?.cleanup();
    await t?.drop();
  }, 60_000);

  const holders: Record<string, string> = {};

  it('two bots created through the API are polled within 2 intervals, each by its own worker, and the third worker idles', async () => {
    const claimable: Record<string, number> = {};
    for (const [bot, threshold] of [
      [A, '1'],
      [B, '0.1'],
    ] as const) {
      const res = await write('POST', '/bots', { bot_id: bot.id, pair: bot.pair, interval_ms: INTERVAL, threshold_percent: threshold });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ bot_id: bot.id, pair: bot.pair, interval_ms: INTERVAL, threshold_percent: threshold, source: 'api', version: 1, created_by: 'ops' });
      // The answer comes after the mirror is written: from now on a worker may claim the bot.
      claimable[bot.id] = Date.now();
    }
    for (const bot of [A, B]) {
      const first = await waitFor(`the first poll of ${bot.pair}`, () => requests(bot.pair)[0], { timeoutMs: 15_000 });
      const delay = first.at - claimable[bot.id]!;
      process.stdout.write(`control plane: ${bot.id} claimable -> first poll ${delay} ms\n`);
      expect(delay).toBeLessThanOrEqual(2 * INTERVAL);
    }
    for (const bot of [A, B]) {
      const view = await waitFor(`${bot.id} with a holder and a heartbeat`, async () => {
        const v = await botView(bot.id);
        return v?.holder && v.status ? v : null;
      });
      holders[bot.id] = view.holder.worker_id;
      expect(view.status).toMatchObject({ bot_id: bot.id, pair: bot.pair, worker_id: view.holder.worker_id, source: 'api', bot_version: 1 });
    }
    expect(GENERIC).toContain(holders[A.id]);
    expect(GENERIC).toContain(holders[B.id]);
    expect(holders[A.id]).not.toBe(holders[B.id]);
    const idle = GENERIC.find((id) => id !== holders[A.id] && id !== holders[B.id])!;

    await waitFor('two polls of each bot', () => requests(A.pair).length >= 2 && requests(B.pair).length >= 2);
    const fleet = (await read('/fleet')).body.bots as { bot_id: string; worker_id: string | null }[];
    const holdersInFleet = fleet.filter((b) => b.bot_id === A.id || b.bot_id === B.id).map((b) => b.worker_id);
    expect(new Set(holdersInFleet)).toEqual(new Set([holders[A.id], holders[B.id]]));
    expect(fleet.map((b) => b.worker_id)).not.toContain(idle);
    expect(await workerState(idle)).toMatchObject({ state: 'idle' });
    expect(sim!.requestLog.filter((e) => e.userAgent === UA(idle))).toEqual([]);
    expect(runs(agents(A.pair))).toEqual([UA(holders[A.id]!)]);
    expect(runs(agents(B.pair))).toEqual([UA(holders[B.id]!)]);
  }, 30_000);

  it('a threshold PATCH applies to the next ticks: moves quiet under 1 % alert under 0.5 %, with the new bot version', async () => {
    await waitFor('the reference of bot-a at 100', async () => (await botView(A.id))?.status?.reference_price === '100');
    // +0.6 %: below the 1 % the bot was created with.
    sim!.setPrice(A.pair, '100.6');
    const movedAt = Date.now();
    await waitFor('three polls at 100.6', async () => requests(A.pair).filter((e) => e.at > movedAt).length >= 3 && (await botView(A.id))?.status?.last_price === '100.6');
    expect(await readAlertStream(r!.redis, r!.keys, A.pair)).toEqual([]);

    const patched = await write('PATCH', `/bots/${A.id}`, { threshold_percent: '0.5' });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ threshold_percent: '0.5', version: 2, updated_by: 'ops' });
    await waitFor('the alert under the new threshold', async () => (await alerts(A.pair)).length >= 1);
    // +0.596 % from the new reference 100.6: an alert under 0.5 %, none under 1 %.
    sim!.setPrice(A.pair, '101.2');
    await waitFor('the second alert under the new threshold', async () => (await alerts(A.pair)).length >= 2);
    const quietFrom = Date.now();
    await waitFor('three more polls at 101.2', () => requests(A.pair).filter((e) => e.at > quietFrom).length >= 3);
    const expected = ['up 100.6 vs 100 at 0.5 % v2', 'up 101.2 vs 100.6 at 0.5 % v2'];
    expect((await readAlertStream(r!.redis, r!.keys, A.pair)).length).toBe(2);
    expect((await alerts(A.pair)).map(summary)).toEqual(expected);
  }, 30_000);

  it('SIGKILL of a holder: the spare polls within max(3 x interval, 15 s), the two never interleave, no alert is duplicated', async () => {
    const killed = holders[B.id]!;
    const spare = GENERIC.find((id) => id !== holders[A.id] && id !== killed)!;
    const before = (await botView(B.id)).holder;
    await waitFor('a few alerts of bot-b stored', async () => (await alerts(B.pair)).length >= 2);

    const killedAt = Date.now();
    await workers.get(killed)!.stop('SIGKILL');
    const first = await waitFor('the spare to poll bot-b', () => requests(B.pair).find((e) => e.userAgent !== UA(killed)), { timeoutMs: 25_000 });
    const failoverMs = first.at - killedAt;
    process.stdout.write(`control plane: SIGKILL of the holder -> the spare's first poll ${failoverMs} ms\n`);
    expect(first.userAgent).toBe(UA(spare));
    expect(failoverMs).toBeLessThanOrEqual(Math.max(3 * INTERVAL, 15_000));
    holders[B.id] = spare;

    await waitFor('three polls by the spare', () => agents(B.pair).filter((a) => a === UA(spare)).length >= 3);
    // Every request of the killed worker precedes every request of the spare.
    expect(runs(agents(B.pair))).toEqual([UA(killed), UA(spare)]);
    const after = (await botView(B.id)).holder;
    expect(after.worker_id).toBe(spare);
    expect(after.generation).toBeGreaterThan(before.generation);

    // The history holds every alert published (the killed worker's and the spare's), each once.
    const stored = await waitFor('every published alert of bot-b stored, some by the spare', async () => {
      const published = await readAlertStream(r!.redis, r!.keys, B.pair);
      const rows = await alerts(B.pair);
      const ids = new Set(rows.map((a) => a.id));
      const spareAlerted = rows.some((a) => Date.parse(a.observed_at) >= first.at);
      return spareAlerted && published.every((p: AlertMessage) => ids.has(p.id)) ? rows : null;
    });
    expect(new Set(stored.map((a) => a.id)).size).toBe(stored.length);
    expect(new Set(stored.map((a) => `${a.bot_id} ${a.observed_at}`)).size).toBe(stored.length);
    expect(stored.length).toBeLessThanOrEqual(requests(B.pair).length);
  }, 45_000);

  it('pause and delete stop polling within 1 interval + 1 s, and the holders become generic again', async () => {
    const bound = INTERVAL + 1000;
    const pausedAt = Date.now();
    const paused = await write('PATCH', `/bots/${A.id}`, { enabled: false });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ enabled: false, version: 3 });
    await waitFor('bot-a stopped', async () => (await botView(A.id))?.status?.status === 'stopped');
    await waitFor(`${holders[A.id]} idle`, async () => (await workerState(holders[A.id]!))?.state === 'idle');
    // The compose worker keeps polling: once it polled twice past the bound, a paused bot still polling would show.
    await polledAfter(COMPOSE_PAIR, pausedAt + bound + 2 * INTERVAL);
    const lastA = requests(A.pair).at(-1)!;
    process.stdout.write(`control plane: pause -> last poll ${lastA.at - pausedAt} ms\n`);
    expect(lastA.at - pausedAt).toBeLessThanOrEqual(bound);
    expect((await botView(A.id)).holder).toBeNull();

    const deletedAt = Date.now();
    const deleted = await write('DELETE', `/bots/${B.id}`);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    expect((await read(`/bots/${B.id}`)).status).toBe(404);
    await waitFor(`${holders[B.id]} idle`, async () => (await workerState(holders[B.id]!))?.state === 'idle');
    await polledAfter(COMPOSE_PAIR, deletedAt + bound + 2 * INTERVAL);
    const lastB = requests(B.pair).at(-1)!;
    process.stdout.write(`control plane: delete -> last poll ${lastB.at - deletedAt} ms\n`);
    expect(lastB.at - deletedAt).toBeLessThanOrEqual(bound);
    const fleet = (await read('/fleet')).body.bots as { bot_id: string; status: string }[];
    expect(fleet.find((b) => b.bot_id === B.id)).toMatchObject({ status: 'stopped' });
    // Nothing left to claim: no generic worker polled anything past the bound.
    const generic = new Set(GENERIC.map(UA));
    expect(sim!.requestLog.filter((e) => e.at > deletedAt + bound && generic.has(e.userAgent ?? ''))).toEqual([]);
  }, 30_000);

  it('the compose-declared bot is listed with source compose and cannot be changed through the API (409 naming the service)', async () => {
    const listed = await waitFor('the compose bot in GET /bots', async () => ((await read('/bots')).body.bots as { bot_id: string; version: number; threshold_percent: string }[]).find((b) => b.bot_id === COMPOSE_PAIR));
    expect(listed).toMatchObject({ bot_id: COMPOSE_PAIR, pair: COMPOSE_PAIR, source: 'compose', service: COMPOSE_SERVICE, interval_ms: INTERVAL, enabled: true });
    const version = listed.version;
    for (const [method, path, payload] of [
      ['PATCH', `/bots/${COMPOSE_PAIR}`, { threshold_percent: '0.5' }],
      ['PATCH', `/bots/${COMPOSE_PAIR}`, { enabled: false }],
      ['DELETE', `/bots/${COMPOSE_PAIR}`, undefined],
      ['POST', '/bots', { pair: COMPOSE_PAIR }],
    ] as const) {
      const res = await call(method, path, OPERATOR_TOKEN, payload);
      expect({ what: `${method} ${path}`, status: res.status }).toEqual({ what: `${method} ${path}`, status: 409 });
      expect(res.body).toMatchObject({ error: 'conflict', reason: 'compose', service: COMPOSE_SERVICE });
      expect(res.body.message).toContain(COMPOSE_SERVICE);
    }
    expect(await botView(COMPOSE_PAIR)).toMatchObject({ version, threshold_percent: listed.threshold_percent, enabled: true });
    const stillPolled = Date.now();
    await polledAfter(COMPOSE_PAIR, stillPolled);
  }, 20_000);

  it('an analyst token gets 403 on every write and changes nothing; the operator writes were 201/200/204 and each is in /audit by name', async () => {
    const bots = (await read('/bots')).text;
    const auditBefore = (await read('/audit?limit=1000')).body.items.length;
    for (const [method, path, payload] of [
      ['POST', '/bots', { pair: 'DDD-USD' }],
      ['PATCH', `/bots/${A.id}`, { enabled: true }],
      ['DELETE', `/bots/${A.id}`, undefined],
      ['DELETE', `/fleet/${B.id}`, undefined],
    ] as const) {
      const res = await call(method, path, ANALYST_TOKEN, payload);
      expect({ what: `${method} ${path}`, status: res.status }).toEqual({ what: `${method} ${path}`, status: 403 });
      expect(res.body).toEqual({ error: 'forbidden', message: 'needs the operator scope', required_scope: 'operator' });
    }
    expect((await read('/bots')).text).toBe(bots);
    expect((await read('/audit?limit=1000')).body.items.length).toBe(auditBefore);
    expect(((await read('/fleet')).body.bots as { bot_id: string }[]).map((b) => b.bot_id)).toContain(B.id);

    const removed = await write('DELETE', `/fleet/${B.id}`);
    expect(removed.status).toBe(204);
    expect(((await read('/fleet')).body.bots as { bot_id: string }[]).map((b) => b.bot_id)).not.toContain(B.id);
    expect(operatorWrites).toEqual([
      'POST /bots -> 201',
      'POST /bots -> 201',
      `PATCH /bots/${A.id} -> 200`,
      `PATCH /bots/${A.id} -> 200`,
      `DELETE /bots/${B.id} -> 204`,
      `DELETE /fleet/${B.id} -> 204`,
    ]);

    const audit = await read('/audit?limit=1000');
    expect(audit.status).toBe(200);
    const items = audit.body.items as { at: string; actor: string; action: string; bot_id: string; before: Record<string, unknown> | null; after: Record<string, unknown> | null }[];
    expect(items.filter((i) => i.actor === 'ops').map((i) => `${i.action} ${i.bot_id}`)).toEqual([`fleet-remove ${B.id}`, `delete ${B.id}`, `pause ${A.id}`, `update ${A.id}`, `create ${B.id}`, `create ${A.id}`]);
    expect(items.filter((i) => i.actor !== 'ops').every((i) => i.actor === `compose:${COMPOSE_SERVICE}` && i.bot_id === COMPOSE_PAIR)).toBe(true);
    expect(items.filter((i) => i.actor === `compose:${COMPOSE_SERVICE}`).length).toBeGreaterThanOrEqual(1);
    const update = items.find((i) => i.action === 'update' && i.bot_id === A.id)!;
    expect(update.before).toMatchObject({ threshold_percent: '1', version: 1 });
    expect(update.after).toMatchObject({ threshold_percent: '0.5', version: 2, updated_by: 'ops' });
    expect(items.find((i) => i.action === 'delete')).toMatchObject({ before: { bot_id: B.id }, after: null });
    for (const token of [OPERATOR_TOKEN, ANALYST_TOKEN]) {
      expect(audit.text).not.toContain(token);
      expect(master!.output()).not.toContain(token);
    }
  }, 20_000);

  it('bad input on every field answers 400 naming it, and changes nothing', async () => {
    const bots = (await read('/bots')).text;
    const auditBefore = (await read('/audit?limit=1000')).body.items.length;
    const cases: [string, string, Record<string, unknown>, string][] = [
      ['POST', '/bots', { pair: 'BTCUSD' }, 'pair'],
      ['POST', '/bots', { pair: 'EEE-USD', bot_id: 'has space' }, 'bot_id'],
      ['POST', '/bots', { pair: 'EEE-USD', interval_ms: 99 }, 'interval_ms'],
      ['POST', '/bots', { pair: 'EEE-USD', threshold_percent: '-1' }, 'threshold_percent'],
      ['POST', '/bots', { pair: 'EEE-USD', price_field: 'last' }, 'price_field'],
      ['POST', '/bots', { pair: 'EEE-USD', reference_mode: 'sometimes' }, 'reference_mode'],
      ['PATCH', `/bots/${A.id}`, { pair: 'eee/usd' }, 'pair'],
      ['PATCH', `/bots/${A.id}`, { interval_ms: 86_400_001 }, 'interval_ms'],
      ['PATCH', `/bots/${A.id}`, { threshold_percent: 'lots' }, 'threshold_percent'],
      ['PATCH', `/bots/${A.id}`, { price_field: 7 }, 'price_field'],
      ['PATCH', `/bots/${A.id}`, { reference_mode: '' }, 'reference_mode'],
      ['PATCH', `/bots/${A.id}`, { enabled: 'yes' }, 'enabled'],
    ];
    for (const [method, path, payload, field] of cases) {
      const res = await call(method, path, OPERATOR_TOKEN, payload);
      const value = payload[field];
      expect({ request: `${method} ${path} ${JSON.stringify(payload)}`, status: res.status, parameter: res.body?.parameter }).toEqual({
        request: `${method} ${path} ${JSON.stringify(payload)}`,
        status: 400,
        parameter: field,
      });
      expect(res.body).toMatchObject({ error: 'bad_request', value });
      expect(res.body.allowed).toBeTruthy();
      expect(res.body.message).toContain(field);
    }
    expect((await read('/bots')).text).toBe(bots);
    expect((await read('/audit?limit=1000')).body.items.length).toBe(auditBefore);
  }, 20_000);
});
