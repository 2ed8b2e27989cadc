import { readBotStatus } from '../shared/contract/fleet-status';
import { createTickerSimulator, type RequestLogEntry, type TickerSimulator } from '../sim/simulator';
import { startService, type ServiceProcess } from '../test/helpers/process';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { waitFor } from '../test/helpers/wait';
import { describeAlert, readAlertStream } from '../test/helpers/worker-streams';

/**
 * Real worker processes sharing one list request per quote currency (TICKER_FETCH=auto) against the simulator:
 * A-USD, B-USD on the USD list, C-EUR, D-EUR on the EUR list, and E-USD, which the USD list leaves out.
 */
const INTERVAL_MS = 1000;
const SHARED = ['A-USD', 'B-USD', 'C-EUR', 'D-EUR'];
const MISSING = 'E-USD';
const ALL = [...SHARED, MISSING];

describe('workers sharing one list per quote currency (TICKER_FETCH=auto, real processes)', () => {
  let sim: TickerSimulator;
  let t: TestRedis;
  const workers: ServiceProcess[] = [];
  const ticks = (pair: string) => t.redis.xlen(t.keys.ticks(pair));
  const since = (mark: number, filter: (e: RequestLogEntry) => boolean = () => true) => sim.requestLog.slice(mark).filter(filter);
  /** Waits until every bot has ticked `n` more times than now. */
  const moreTicks = async (n: number) => {
    const start = await Promise.all(ALL.map(ticks));
    await waitFor(`${n} more ticks of every bot`, async () => (await Promise.all(ALL.map(ticks))).every((c, i) => c >= start[i]! + n), { timeoutMs: 20_000 });
  };
  const alerts = async (pair: string) => (await readAlertStream(t.redis, t.keys, pair)).map(describeAlert);

  beforeAll(async () => {
    t = await createTestRedis();
    sim = await createTickerSimulator({ pairs: Object.fromEntries(ALL.map((p) => [p, '100'])), volatilityPercent: '0', rateLimit: 250, omitFromLists: ['EUSD'] });
    for (const pair of ALL) sim.setPrice(pair, '100');
    for (const pair of ALL) {
      workers.push(
        startService('worker/main.ts', {
          PAIR: pair,
          WORKER_ID: `w-${pair}`,
          TICKER_BASE_URL: sim.url,
          REDIS_URL: t.url,
          REDIS_KEY_PREFIX: t.prefix,
          FETCH_INTERVAL_MS: String(INTERVAL_MS),
          OSCILLATION_PERCENT: '1',
          TICKER_FETCH: 'auto',
        }),
      );
    }
    await Promise.all(workers.map((w) => w.waitForOutput('worker started', 30_000)));
    // Sharing starts once a second bot of the currency has registered as a reader (the first tick of each).
    await waitFor(
      'every shared bot to read its list',
      async () => (await Promise.all(SHARED.map((p) => readBotStatus(t.redis, t.keys, p)))).every((s) => s?.fetch === `list:${s?.pair.split('-')[1]}`),
      { timeoutMs: 30_000 },
    );
  }, 60_000);
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await sim?.close();
    await t?.cleanup();
  });

  it('sends one list request per quote currency per interval, and no pair request for a listed pair', async () => {
    const mark = sim.requestLog.length;
    const startedAt = Date.now();
    await moreTicks(6);
    const elapsedIntervals = (Date.now() - startedAt) / INTERVAL_MS;
    const lists = (currency: string) => since(mark, (e) => e.kind === 'list' && e.path.endsWith(`/${currency}`)).length;
    // Four bots at one interval: per-pair fetching would send 2 requests per currency per interval.
    // Each of the two bots of a currency ticked at least 6 times, reading a price younger than its interval every time.
    for (const currency of ['USD', 'EUR']) {
      expect(lists(currency)).toBeLessThanOrEqual(Math.ceil(elapsedIntervals) + 1);
      expect(lists(currency)).toBeGreaterThanOrEqual(3);
    }
    expect(since(mark, (e) => e.kind === 'pair' && SHARED.some((p) => e.path.endsWith(`/${p}`)))).toEqual([]);
    for (const pair of SHARED) {
      const status = await readBotStatus(t.redis, t.keys, pair);
      expect(status).toMatchObject({ status: 'ok', fetch: `list:${pair.split('-')[1]}`, lastPrice: '100' });
      // Never older than the reader's interval.
      expect(status!.priceAgeMs).toBeLessThan(INTERVAL_MS);
    }
  });

  it('fetches a pair missing from its list with its own endpoint', async () => {
    const mark = sim.requestLog.length;
    await moreTicks(3);
    expect(since(mark, (e) => e.kind === 'pair' && e.path.endsWith(`/${MISSING}`)).length).toBeGreaterThanOrEqual(3);
    expect(await readBotStatus(t.redis, t.keys, MISSING)).toMatchObject({ status: 'ok', fetch: 'pair', priceAgeMs: 0 });
  });

  it('alerts exactly on scripted list prices, and on the missing pair from its own endpoint', async () => {
    // Threshold 1 %: exactly 1 % alerts, 0.99 % does not; last-alert mode moves the reference to each alert.
    sim.setPrice('A-USD', '101');
    sim.setPrice('B-USD', '99.01');
    sim.setPrice('C-EUR', '98.99');
    sim.setPrice('D-EUR', '100.5');
    sim.setPrice(MISSING, '102');
    await moreTicks(2);
    sim.setPrice('A-USD', '99.99');
    sim.setPrice('B-USD', '98');
    sim.setPrice('D-EUR', '101');
    sim.setPrice(MISSING, '100.98');
    await moreTicks(3);
    expect(await alerts('A-USD')).toEqual(['up 101 vs 100', 'down 99.99 vs 101']);
    expect(await alerts('B-USD')).toEqual(['down 98 vs 100']);
    expect(await alerts('C-EUR')).toEqual(['down 98.99 vs 100']);
    expect(await alerts('D-EUR')).toEqual(['up 101 vs 100']);
    expect(await alerts(MISSING)).toEqual(['up 102 vs 100', 'down 100.98 vs 102']);
    const [alert] = await readAlertStream(t.redis, t.keys, 'A-USD');
    // observedAt is when the list was fetched: a list request the simulator logged at that instant.
    expect(sim.requestLog.some((e) => e.kind === 'list' && e.path.endsWith('/USD') && Math.abs(e.at - Date.parse(alert!.observedAt)) < 50)).toBe(true);
  });

  it('makes no alert when the list answers 500, bad JSON or bad prices, and recovers', async () => {
    const before = await Promise.all(ALL.map(alerts));
    const mark = sim.requestLog.length;
    sim.injectFault({ fault: 'server-error' }, { pair: 'USD', times: 2 });
    sim.injectFault('malformed', { pair: 'USD', times: 2 });
    sim.injectFault('zero', { pair: 'EUR', times: 2 });
    sim.injectFault('malformed', { pair: 'EUR', times: 2 });
    await waitFor('the faulted list answers', () => since(mark, (e) => e.kind === 'list' && e.fault !== undefined).length >= 8, { timeoutMs: 30_000 });
    await moreTicks(2);
    expect(await Promise.all(ALL.map(alerts))).toEqual(before);
    for (const pair of SHARED) expect(await readBotStatus(t.redis, t.keys, pair)).toMatchObject({ status: 'ok', lastPrice: expect.any(String) });
  });

  it('pauses every worker for Retry-After when the list answers 429', async () => {
    const mark = sim.requestLog.length;
    sim.injectFault({ fault: 'rate-limit', retryAfterSeconds: 3 }, { pair: 'USD' });
    const limited = await waitFor('the 429 on the list', () => since(mark).find((e) => e.kind === 'list' && e.status === 429), { timeoutMs: 10_000 });
    await waitFor('requests after the pause', () => since(mark).filter((e) => e.at > limited.at + 3000).length >= 3, { timeoutMs: 15_000 });
    // Requests already on their way when the 429 arrived may land just after it; none is sent during the pause.
    const during = since(mark).filter((e) => e.at > limited.at + 200 && e.at < limited.at + 2900);
    expect(during).toEqual([]);
    await moreTicks(2);
  });
});

