import { createLogger } from '../shared/platform/logger';
import { closeRedis, createRedis, type Redis } from '../shared/platform/redis';
import { createTickerSimulator, type TickerSimulator } from '../sim/simulator';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { waitFor } from '../test/helpers/wait';
import { createQuoteSnapshots, type QuoteSnapshotDeps } from './quote-snapshot';
import { createRateBudget } from './rate-budget';
import { createTickerClient } from './ticker-client';
import { readAlertStream, workerConfig } from '../test/helpers/worker-streams';
import { createWorker } from './worker';

const logger = createLogger({ name: 'test', level: 'silent' });

describe('the shared list snapshot (real Redis, the simulator)', () => {
  let sim: TickerSimulator;
  let t: TestRedis;
  let redis: Redis;
  const closers: (() => void)[] = [];
  beforeAll(async () => {
    t = await createTestRedis();
    // The workers' own kind of connection: fail-fast, so a Redis call never waits.
    redis = createRedis(t.url, logger, { name: 'test', failFast: true });
    await waitFor('the connection', () => redis.status === 'ready');
    sim = await createTickerSimulator({ pairs: { 'BTC-USD': '100', 'ETH-USD': '50', 'OLD-USD': '7' }, volatilityPercent: '0', rateLimit: 0, omitFromLists: ['OLDUSD'] });
  });
  afterAll(async () => {
    for (const close of closers) close();
    await sim?.close();
    await closeRedis(redis);
    await t?.cleanup();
  });

  const snapshots = (mode: QuoteSnapshotDeps['mode'], prefixKeys = t.keys) => {
    const ticker = createTickerClient({ baseUrl: sim.url, pair: 'UNUSED-USD', timeoutMs: 1000 });
    closers.push(() => ticker.close());
    const budget = createRateBudget({ redis, keys: prefixKeys, limit: 0, logger });
    return createQuoteSnapshots({ redis, keys: prefixKeys, ticker, budget, mode, workerId: 'w1', timeoutMs: 1000, logger });
  };
  const signal = new AbortController().signal;
  const lists = () => sim.requestLog.filter((e) => e.kind === 'list').length;

  it('auto: a lone reader of a currency uses its own endpoint; a second reader makes both share the list', async () => {
    const s = snapshots('auto');
    expect(await s.read({ pair: 'BTC-USD', botId: 'a', intervalMs: 1000 }, signal)).toMatchObject({ kind: 'pair', reason: 'no other bot reads the USD list' });
    const read = await s.read({ pair: 'ETH-USD', botId: 'b', intervalMs: 1000 }, signal);
    expect(read).toMatchObject({ kind: 'fetched', quote: 'USD', outcome: { kind: 'price', ask: '50.005000', bid: '49.995000' } });
  });

  it('a fresh snapshot is read without a request; one older than the reader interval is fetched again', async () => {
    const s = snapshots('currency');
    const before = lists();
    const first = await s.read({ pair: 'BTC-USD', botId: 'a', intervalMs: 60_000 }, signal);
    expect(first).toMatchObject({ kind: 'fetched', outcome: { kind: 'price' } });
    expect(lists()).toBe(before);
    await t.redis.hset(t.keys.tickerList('USD'), '@fetchedAt', String(Date.now() - 2000));
    await s.read({ pair: 'BTC-USD', botId: 'a', intervalMs: 1000 }, signal);
    expect(lists()).toBe(before + 1);
  });

  it('a pair missing from the list is fetched on its own, and remembered: the list is not searched again', async () => {
    const s = snapshots('currency');
    expect(await s.read({ pair: 'OLD-USD', botId: 'old', intervalMs: 1000 }, signal)).toMatchObject({ kind: 'pair', reason: 'OLD-USD is not in the USD list' });
    await t.redis.hset(t.keys.tickerList('USD'), '@fetchedAt', '1');
    const before = lists();
    expect(await s.read({ pair: 'OLD-USD', botId: 'old', intervalMs: 1000 }, signal)).toMatchObject({ kind: 'pair', reason: 'OLD-USD is fetched on its own for now' });
    expect(lists()).toBe(before);
  });

  it.each([
    ['not JSON', '{"ask":'],
    ['over the size cap', JSON.stringify({ ask: '1', bid: '1', pad: 'x'.repeat(2000) })],
    ['an exponent', JSON.stringify({ ask: '1e3', bid: '1' })],
    ['an inverted-looking bad marker', JSON.stringify({ bad: 'list entry BTCUSD: ask is not a positive plain decimal string' })],
  ])('a snapshot entry that is %s is a bad answer, never a price', async (_what, value) => {
    const s = snapshots('currency');
    await t.redis.hset(t.keys.tickerList('USD'), '@fetchedAt', String(Date.now()), 'BTCUSD', value);
    const read = await s.read({ pair: 'BTC-USD', botId: 'a', intervalMs: 60_000 }, signal);
    expect(read).toMatchObject({ kind: 'fetched', outcome: { kind: 'bad-answer' } });
  });

  it('a list that fails is the failure of the reader that sent it (a 500 is transient, a 429 carries Retry-After)', async () => {
    const s = snapshots('currency');
    await t.redis.del(t.keys.tickerList('USD'));
    sim.injectFault({ fault: 'server-error' }, { pair: 'USD' });
    expect(await s.read({ pair: 'BTC-USD', botId: 'a', intervalMs: 1000 }, signal)).toMatchObject({ kind: 'fetched', outcome: { kind: 'transient', reason: '500 internal_server_error' } });
    sim.injectFault({ fault: 'rate-limit', retryAfterSeconds: 4 }, { pair: 'USD' });
    expect(await s.read({ pair: 'BTC-USD', botId: 'a', intervalMs: 1000 }, signal)).toMatchObject({ kind: 'fetched', outcome: { kind: 'rate-limited', retryAfterMs: 4000 } });
    expect(await t.redis.exists(t.keys.tickerListLock('USD'))).toBe(0);
  });

  it('a currency without a list (404) makes its bots use their own endpoints', async () => {
    const s = snapshots('currency');
    // The simulator has no list for ZZZ; the pair endpoint is the bot's business.
    expect(await s.read({ pair: 'BTC-ZZZ', botId: 'z', intervalMs: 1000 }, signal)).toMatchObject({ kind: 'pair', reason: expect.stringMatching(/no list for ZZZ/) });
    const before = lists();
    expect(await s.read({ pair: 'BTC-ZZZ', botId: 'z', intervalMs: 1000 }, signal)).toMatchObject({ kind: 'pair' });
    expect(lists()).toBe(before);
  });

  it('a bot never takes the snapshot it used last: the next tick fetches a new list, and one price fetch alerts once', async () => {
    const keys = t.keys;
    const pair = 'DUP-USD';
    sim.setPrice(pair, '100');
    const config = workerConfig({ PAIR: pair, TICKER_BASE_URL: sim.url, REDIS_URL: t.url, REDIS_KEY_PREFIX: t.prefix, FETCH_INTERVAL_MS: '1000', OSCILLATION_PERCENT: '1', REFERENCE_MODE: 'first', TICKER_FETCH: 'currency', TICKER_RATE_LIMIT_PER_MIN: '0' });
    const t0 = Date.now();
    await t.redis.del(keys.tickerList('USD'));
    await t.redis.hset(keys.tickerList('USD'), '@fetchedAt', String(t0), 'DUPUSD', JSON.stringify({ ask: '100', bid: '100' }));
    const worker = createWorker({ config, logger, redis });
    await worker.start();
    try {
      await waitFor('the reference from the first snapshot', () => worker.status().referencePrice === '100');
      // Still younger than the 1 s interval on the next two ticks (about t0 + 1 s and t0 + 2 s): used on the first only.
      await t.redis.hset(keys.tickerList('USD'), '@fetchedAt', String(t0 + 1700), 'DUPUSD', JSON.stringify({ ask: '102', bid: '102' }));
      await waitFor('the tick after, which fetches the list again (100)', () => worker.status().lastPrice === '100' && worker.status().lastPriceAt !== new Date(t0).toISOString(), { timeoutMs: 8000 });
    } finally {
      await worker.stop();
    }
    const alerts = await readAlertStream(t.redis, t.keys, pair);
    expect(alerts.map((a) => [a.direction, a.price, a.observedAt])).toEqual([['up', '102', new Date(t0 + 1700).toISOString()]]);
  });
});
