import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { readBotHolder, serializeDesiredBot, type DesiredBot } from '../shared/contract/bots';
import { readBotStatus } from '../shared/contract/fleet-status';
import { createTickerSimulator, type TickerSimulator } from '../sim/simulator';
import { REPO_ROOT, startService, type ServiceProcess } from '../test/helpers/process';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { waitFor } from '../test/helpers/wait';
import { describeAlert, readAlertStream } from '../test/helpers/worker-streams';

/**
 * Generic workers (no PAIR) as real processes against the real Redis and the simulator. The test plays the master: it
 * writes the desired-bot mirror and publishes the change nudge, exactly as the master's reconcile does.
 */

const bot = (botId: string, pair: string, over: Partial<DesiredBot> = {}): DesiredBot => ({
  botId,
  pair,
  intervalMs: 200,
  thresholdPercent: '1',
  priceField: 'ask',
  referenceMode: 'last-alert',
  enabled: true,
  version: 1,
  ...over,
});

const UA = (workerId: string) => `tickwatch-worker/${workerId}`;

/** Collapses runs of one value: ['a','a','b'] -> ['a','b']. */
const runs = <T>(values: readonly T[]): T[] => values.filter((v, i) => i === 0 || values[i - 1] !== v);

function context() {
  const c = {} as { t: TestRedis; sim: TickerSimulator; workers: ServiceProcess[] };
  beforeAll(async () => {
    c.t = await createTestRedis();
    c.sim = await createTickerSimulator({ pairs: {}, rateLimit: 0, volatilityPercent: '0' });
    c.workers = [];
  });
  afterAll(async () => {
    await Promise.all((c.workers ?? []).map((w) => w.stop('SIGKILL')));
    await c.sim?.close();
    await c.t?.cleanup();
  });
  const desire = async (b: DesiredBot) => {
    await c.t.redis.hset(c.t.keys.desiredBots, b.botId, serializeDesiredBot(b));
    await c.t.redis.publish(c.t.keys.botsChangedChannel, b.botId);
  };
  const forget = async (botId: string) => {
    await c.t.redis.hdel(c.t.keys.desiredBots, botId);
    await c.t.redis.publish(c.t.keys.botsChangedChannel, botId);
  };
  const start = (workerId: string, extra: Record<string, string> = {}) => {
    const w = startService('worker/main.ts', {
      WORKER_ID: workerId,
      TICKER_BASE_URL: c.sim.url,
      REDIS_URL: c.t.url,
      REDIS_KEY_PREFIX: c.t.prefix,
      TICKER_RATE_LIMIT_PER_MIN: '0',
      // These tests read each bot's own requests in the simulator's log (shared lists: worker/shared-list.test.ts).
      TICKER_FETCH: 'pair',
      ...extra,
    });
    c.workers.push(w);
    return w;
  };
  const requests = (pair: string) => c.sim.requestLog.filter((e) => e.path.endsWith(`/${pair}`));
  const agents = (pair: string) => requests(pair).map((e) => e.userAgent);
  const workerState = async (workerId: string) => {
    const raw = await c.t.redis.get(c.t.keys.workerHeartbeat(workerId));
    return raw ? (JSON.parse(raw) as { state: string; botId?: string }) : null;
  };
  return { c, desire, forget, start, requests, agents, workerState };
}

