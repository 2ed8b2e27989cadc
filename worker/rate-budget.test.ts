import { readFleet } from '../shared/contract/fleet-status';
import { createLogger } from '../shared/platform/logger';
import { closeRedis, createRedis, type Redis } from '../shared/platform/redis';
import { createTickerSimulator, type TickerSimulator } from '../sim/simulator';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { waitFor } from '../test/helpers/wait';
import { createRateBudget, emissionIntervalMs } from './rate-budget';
import { workerConfig } from '../test/helpers/worker-streams';
import { createWorker, type Worker } from './worker';

const logger = createLogger({ name: 'test', level: 'silent' });

/**
 * The fleet budget is tested with a 6 s window instead of a minute (the simulator enforces the same window), so that
 * "60 per minute" runs ten times faster: 60 requests per 6 s.
 */
const WINDOW_MS = 6000;
const LIMIT = 60;

describe('shared rate budget', () => {
  let t: TestRedis;
  let redis: Redis;
  beforeAll(async () => {
    t = await createTestRedis();
    redis = createRedis(t.url, logger, { name: 'test-budget', failFast: true });
    redis.setMaxListeners(100); // 30 workers share this one connection
    await waitFor('redis', () => redis.status === 'ready');
  });
  afterAll(async () => {
    await closeRedis(redis);
    await t?.cleanup();
  });

  it('spaces requests so that no window ever holds more than the limit', () => {
    expect(emissionIntervalMs(250, 60_000)).toBe(244);
    expect(emissionIntervalMs(60, 6000)).toBe(117);
    expect(emissionIntervalMs(0, 60_000)).toBe(0);
  });

  describe('with 30 workers at a 1 s interval, a budget of 60 per window and a simulator enforcing 60 per window', () => {
    let sim: TickerSimulator;
    const workers: Worker[] = [];
    const pairs = Array.from({ length: 30 }, (_, i) => `P${String(i).padStart(2, '0')}-USD`);
    beforeAll(async () => {
      sim = await createTickerSimulator({
        pairs: Object.fromEntries(pairs.map((p) => [p, '100'])),
        volatilityPercent: '0',
        rateLimit: LIMIT,
        rateWindowMs: WINDOW_MS,
      });
      for (const pair of pairs) {
        const config = workerConfig({
          PAIR: pair,
          TICKER_BASE_URL: sim.url,
          REDIS_URL: t.url,
          REDIS_KEY_PREFIX: t.prefix,
          FETCH_INTERVAL_MS: '1000',
          TICKER_RATE_LIMIT_PER_MIN: String(LIMIT),
          // The budget under per-pair requests: 30 pairs, 30 requests per round.
          TICKER_FETCH: 'pair',
        });
        workers.push(createWorker({ config, logger, redis, rateWindowMs: WINDOW_MS }));
      }
      await Promise.all(workers.map((w) => w.start()));
    });
    afterAll(async () => {
      await Promise.all(workers.map((w) => w.stop()));
      await sim?.close();
    });

    it('gets zero 429s, polls every pair, and slows all pairs evenly', async () => {
      await waitFor('every pair polled twice', () => pairs.every((p) => sim.countRequests(p) >= 2), { timeoutMs: 15_000 });
      expect(sim.countRequests(undefined, 429)).toBe(0);
      const counts = pairs.map((p) => sim.countRequests(p));
      // Round-robin: no pair is more than one request ahead of another.
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
      // The fleet status says the budget is short, with the effective interval (30 pairs x 117 ms, about 3.5 s).
      const fleet = await readFleet(t.redis, t.keys);
      const limited = fleet.filter((b) => b.rateLimited);
      expect(limited.length).toBeGreaterThan(20);
      for (const b of limited) expect(b.effectiveIntervalMs).toBeGreaterThan(2000);
    });

    it('pauses the whole fleet for Retry-After when one worker gets a 429', async () => {
      sim.injectFault({ fault: 'rate-limit', retryAfterSeconds: 2 }, { pair: 'P07-USD' });
      await waitFor('the injected 429', () => sim.requestLog.some((e) => e.fault === 'rate-limit'), { timeoutMs: 10_000 });
      const hit = sim.requestLog.find((e) => e.fault === 'rate-limit')!;
      await waitFor('requests after the pause', () => sim.requestLog.filter((e) => e.at > hit.at + 2000).length >= 5, { timeoutMs: 10_000 });
      const during = sim.requestLog.filter((e) => e.at > hit.at && e.at < hit.at + 2000);
      // Every worker held back: at most one request already on its way when the pause was set slips through.
      expect(during.length).toBeLessThanOrEqual(1);
      expect(sim.countRequests(undefined, 429)).toBe(1);
    });
  });

  describe('when Redis is unreachable', () => {
    it('falls back to the local rate instead of stopping', async () => {
      const dead = createRedis('redis://127.0.0.1:1', logger, { name: 'dead', failFast: true, extra: { retryStrategy: () => null } });
      try {
        const budget = createRateBudget({ redis: dead, keys: t.keys, limit: 1, windowMs: 60_000, logger });
        const first = await budget.acquire(new AbortController().signal);
        const second = await budget.acquire(new AbortController().signal);
        expect(first).toMatchObject({ mode: 'local', aborted: false });
        expect(second).toMatchObject({ mode: 'local', aborted: false });
        await budget.pause(1000); // must not throw either
      } finally {
        // Never connected: wait for ioredis to give up (no reconnects) rather than disconnecting a dead socket.
        await waitFor('the dead connection to end', () => dead.status === 'end');
      }
    });
  });

  describe('rate groups (one per egress IP)', () => {
    /** A worker's next ticket: granted at once (0), or the wait it would have (the wait is cut short, not slept). */
    const nextWait = async (budget: ReturnType<typeof createRateBudget>): Promise<number> => {
      const abort = new AbortController();
      let wait = 0;
      await budget.acquire(abort.signal, (ms) => {
        wait = ms;
        abort.abort();
      });
      return wait;
    };
    // One request per minute: a second ticket of the same budget waits about a minute.
    const budgetIn = (group: string) => createRateBudget({ redis, keys: t.keys, group, limit: 1, windowMs: 60_000, logger });

    it('gives workers in different groups a budget each', async () => {
      const [a, b] = [budgetIn('egress-a'), budgetIn('egress-b')];
      expect(await nextWait(a)).toBe(0);
      expect(await nextWait(b)).toBe(0);
      expect(await nextWait(a)).toBeGreaterThan(50_000);
      expect(await nextWait(b)).toBeGreaterThan(50_000);
    });

    it('makes workers in one group share one budget', async () => {
      const [first, second] = [budgetIn('egress-shared'), budgetIn('egress-shared')];
      expect(await nextWait(first)).toBe(0);
      expect(await nextWait(second)).toBeGreaterThan(50_000);
    });

    it('pauses only the group whose worker got the 429', async () => {
      const unlimited = (group: string) => createRateBudget({ redis, keys: t.keys, group, limit: 0, logger });
      const [hit, neighbour, other] = [unlimited('nat-1'), unlimited('nat-1'), unlimited('nat-2')];
      await hit.pause(30_000);
      expect(await nextWait(neighbour)).toBeGreaterThan(25_000);
      expect(await nextWait(other)).toBe(0);
    });

    it('keys each group apart, the default group under the group-less name', () => {
      expect(t.keys.rateBudget('default')).not.toContain('default');
      expect(t.keys.tickerPauseUntil('default')).not.toContain('default');
      expect(new Set(['a', 'b', 'default'].flatMap((g) => [t.keys.rateBudget(g), t.keys.tickerPauseUntil(g)])).size).toBe(6);
    });

    it('is the group TICKER_RATE_GROUP names', async () => {
      const sim = await createTickerSimulator({ pairs: { 'GRP-USD': '100' }, volatilityPercent: '0' });
      const config = workerConfig({ PAIR: 'GRP-USD', TICKER_BASE_URL: sim.url, REDIS_URL: t.url, REDIS_KEY_PREFIX: t.prefix, FETCH_INTERVAL_MS: '1000', TICKER_RATE_LIMIT_PER_MIN: '250', TICKER_FETCH: 'pair', TICKER_RATE_GROUP: 'node-7' });
      const worker = createWorker({ config, logger, redis });
      try {
        await worker.start();
        await waitFor('a poll', () => sim.countRequests('GRP-USD') >= 1, { timeoutMs: 10_000 });
        expect(await redis.exists(t.keys.rateBudget('node-7'))).toBe(1);
      } finally {
        await worker.stop();
        await sim.close();
      }
    });
  });

  describe('a worker waiting for its slot', () => {
    it('stops waiting when the worker stops', async () => {
      const own = createRateBudget({ redis, keys: t.keys, group: 'abort-test', limit: 1, windowMs: 60_000, logger });
      expect(await own.acquire(new AbortController().signal)).toMatchObject({ mode: 'shared', waitedMs: expect.any(Number) });
      const abort = new AbortController();
      const waiting = own.acquire(abort.signal);
      setTimeout(() => abort.abort(), 50);
      expect(await waiting).toMatchObject({ aborted: true });
    });
  });
});
