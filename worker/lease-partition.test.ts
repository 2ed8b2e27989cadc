import { readBotHolder, serializeDesiredBot } from '../shared/contract/bots';
import { createTickerSimulator, type TickerSimulator } from '../sim/simulator';
import { startService, type ServiceProcess } from '../test/helpers/process';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { startTcpProxy, type TcpProxy } from '../test/helpers/tcp-proxy';
import { waitFor } from '../test/helpers/wait';
import { readAlertStream } from '../test/helpers/worker-streams';

/**
 * A holder cut off from Redis (a partition: its commands get no answer) while it still reaches the ticker: it must stop
 * polling before its lease can expire, so the spare that claims the bot afterwards never polls beside it.
 */
describe('a holder partitioned from Redis', () => {
  let t: TestRedis;
  let sim: TickerSimulator;
  let proxy: TcpProxy;
  const workers: ServiceProcess[] = [];
  const pair = 'PART-USD';
  beforeAll(async () => {
    t = await createTestRedis();
    sim = await createTickerSimulator({ pairs: {}, rateLimit: 0, volatilityPercent: '0' });
    const upstream = new URL(t.url);
    proxy = await startTcpProxy({ host: upstream.hostname, port: Number(upstream.port || 6379) });
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGKILL')));
    await proxy?.close();
    await sim?.close();
    await t?.cleanup();
  });

  const start = (workerId: string, redisUrl: string) => {
    const w = startService('worker/main.ts', { WORKER_ID: workerId, REDIS_URL: redisUrl, REDIS_KEY_PREFIX: t.prefix, TICKER_BASE_URL: sim.url, TICKER_RATE_LIMIT_PER_MIN: '0', TICKER_TIMEOUT_MS: '1000' });
    workers.push(w);
    return w;
  };
  const requests = () => sim.requestLog.filter((e) => e.path.endsWith(`/${pair}`));

  it('stops polling before its lease expires; the spare takes over after it, never beside it', async () => {
    // Alternating prices: every poll after the first alerts, so a duplicate would show.
    sim.setScript(pair, Array.from({ length: 400 }, (_, i) => (i % 2 === 0 ? '100' : '100.5')));
    const holder = start('cut', `redis://127.0.0.1:${proxy.port}`);
    await holder.waitForOutput('generic worker started');
    await t.redis.hset(
      t.keys.desiredBots,
      'part',
      serializeDesiredBot({ botId: 'part', pair, intervalMs: 300, thresholdPercent: '0.1', priceField: 'ask', referenceMode: 'last-alert', enabled: true, version: 1 }),
    );
    await waitFor('the holder to poll', () => requests().filter((e) => e.userAgent === 'tickwatch-worker/cut').length >= 4, { timeoutMs: 20_000 });
    const spare = start('spare', t.url);
    await spare.waitForOutput('generic worker started');

    proxy.down('blackhole');
    // No renew reaches Redis from now on: the lease expires at this moment at the latest.
    const expiresAt = Date.now() + (await t.redis.pttl(t.keys.botLease('part', pair)));
    const first = await waitFor('the spare to poll', () => requests().find((e) => e.userAgent === 'tickwatch-worker/spare'), { timeoutMs: 20_000 });
    const holderRequests = requests().filter((e) => e.userAgent === 'tickwatch-worker/cut');
    expect(holderRequests.at(-1)!.at).toBeLessThan(expiresAt);
    expect(first.at).toBeGreaterThanOrEqual(expiresAt - 50);
    await waitFor('the spare to poll a few times', () => requests().filter((e) => e.userAgent === 'tickwatch-worker/spare').length >= 4);
    const agents = requests().map((e) => e.userAgent);
    expect(agents.filter((a, i) => i === 0 || agents[i - 1] !== a)).toEqual(['tickwatch-worker/cut', 'tickwatch-worker/spare']);
    expect(await readBotHolder(t.redis, t.keys, 'part', pair)).toMatchObject({ workerId: 'spare' });
    await holder.waitForOutput('lost the lease of the runtime bot: stopped watching it', 15_000);

    const alerts = await readAlertStream(t.redis, t.keys, pair);
    const observed = alerts.map((a) => Date.parse(a.observedAt));
    expect(new Set(observed).size).toBe(observed.length);
    expect(observed).toEqual([...observed].sort((x, y) => x - y));
    process.stdout.write(`partition: holder's last request ${expiresAt - holderRequests.at(-1)!.at} ms before its lease expired; spare's first ${first.at - expiresAt} ms after\n`);
  }, 60_000);
});
