import type { AlertMessage } from '../shared/contract/alert';
import { readBotStatus } from '../shared/contract/fleet-status';
import { createLogger } from '../shared/platform/logger';
import { closeRedis, createRedis, type Redis } from '../shared/platform/redis';
import { createTickerSimulator, type TickerSimulator } from '../sim/simulator';
import type { ScriptStep } from '../sim/script';
import { startService } from '../test/helpers/process';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { waitFor } from '../test/helpers/wait';
import { describeAlert, readAlertStream, subscribeAlerts, workerConfig } from '../test/helpers/worker-streams';
import { createWorker, type Worker } from './worker';

const logger = createLogger({ name: 'test', level: 'silent' });

describe('worker', () => {
  let sim: TickerSimulator;
  let t: TestRedis;
  beforeAll(async () => {
    t = await createTestRedis();
    sim = await createTickerSimulator({ pairs: {}, rateLimit: 0, volatilityPercent: '0' });
  });
  afterAll(async () => {
    await sim?.close();
    await t?.cleanup();
  });

  const processEnv = (pair: string, extra: Record<string, string> = {}) => ({
    PAIR: pair,
    TICKER_BASE_URL: sim.url,
    REDIS_URL: t.url,
    REDIS_KEY_PREFIX: t.prefix,
    FETCH_INTERVAL_MS: '100',
    OSCILLATION_PERCENT: '0.01',
    TICKER_RATE_LIMIT_PER_MIN: '0',
    // These tests script and count each pair's own requests (shared lists: worker/shared-list.test.ts).
    TICKER_FETCH: 'pair',
    ...extra,
  });

  describe('given a scripted price series (real worker processes)', () => {
    // 100 -> 100.01 is exactly 0.01 %: alerts. 100.01 -> 100.02 is 0.00999.. %: quiet in last-alert mode.
    const series = ['100', '100.005', '100.01', '100.02', '100.01', '99.99', '99.98'];
    const cases = [
      { mode: 'last-alert', pair: 'LAST-USD', steps: [...series, '99.985'], expected: ['up 100.01 vs 100', 'down 99.99 vs 100.01', 'down 99.98 vs 99.99'] },
      { mode: 'first', pair: 'FIRST-USD', steps: [...series, '100.009'], expected: ['up 100.01 vs 100', 'up 100.02 vs 100', 'up 100.01 vs 100', 'down 99.99 vs 100', 'down 99.98 vs 100'] },
    ];
    const results = new Map<string, { stream: AlertMessage[]; channel: AlertMessage[]; exitCode: number | string; pairRegistered: number }>();

    beforeAll(async () => {
      // Both modes run side by side (one process each) to keep the suite fast.
      await Promise.all(
        cases.map(async ({ mode, pair, steps, expected }) => {
          sim.setScript(pair, steps);
          const channel = await subscribeAlerts(t.url, t.keys, pair);
          const worker = startService('worker/main.ts', processEnv(pair, { REFERENCE_MODE: mode }));
          try {
            await worker.waitForOutput('worker started');
            // Served once the worker has asked for every step and a few more ticks (the last price is repeated).
            await waitFor('the script to be served', () => sim.countRequests(pair, 200) >= steps.length + 3, { timeoutMs: 20_000 });
            await waitFor('the stream to hold the alerts', async () => (await readAlertStream(t.redis, t.keys, pair)).length >= expected.length);
          } finally {
            const exitCode = await worker.stop();
            await channel.close();
            results.set(mode, {
              stream: await readAlertStream(t.redis, t.keys, pair),
              channel: channel.alerts,
              exitCode,
              pairRegistered: await t.redis.sismember(t.keys.pairsSet, pair),
            });
          }
        }),
      );
    }, 45_000);

    it.each(cases)('in $mode mode publishes exactly the expected alerts, in order, on the channel and in the stream', ({ mode, pair, expected }) => {
      const r = results.get(mode)!;
      expect(r.stream.map(describeAlert)).toEqual(expected);
      expect(r.channel.map((a) => a.id)).toEqual(r.stream.map((a) => a.id));
      expect(r.stream[0]).toMatchObject({ version: 1, botId: pair, pair, thresholdPercent: '0.01', changePercent: '0.010000000000000000', config: { referenceMode: mode, intervalMs: 100 } });
      expect(r.pairRegistered).toBe(1);
      expect(r.exitCode).toBe(0);
    });
  });

  describe('on SIGTERM (a real worker process)', () => {
    it('waits for the request in flight, publishes its alert, and exits 0', async () => {
      const pair = 'TERM-USD';
      sim.setScript(pair, ['100']);
      const worker = startService('worker/main.ts', processEnv(pair, { FETCH_INTERVAL_MS: '500' }));
      try {
        await waitFor('the first request', () => sim.countRequests(pair, 200) >= 1);
        sim.setScript(pair, ['101']);
        sim.injectFault({ fault: 'latency', ms: 1200 }, { pair });
        await waitFor('a request in flight', () => sim.pending > 0);
        worker.child.kill('SIGTERM');
        expect(await worker.exited).toBe(0);
        expect((await readAlertStream(t.redis, t.keys, pair)).map(describeAlert)).toEqual(['up 101 vs 100']);
        expect(worker.output()).toMatch(/"published":1,"dropped":0,"queued":0,"msg":"worker stopped"/);
        expect((await readBotStatus(t.redis, t.keys, pair))?.status).toBe('stopped');
      } finally {
        await worker.stop();
      }
    });
  });

  describe('against every kind of bad answer (in process)', () => {
    let redis: Redis;
    let worker: Worker | undefined;
    beforeAll(() => {
      redis = createRedis(t.url, logger, { name: 'test-worker', failFast: true });
    });
    afterEach(async () => {
      await worker?.stop();
      worker = undefined;
    });
    afterAll(async () => {
      await closeRedis(redis);
    });

    const start = (pair: string, extra: Record<string, string> = {}, deps: Partial<Parameters<typeof createWorker>[0]> = {}) => {
      const config = workerConfig({ ...processEnv(pair), TICKER_TIMEOUT_MS: '200', ...extra });
      worker = createWorker({ config, logger, redis, ...deps });
      return worker.start();
    };

    it('heartbeats its status and records every valid price in the tick stream', async () => {
      const pair = 'TICK-USD';
      sim.setPrice(pair, '42.5', '42.4');
      await start(pair, { PRICE_FIELD: 'mid', BOT_ID: 'tick-bot' });
      await waitFor('three ticks', async () => (await t.redis.xlen(t.keys.ticks(pair))) >= 3);
      const [[, fields]] = (await t.redis.xrange(t.keys.ticks(pair), '-', '+', 'COUNT', 1)) as [[string, string[]]];
      const tick = Object.fromEntries(fields.map((v, i) => (i % 2 === 0 ? [v, fields[i + 1]] : [])).filter((e) => e.length));
      expect(tick).toEqual({ price: '42.45', ask: '42.5', bid: '42.4', at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), botId: 'tick-bot' });
      const status = await readBotStatus(t.redis, t.keys, 'tick-bot');
      expect(status).toMatchObject({
        botId: 'tick-bot',
        pair,
        status: 'ok',
        stale: false,
        lastPrice: '42.45',
        referencePrice: '42.45',
        consecutiveErrors: 0,
        ttlMs: 15_000,
        rateLimited: false,
        alertsDropped: 0,
        config: { botId: 'tick-bot', pair, priceField: 'mid', intervalMs: 100 },
      });
      expect(await t.redis.pttl(t.keys.botStatus('tick-bot'))).toBeGreaterThan(10_000);
      expect(await t.redis.sismember(t.keys.pairsSet, pair)).toBe(1);
    });

    it('raises no false alert, keeps the reference, and recovers to ok', async () => {
      const pair = 'FAULT-USD';
      const faults: ScriptStep[] = (
        ['server-error', 'malformed', 'zero', 'negative', 'non-numeric', 'missing-field', 'exponent', 'array-body', 'reset', 'hang'] as const
      ).flatMap((fault) => [{ fault }, '100.005']);
      sim.setScript(pair, ['100', { fault: 'latency', ms: 150 }, ...faults, { fault: 'server-error', status: 503 }, '100.009']);
      await start(pair);
      await waitFor('the script to be served', () => sim.countRequests(pair) >= faults.length + 5, { timeoutMs: 20_000 });
      await waitFor('a healthy heartbeat', async () => (await readBotStatus(t.redis, t.keys, pair))?.status === 'ok');
      expect(await readAlertStream(t.redis, t.keys, pair)).toEqual([]);
      const status = await readBotStatus(t.redis, t.keys, pair);
      expect(status).toMatchObject({ referencePrice: '100', lastPrice: '100.009', consecutiveErrors: 0, alertsPublished: 0 });
      expect(sim.requestLog.filter((e) => e.path.endsWith(pair) && e.fault).map((e) => e.fault)).toEqual(
        expect.arrayContaining(['server-error', 'malformed', 'zero', 'negative', 'non-numeric', 'missing-field', 'exponent', 'array-body', 'reset', 'hang']),
      );
    });

    it('reports degraded, then unhealthy, after repeated failures, with the last error', async () => {
      const pair = 'DOWN-USD';
      sim.setScript(pair, ['100', ...Array.from({ length: 6 }, () => ({ fault: 'server-error' as const, status: 502 })), '100']);
      await start(pair, {}, { unhealthyAfter: 3, maxBackoffMs: 200 });
      await waitFor('degraded', async () => (await readBotStatus(t.redis, t.keys, pair))?.status === 'degraded');
      await waitFor('unhealthy', async () => (await readBotStatus(t.redis, t.keys, pair))?.status === 'unhealthy');
      expect(await readBotStatus(t.redis, t.keys, pair)).toMatchObject({ lastError: expect.stringMatching(/502 bad_gateway/) });
      await waitFor('recovery', async () => (await readBotStatus(t.redis, t.keys, pair))?.status === 'ok', { timeoutMs: 10_000 });
    });

    it('logs a run of failures once per backoff step, not once per request', async () => {
      const pair = 'LOGS-USD';
      const lines: { level: number; msg: string; consecutiveErrors?: number }[] = [];
      const captured = createLogger({ name: 'test', level: 'info', destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });
      sim.setScript(pair, ['100', ...Array.from({ length: 40 }, () => ({ fault: 'server-error' as const }))]);
      // Backoff 100 ms x 2^n, capped at 400 ms: steps 1 (200 ms), 2 (400 ms), then the cap.
      await start(pair, {}, { logger: captured, maxBackoffMs: 400, unhealthyAfter: 4 });
      await waitFor('a dozen failed requests', () => sim.countRequests(pair, 500) >= 12, { timeoutMs: 15_000 });
      const failures = lines.filter((l) => l.level >= 40 && /ticker/.test(l.msg));
      expect(failures.map((l) => [l.consecutiveErrors, l.msg])).toEqual([
        [1, 'ticker request failed; backing off'],
        [2, 'ticker request failed; backoff at its maximum (repeats logged at debug)'],
        [4, 'ticker keeps failing: bot unhealthy'],
      ]);
    });

    it('marks an unknown pair invalid-pair and retries it slowly instead of crash-looping', async () => {
      const pair = 'NOPE-USD';
      await start(pair, {}, { invalidPairRetryMs: 700 });
      await waitFor('invalid-pair', async () => (await readBotStatus(t.redis, t.keys, pair))?.status === 'invalid-pair');
      const first = sim.requestLog.filter((e) => e.path.endsWith(pair));
      await waitFor('a retry', () => sim.requestLog.filter((e) => e.path.endsWith(pair)).length >= 2, { timeoutMs: 3000 });
      const [a, b] = sim.requestLog.filter((e) => e.path.endsWith(pair));
      expect(first.length).toBe(1);
      expect(b!.at - a!.at).toBeGreaterThanOrEqual(690);
      expect(await readBotStatus(t.redis, t.keys, pair)).toMatchObject({ lastError: expect.stringMatching(/does not know pair NOPE-USD/) });
      // The pair appears: the bot recovers by itself.
      sim.setPrice(pair, '5');
      await waitFor('ok again', async () => (await readBotStatus(t.redis, t.keys, pair))?.status === 'ok', { timeoutMs: 5000 });
    });

    it('waits at least Retry-After (2 s) after a 429 before the next request', async () => {
      const pair = 'SLOW-USD';
      sim.setScript(pair, ['100', '100', { fault: 'rate-limit', retryAfterSeconds: 2 }, '100']);
      await start(pair);
      await waitFor('the request after the 429', () => {
        const log = sim.requestLog.filter((e) => e.path.endsWith(pair));
        const i = log.findIndex((e) => e.status === 429);
        return i >= 0 && log.length > i + 1;
      }, { timeoutMs: 8000 });
      const log = sim.requestLog.filter((e) => e.path.endsWith(pair));
      const i = log.findIndex((e) => e.status === 429);
      expect(log[i + 1]!.at - log[i]!.at).toBeGreaterThanOrEqual(2000);
      expect(await readAlertStream(t.redis, t.keys, pair)).toEqual([]);
    });
  });

  describe('npm run worker:health', () => {
    const health = async (env: Record<string, string>) => {
      const proc = startService('worker/health.ts', { REDIS_URL: t.url, REDIS_KEY_PREFIX: t.prefix, ...env }, [], { baseEnv: {} });
      const status = await proc.exited;
      return { status: Number(status), stdout: proc.output() };
    };

    it('exits 0 while the bot reports ok, and non-zero once it stopped or never reported', async () => {
      const redis = createRedis(t.url, logger, { name: 'test-health', failFast: true });
      const pair = 'HEALTH-USD';
      sim.setPrice(pair, '10');
      const worker = createWorker({ config: workerConfig(processEnv(pair, { BOT_ID: 'health-bot' })), logger, redis });
      try {
        await worker.start();
        await waitFor('a heartbeat', async () => (await readBotStatus(t.redis, t.keys, 'health-bot'))?.status === 'ok');
        const ok = await health({ PAIR: pair, BOT_ID: 'health-bot' });
        expect(ok.stdout).toMatch(/healthy: bot health-bot is ok/);
        expect(ok.status).toBe(0);
      } finally {
        await worker.stop();
        await closeRedis(redis);
      }
      const [stopped, never] = await Promise.all([health({ PAIR: pair, BOT_ID: 'health-bot' }), health({ PAIR: 'NEVER-USD' })]);
      expect(stopped.status).toBe(1);
      expect(stopped.stdout).toMatch(/health-bot is stopped/);
      expect(never.status).toBe(1);
      expect(never.stdout).toMatch(/NEVER-USD has never reported/);
    });
  });
});