describe('generic workers claiming runtime bots', () => {
  const { c, desire, start, agents, workerState } = context();

  it('an idle worker claims a bot written into the mirror and polls it, reporting who holds it', async () => {
    c.sim.setPrice('ONE-USD', '100');
    const w1 = start('w1');
    await w1.waitForOutput('generic worker started');
    await waitFor('w1 to report idle', async () => (await workerState('w1'))?.state === 'idle');
    await desire(bot('one', 'ONE-USD'));
    await waitFor('w1 to poll ONE-USD', () => agents('ONE-USD').filter((a) => a === UA('w1')).length >= 3);
    const holder = await readBotHolder(c.t.redis, c.t.keys, 'one', 'ONE-USD');
    expect(holder).toMatchObject({ workerId: 'w1', generation: 1 });
    expect(await workerState('w1')).toMatchObject({ state: 'holding', botId: 'one' });
    const status = await waitFor('a heartbeat', () => readBotStatus(c.t.redis, c.t.keys, 'one'));
    expect(status).toMatchObject({ botId: 'one', pair: 'ONE-USD', status: 'ok', workerId: 'w1', source: 'api', botVersion: 1, leaseGeneration: 1, referencePrice: '100' });
  }, 30_000);

  it('with two bots and three workers, each bot has one worker and the third idles', async () => {
    c.sim.setPrice('TWO-USD', '50');
    start('w2');
    start('w3');
    await desire(bot('two', 'TWO-USD'));
    await waitFor('both bots polled', () => agents('TWO-USD').length >= 3 && agents('ONE-USD').length >= 3, { timeoutMs: 20_000 });
    const [h1, h2] = await Promise.all([readBotHolder(c.t.redis, c.t.keys, 'one', 'ONE-USD'), readBotHolder(c.t.redis, c.t.keys, 'two', 'TWO-USD')]);
    expect(h1!.workerId).toBe('w1');
    expect(h2!.workerId).not.toBe('w1');
    const idle = h2!.workerId === 'w2' ? 'w3' : 'w2';
    await waitFor(`${idle} to report idle`, async () => (await workerState(idle))?.state === 'idle');
    // Every request of one pair came from one worker.
    expect(runs(agents('ONE-USD'))).toEqual([UA('w1')]);
    expect(runs(agents('TWO-USD'))).toEqual([UA(h2!.workerId)]);
    expect(agents('ONE-USD').concat(agents('TWO-USD'))).not.toContain(UA(idle));
  }, 30_000);

  it('npm run worker:health answers healthy for a live generic worker, idle or holding, and unhealthy for an unknown one', async () => {
    const unnamed = start('', { WORKER_ID: '' });
    await waitFor('the unnamed worker to report', async () => (await c.t.redis.exists(c.t.keys.workerHeartbeat(`${os.hostname()}-${unnamed.pid}`))) === 1, { timeoutMs: 20_000 });
    const health = (workerId: string) =>
      new Promise<{ code: number; out: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', path.join(REPO_ROOT, 'worker/health.ts')],
          { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...(workerId ? { WORKER_ID: workerId } : {}), REDIS_URL: c.t.url, REDIS_KEY_PREFIX: c.t.prefix } },
          (err, stdout) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout }),
        );
      });
    const [holding, nobody, thisHost] = await Promise.all([health('w1'), health('w9'), health('')]);
    expect(holding).toEqual({ code: 0, out: 'healthy: worker w1 is holding bot one\n' });
    expect(nobody).toEqual({ code: 1, out: 'unhealthy: worker w9 has no fresh heartbeat\n' });
    // Without WORKER_ID the default id (<hostname>-<pid>) cannot be known: any worker of this host counts.
    expect(thisHost).toEqual({ code: 0, out: `healthy: worker ${os.hostname()}-${unnamed.pid} is idle\n` });
    await unnamed.stop();
    expect(await health('')).toEqual({ code: 1, out: 'unhealthy: no worker of this host has a fresh heartbeat (set WORKER_ID to check one)\n' });
  }, 30_000);
});

