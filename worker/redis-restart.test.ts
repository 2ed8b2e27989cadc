import Redis from 'ioredis';
import { createRedisKeys } from '../shared/contract/redis-keys';
import { createTickerSimulator, type TickerSimulator } from '../sim/simulator';
import { startService, type ServiceProcess } from '../test/helpers/process';
import { waitFor } from '../test/helpers/wait';
import { startOwnRedis, type OwnRedisServer } from '../test/helpers/redis-server';
import { describeAlert, readAlertStream } from '../test/helpers/worker-streams';

/** Prices that each move 2 % from the one before: with a 1 % threshold in last-alert mode, every step alerts. */
function climbing(from: number, count: number): string[] {
  // Alerts carry prices in canonical form (no trailing zeros), so the script does too.
  return Array.from({ length: count }, (_, i) => (from * 1.02 ** i).toFixed(2).replace(/\.?0+$/, ''));
}

describe('when Redis restarts while the worker runs (a real worker process, a private redis-server)', () => {
  let sim: TickerSimulator;
  let server: OwnRedisServer | undefined;
  let worker: ServiceProcess | undefined;
  let client: Redis | undefined;
  const keys = createRedisKeys('restart:');
  const pair = 'BOUNCE-USD';

  afterAll(async () => {
    await worker?.stop();
    await client?.quit().catch(() => undefined);
    await server?.destroy();
    await sim?.close();
  });

  it('queues the alerts raised while Redis is down and publishes each exactly once, in order, when it is back', async () => {
    server = await startOwnRedis({ persistence: 'none' });
    sim = await createTickerSimulator({ pairs: {}, rateLimit: 0 });
    const prices = climbing(100, 25);
    const served = (n: number) => () => sim.countRequests(pair, 200) >= n;
    const connect = () => {
      client = new Redis(server!.url, { maxRetriesPerRequest: 1 });
      client.on('error', () => undefined);
      return client;
    };

    // Phase 1, Redis up: 8 prices -> 7 alerts.
    sim.setScript(pair, prices.slice(0, 8));
    worker = startService('worker/main.ts', {
      PAIR: pair,
      TICKER_BASE_URL: sim.url,
      REDIS_URL: server.url,
      REDIS_KEY_PREFIX: keys.prefix,
      FETCH_INTERVAL_MS: '100',
      OSCILLATION_PERCENT: '1',
      TICKER_RATE_LIMIT_PER_MIN: '0',
    });
    await worker.waitForOutput('worker started');
    connect();
    await waitFor('phase 1 alerts', async () => (await readAlertStream(client!, keys, pair)).length === 7, { timeoutMs: 15_000 });
    const before = await readAlertStream(client!, keys, pair);
    await client!.quit();

    // Phase 2, Redis down (no persistence: its data is gone for good): 10 more prices -> 10 alerts, queued.
    await server.stop('SIGTERM');
    const servedBefore = sim.countRequests(pair, 200);
    sim.setScript(pair, prices.slice(8, 18));
    await waitFor('phase 2 prices served', served(servedBefore + 12), { timeoutMs: 15_000 });
    await worker.waitForOutput('cannot publish alerts; queueing them until redis is back');

    // Phase 3, Redis back on the same port: the queue drains, then 7 more prices -> 7 alerts.
    await server.start();
    await worker.waitForOutput('redis is back: publishing queued alerts', 15_000);
    const servedAfter = sim.countRequests(pair, 200);
    sim.setScript(pair, prices.slice(18));
    await waitFor('phase 3 prices served', served(servedAfter + 9), { timeoutMs: 15_000 });
    connect();
    await waitFor('every alert after the restart', async () => (await readAlertStream(client!, keys, pair)).length === 17, { timeoutMs: 15_000 });
    const after = await readAlertStream(client!, keys, pair);

    const all = [...before, ...after];
    expect(all.map(describeAlert)).toEqual(prices.slice(1).map((p, i) => `up ${p} vs ${prices[i]}`));
    expect(new Set(all.map((a) => a.id)).size).toBe(24);
    // The alerts raised during the outage carry the time they were observed, not the time they were published.
    expect(after[0]!.observedAt < after[9]!.observedAt).toBe(true);
    expect(await worker.stop()).toBe(0);
    expect(worker.output()).toMatch(/"published":24,"dropped":0,"queued":0,"msg":"worker stopped"/);
  });
});