describe('TICKER_FETCH=pair (real processes)', () => {
  it('keeps one pair request per bot and never asks for a list', async () => {
    const t = await createTestRedis();
    const sim = await createTickerSimulator({ pairs: { 'A-USD': '100', 'B-USD': '100' }, volatilityPercent: '0', rateLimit: 0 });
    const env = (pair: string) => ({ PAIR: pair, TICKER_BASE_URL: sim.url, REDIS_URL: t.url, REDIS_KEY_PREFIX: t.prefix, FETCH_INTERVAL_MS: '300', TICKER_FETCH: 'pair' });
    const pair = [startService('worker/main.ts', env('A-USD')), startService('worker/main.ts', env('B-USD'))];
    try {
      await waitFor('8 requests of each pair', () => sim.countRequests('A-USD', 200) >= 8 && sim.countRequests('B-USD', 200) >= 8, { timeoutMs: 30_000 });
      expect(sim.requestLog.filter((e) => e.kind === 'list')).toEqual([]);
      expect(await readBotStatus(t.redis, t.keys, 'A-USD')).toMatchObject({ fetch: 'pair', priceAgeMs: 0 });
    } finally {
      await Promise.all(pair.map((w) => w.stop()));
      await sim.close();
      await t.cleanup();
    }
  }, 45_000);
});
