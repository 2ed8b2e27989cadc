import { readBotStatus } from '../shared/contract/fleet-status';
import { createLogger } from '../shared/platform/logger';
import { closeRedis, createRedis, type Redis } from '../shared/platform/redis';
import { createTickerSimulator, type TickerSimulator } from '../sim/simulator';
import { startService } from '../test/helpers/process';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { waitFor } from '../test/helpers/wait';
import { describeAlert, readAlertStream, workerConfig } from '../test/helpers/worker-streams';
import { createWorker, type Worker } from './worker';

/** The alert rules in a running worker: real simulator, real Redis. The rule maths itself is in rules.test.ts. */

const logger = createLogger({ name: 'test', level: 'silent' });

describe('a worker with alert rules', () => {
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

  const env = (pair: string, extra: Record<string, string> = {}) => ({
    PAIR: pair,
    TICKER_BASE_URL: sim.url,
    REDIS_URL: t.url,
    REDIS_KEY_PREFIX: t.prefix,
    FETCH_INTERVAL_MS: '100',
    OSCILLATION_PERCENT: '0.5',
    TICKER_RATE_LIMIT_PER_MIN: '0',
    // Each test scripts its own pair: every bot fetches its own endpoint.
    TICKER_FETCH: 'pair',
    ...extra,
  });
  // Every step is a move of at least 0.5 % from the one before: without a limit, each would alert.
  const climbing = ['100', '101', '102', '103', '104', '105', '106'];

  describe('MAX_ALERTS=1 (real worker processes)', () => {
    it('publishes once, says exhausted and why, and still publishes nothing after a restart', async () => {
      const pair = 'ONCE-USD';
      sim.setScript(pair, climbing);
      const first = startService('worker/main.ts', env(pair, { MAX_ALERTS: '1' }));
      try {
        await first.waitForOutput('worker started');
        await waitFor('the bot exhausted', async () => (await readBotStatus(t.redis, t.keys, pair))?.status === 'exhausted');
      } finally {
        expect(await first.stop()).toBe(0);
      }
      expect((await readAlertStream(t.redis, t.keys, pair)).map(describeAlert)).toEqual(['up 101 vs 100']);
      expect(await readBotStatus(t.redis, t.keys, pair)).toMatchObject({ status: 'exhausted', statusReason: 'published 1 of max_alerts 1', config: { maxAlerts: 1 } });

      // The same climb again: a worker that forgot the count would alert on 101.
      sim.setScript(pair, climbing);
      const requestsBefore = sim.countRequests(pair);
      const second = startService('worker/main.ts', env(pair, { MAX_ALERTS: '1' }));
      try {
        await second.waitForOutput('rule state restored');
        await second.waitForOutput('worker started');
        const startedAt = Date.now();
        // Heartbeats of the new process only (its startedAt is after the first one's stop), for a few intervals.
        await waitFor('five intervals of the second run', async () => {
          const s = await readBotStatus(t.redis, t.keys, pair);
          return s !== null && Date.parse(s.heartbeatAt) > startedAt + 500;
        });
        expect(await readBotStatus(t.redis, t.keys, pair)).toMatchObject({ status: 'exhausted', alertsPublished: 0 });
      } finally {
        expect(await second.stop()).toBe(0);
      }
      expect((await readAlertStream(t.redis, t.keys, pair)).map(describeAlert)).toEqual(['up 101 vs 100']);
      // Done means done: the restarted bot sends the ticker nothing.
      expect(sim.countRequests(pair)).toBe(requestsBefore);
      expect(await t.redis.hget(t.keys.ruleState(pair, pair), 'published')).toBe('1');
    }, 60_000);
  });

  describe('in process', () => {
    let redis: Redis;
    let worker: Worker | undefined;
    beforeAll(() => {
      redis = createRedis(t.url, logger, { name: 'test-rules', failFast: true });
    });
    afterEach(async () => {
      await worker?.stop();
      worker = undefined;
    });
    afterAll(async () => {
      await closeRedis(redis);
    });
    const start = (pair: string, extra: Record<string, string>) => {
      worker = createWorker({ config: workerConfig({ ...env(pair), ...extra }), logger, redis });
      return worker.start();
    };

    it('a count Redis has but the worker never read is still honoured: the publish script refuses the alert', async () => {
      const pair = 'GUARD-USD';
      sim.setScript(pair, ['100']);
      await start(pair, { MAX_ALERTS: '1' });
      await waitFor('the reference set', async () => (await readBotStatus(t.redis, t.keys, pair))?.referencePrice === '100');
      // Another run of this bot published its one alert meanwhile (e.g. a worker that held it before a handover).
      await t.redis.hset(t.keys.ruleState(pair, pair), 'published', '1');
      sim.setScript(pair, ['102']);
      await waitFor('the bot exhausted', async () => (await readBotStatus(t.redis, t.keys, pair))?.status === 'exhausted');
      expect(await readAlertStream(t.redis, t.keys, pair)).toEqual([]);
      expect(worker!.status()).toMatchObject({ alertsPublished: 0, alertsDropped: 0 });
    });

    it('COOLDOWN_MS: one alert per direction, the repeats counted as suppressed in the status', async () => {
      const pair = 'COOL-USD';
      sim.setScript(pair, climbing);
      await start(pair, { COOLDOWN_MS: '600000' });
      await waitFor('the climb served', () => sim.countRequests(pair, 200) >= climbing.length + 2);
      // 102 to 106, then every repeat of 106: each would have alerted, each is counted.
      await waitFor('the suppressed alerts reported', async () => ((await readBotStatus(t.redis, t.keys, pair))?.alertsSuppressed ?? 0) >= climbing.length - 2);
      expect((await readAlertStream(t.redis, t.keys, pair)).map(describeAlert)).toEqual(['up 101 vs 100']);
      // last-alert mode: the reference moves only with the published alert.
      expect(await readBotStatus(t.redis, t.keys, pair)).toMatchObject({ status: 'ok', referencePrice: '101', config: { cooldownMs: 600000 } });
      expect(await t.redis.hget(t.keys.ruleState(pair, pair), 'lastUp')).toMatch(/^\d{13}$/);
    });

    it('RULE=window with PENDING_POLLS: alerts on a slow climb once it held for two polls, against the window low', async () => {
      const pair = 'WIN-USD';
      // No step moves 0.5 %; 100.6 is 0.6 % above the window's low 100 (poll 1 of 2), 100.7 holds it (poll 2): that one alerts.
      sim.setScript(pair, ['100', '100.2', '100.4', '100.6', '100.7', '100.7']);
      await start(pair, { RULE: 'window', WINDOW_MS: '60000', PENDING_POLLS: '2', REFERENCE_MODE: 'first' });
      await waitFor('the script served', () => sim.countRequests(pair, 200) >= 8);
      await waitFor('the alert', async () => (await readAlertStream(t.redis, t.keys, pair)).length >= 1);
      const alerts = await readAlertStream(t.redis, t.keys, pair);
      expect(alerts.map(describeAlert)).toEqual(['up 100.7 vs 100']);
      expect(alerts[0]).toMatchObject({ changePercent: '0.700000000000000000', config: { rule: 'window', windowMs: 60000, pendingPolls: 2 } });
    });

    it('EXPIRES_AT in the past: no request, status expired with the time', async () => {
      const pair = 'LATE-USD';
      sim.setScript(pair, climbing);
      await start(pair, { EXPIRES_AT: '2020-01-01T00:00:00+01:00' });
      await waitFor('the bot expired', async () => (await readBotStatus(t.redis, t.keys, pair))?.status === 'expired');
      expect(await readBotStatus(t.redis, t.keys, pair)).toMatchObject({ statusReason: 'expires_at 2019-12-31T23:00:00.000Z has passed' });
      expect(sim.countRequests(pair)).toBe(0);
    });
  });
});