describe('live settings of a held bot', () => {
  const { c, desire, start, requests } = context();
  const pair = 'LIVE-USD';
  const status = () => readBotStatus(c.t.redis, c.t.keys, 'live');
  const alerts = () => readAlertStream(c.t.redis, c.t.keys, pair);

  beforeAll(async () => {
    c.sim.setPrice(pair, '100');
    start('live-w');
    start('live-w2');
    await desire(bot('live', pair, { thresholdPercent: '1' }));
    await waitFor('the reference set', async () => (await status())?.referencePrice === '100', { timeoutMs: 20_000 });
  }, 30_000);

  it('a threshold change applies at the next tick and keeps the reference: 0.6 % is quiet under 1 %, alerts under 0.5 %', async () => {
    c.sim.setPrice(pair, '100.6');
    const seen = requests(pair).length;
    await waitFor('three ticks at 100.6', async () => requests(pair).length >= seen + 3 && (await status())?.lastPrice === '100.6');
    expect(await alerts()).toEqual([]);
    await desire(bot('live', pair, { thresholdPercent: '0.5', version: 2 }));
    const [alert] = await waitFor('the alert under the new threshold', async () => {
      const a = await alerts();
      return a.length > 0 ? a : null;
    });
    expect(describeAlert(alert!)).toBe('up 100.6 vs 100');
    expect(alert).toMatchObject({ thresholdPercent: '0.5', config: { thresholdPercent: '0.5', botVersion: 2 } });
    expect(await status()).toMatchObject({ botVersion: 2, config: { thresholdPercent: '0.5', botVersion: 2 } });
  }, 20_000);

  it('a price-field change resets the reference: the first price of the new field is the reference, without an alert', async () => {
    // The bid moves 1.6 % from the ask reference (100.6): no alert while the bot watches the ask.
    c.sim.setPrice(pair, '100.6', '99');
    await desire(bot('live', pair, { thresholdPercent: '0.5', priceField: 'bid', version: 3 }));
    await waitFor('the bid as the new reference', async () => {
      const s = await status();
      return s?.botVersion === 3 && s.referencePrice === '99';
    });
    expect((await alerts()).map(describeAlert)).toEqual(['up 100.6 vs 100']);
    c.sim.setPrice(pair, '100.6', '99.6');
    await waitFor('an alert on the bid', async () => (await alerts()).length === 2);
    expect((await alerts()).map(describeAlert)).toEqual(['up 100.6 vs 100', 'up 99.6 vs 99']);
    expect((await alerts())[1]).toMatchObject({ config: { priceField: 'bid', botVersion: 3 } });
  }, 20_000);

  it('an interval change re-plans the schedule at once: from 20 s to 200 ms without waiting out the 20 s', async () => {
    c.sim.setPrice('SLOW-USD', '5');
    await desire(bot('slow', 'SLOW-USD', { intervalMs: 20_000 }));
    await waitFor('the first poll of the slow bot', () => requests('SLOW-USD').length >= 1, { timeoutMs: 20_000 });
    const slowFrom = requests('SLOW-USD').length;
    await desire(bot('slow', 'SLOW-USD', { intervalMs: 200, version: 2 }));
    // Five requests at 200 ms take a second; at 20 s they would take 100 s.
    await waitFor('five requests at the new interval', () => requests('SLOW-USD').length >= slowFrom + 5, { timeoutMs: 8_000 });
    expect(await readBotStatus(c.t.redis, c.t.keys, 'slow')).toMatchObject({ botVersion: 2, config: { intervalMs: 200 } });
  }, 40_000);

  it("a pair change moves the bot to the new pair under that pair's lease, with a fresh reference", async () => {
    c.sim.setPrice('SLOW2-USD', '7');
    expect(await readBotHolder(c.t.redis, c.t.keys, 'slow', 'SLOW-USD')).not.toBeNull();
    await desire(bot('slow', 'SLOW2-USD', { intervalMs: 200, version: 3 }));
    await waitFor('the new pair polled', async () => {
      const s = await readBotStatus(c.t.redis, c.t.keys, 'slow');
      return s?.pair === 'SLOW2-USD' && s.referencePrice === '7' && s.botVersion === 3;
    });
    const oldCount = requests('SLOW-USD').length;
    await waitFor('three polls of the new pair', () => requests('SLOW2-USD').length >= 3);
    expect(requests('SLOW-USD')).toHaveLength(oldCount);
    // The old pair's lease was released; the new pair's was claimed afresh.
    expect(await readBotHolder(c.t.redis, c.t.keys, 'slow', 'SLOW-USD')).toBeNull();
    expect(await readBotHolder(c.t.redis, c.t.keys, 'slow', 'SLOW2-USD')).toMatchObject({ generation: 1 });
  }, 20_000);
});

describe('pausing and deleting a held bot', () => {
  const { c, desire, forget, start, requests, agents, workerState } = context();
  const interval = 300;

  it('pause: polling stops within 1 interval + 1 s, the lease is released, a stopped heartbeat is written, and the worker claims the next bot', async () => {
    c.sim.setPrice('PA-USD', '10');
    c.sim.setPrice('PB-USD', '20');
    start('pw');
    await desire(bot('pa', 'PA-USD', { intervalMs: interval }));
    await waitFor('pa polled', () => requests('PA-USD').length >= 3, { timeoutMs: 20_000 });
    await desire(bot('pb', 'PB-USD', { intervalMs: interval }));
    const pausedAt = Date.now();
    await desire(bot('pa', 'PA-USD', { intervalMs: interval, enabled: false, version: 2 }));
    await waitFor('pa stopped', async () => (await readBotStatus(c.t.redis, c.t.keys, 'pa'))?.status === 'stopped');
    const stoppedCount = requests('PA-USD').length;
    const last = requests('PA-USD').at(-1)!;
    expect(last.at - pausedAt).toBeLessThanOrEqual(interval + 1000);
    expect(await readBotHolder(c.t.redis, c.t.keys, 'pa', 'PA-USD')).toBeNull();
    // The same worker takes the other bot; by its third poll a paused bot would have been polled again.
    await waitFor('pb polled by pw', () => agents('PB-USD').filter((a) => a === UA('pw')).length >= 3);
    expect(requests('PA-USD')).toHaveLength(stoppedCount);
    expect(await readBotHolder(c.t.redis, c.t.keys, 'pa', 'PA-USD')).toBeNull();
    expect(await workerState('pw')).toMatchObject({ state: 'holding', botId: 'pb' });
  }, 30_000);

  it('delete: polling stops within 1 interval + 1 s, the lease is released and the worker idles', async () => {
    const deletedAt = Date.now();
    await forget('pb');
    await waitFor('pw idle', async () => (await workerState('pw'))?.state === 'idle');
    expect((await readBotStatus(c.t.redis, c.t.keys, 'pb'))?.status).toBe('stopped');
    expect(requests('PB-USD').at(-1)!.at - deletedAt).toBeLessThanOrEqual(interval + 1000);
    expect(await readBotHolder(c.t.redis, c.t.keys, 'pb', 'PB-USD')).toBeNull();
    const count = requests('PB-USD').length;
    // Resuming the first bot: the idle worker claims it, and by its third poll the deleted one would have shown up.
    const resumedFrom = requests('PA-USD').length;
    await desire(bot('pa', 'PA-USD', { intervalMs: interval, version: 3 }));
    await waitFor('pa polled again', () => requests('PA-USD').length >= resumedFrom + 3);
    expect(requests('PB-USD')).toHaveLength(count);
    expect(await readBotHolder(c.t.redis, c.t.keys, 'pa', 'PA-USD')).toMatchObject({ workerId: 'pw', generation: 2 });
  }, 30_000);
});

describe('failover when the holder is killed', () => {
  const { c, desire, start, agents, requests } = context();
  const pair = 'FAIL-USD';
  const interval = 500;

  it('the spare polls within max(3 x interval, 15 s), the two never interleave, no alert is duplicated, SIGTERM releases', async () => {
    // Prices alternate 100 / 100.5 on every request: each poll after the first alerts (threshold 0.1 %).
    c.sim.setScript(pair, Array.from({ length: 400 }, (_, i) => (i % 2 === 0 ? '100' : '100.5')));
    const a = start('fa');
    await a.waitForOutput('generic worker started');
    await desire(bot('fail', pair, { intervalMs: interval, thresholdPercent: '0.1' }));
    await waitFor('fa to poll', () => agents(pair).filter((u) => u === UA('fa')).length >= 4, { timeoutMs: 20_000 });
    const b = start('fb');
    await b.waitForOutput('generic worker started');
    const before = (await readBotHolder(c.t.redis, c.t.keys, 'fail', pair))!;
    expect(before.workerId).toBe('fa');

    const killedAt = Date.now();
    await a.stop('SIGKILL');
    const first = await waitFor('the spare to poll', () => requests(pair).find((e) => e.userAgent === UA('fb')), { timeoutMs: 20_000 });
    const failoverMs = first.at - killedAt;
    expect(failoverMs).toBeLessThanOrEqual(Math.max(3 * interval, 15_000));
    await waitFor('fb to poll a few times', () => agents(pair).filter((u) => u === UA('fb')).length >= 4);
    const after = (await readBotHolder(c.t.redis, c.t.keys, 'fail', pair))!;
    expect(after).toMatchObject({ workerId: 'fb' });
    expect(after.generation).toBeGreaterThan(before.generation);
    expect(runs(agents(pair))).toEqual([UA('fa'), UA('fb')]);

    expect(await b.stop('SIGTERM')).toBe(0);
    expect(await readBotHolder(c.t.redis, c.t.keys, 'fail', pair)).toBeNull();
    expect((await readBotStatus(c.t.redis, c.t.keys, 'fail'))?.status).toBe('stopped');

    const alerts = await readAlertStream(c.t.redis, c.t.keys, pair);
    expect(alerts.length).toBeGreaterThanOrEqual(4);
    expect(new Set(alerts.map((x) => x.id)).size).toBe(alerts.length);
    const observed = alerts.map((x) => Date.parse(x.observedAt));
    // One alert per observation, in order: never two for one poll, never one worker's among the other's.
    expect(observed).toEqual([...observed].sort((x, y) => x - y));
    expect(new Set(observed).size).toBe(observed.length);
    expect(alerts.length).toBeLessThanOrEqual(requests(pair).length);
    process.stdout.write(`failover: SIGKILL to the spare's first poll ${failoverMs} ms\n`);
  }, 60_000);
});
