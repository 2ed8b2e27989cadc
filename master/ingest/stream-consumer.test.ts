import { Writable } from 'node:stream';
import type { AlertMessage } from '../../shared/contract/alert';
import { createLogger } from '../../shared/platform/logger';
import { ALERT_CONSUMER_GROUP } from '../../shared/contract/redis-keys';
import { fillStreams, makeAlert } from '../../test/helpers/alerts';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { waitFor } from '../../test/helpers/wait';
import type { AlertStore, StoreResult } from './alert-store';
import { createDeadLetters } from './dead-letter';
import { createMetrics } from '../metrics';
import { createStreamConsumer, type StreamConsumer } from './stream-consumer';

/** A store whose commits finish only when the test releases them: it stands in for a slow Postgres. */
function createHeldStore() {
  const calls: { alerts: readonly AlertMessage[]; release: () => void }[] = [];
  const store: AlertStore = {
    store(alerts) {
      return new Promise<StoreResult>((resolve) => {
        calls.push({ alerts, release: () => resolve({ inserted: [...alerts], duplicates: 0, rejected: [] }) });
      });
    },
  };
  return { store, calls };
}

describe('stream consumer pipelining', () => {
  let r: TestRedis;
  let consumer: StreamConsumer | undefined;
  const silent = createLogger({ name: 'test', level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

  beforeAll(async () => {
    r = await createTestRedis();
  });
  afterEach(async () => {
    await consumer?.stop();
    consumer = undefined;
  });
  afterAll(() => r?.cleanup());

  const pending = async (pair: string) => ((await r.redis.xpending(r.keys.alertStream(pair), ALERT_CONSUMER_GROUP)) as [number])[0];

  function start(store: AlertStore, pair: string) {
    const metrics = createMetrics({ defaultMetrics: false });
    consumer = createStreamConsumer({
      redis: r.redis,
      keys: r.keys,
      store,
      deadLetters: createDeadLetters({ redis: r.redis, keys: r.keys, logger: silent, metrics }),
      logger: silent,
      metrics,
      pairs: [pair],
      consumerName: 'pipelining-test',
      batchMax: 10,
      claimIdleMs: 60_000,
      maxAttempts: 5,
      blockMs: 200,
    });
    consumer.start();
    return consumer;
  }

  it('commits the next batch while one is still committing, and acknowledges each batch only after its own commit', async () => {
    const alerts = Array.from({ length: 30 }, () => makeAlert({ pair: 'SOL-USD' }));
    await fillStreams(r.redis, r.keys, alerts);
    const held = createHeldStore();
    start(held.store, 'SOL-USD');

    // Two batches of 10 reach the store while neither has committed; the third waits for a free slot.
    await waitFor('two commits in flight', () => held.calls.length === 2);
    expect(await pending('SOL-USD')).toBe(30);
    expect(held.calls.length).toBe(2);

    // The second batch commits first: only its 10 entries are acknowledged, and the third batch starts.
    held.calls[1]!.release();
    await waitFor('the second batch acknowledged', async () => (await pending('SOL-USD')) === 20);
    await waitFor('the third batch in flight', () => held.calls.length === 3);
    expect(await pending('SOL-USD')).toBe(20);

    held.calls[0]!.release();
    held.calls[2]!.release();
    await waitFor('everything acknowledged', async () => (await pending('SOL-USD')) === 0);
    expect(held.calls.flatMap((c) => c.alerts.map((a) => a.id)).sort()).toEqual(alerts.map((a) => a.id).sort());
  });

  it('on stop, lets the batches in hand commit and acknowledges them before returning', async () => {
    const alerts = Array.from({ length: 20 }, () => makeAlert({ pair: 'ADA-USD' }));
    await fillStreams(r.redis, r.keys, alerts);
    const held = createHeldStore();
    const c = start(held.store, 'ADA-USD');
    await waitFor('two commits in flight', () => held.calls.length === 2);

    let stopped = false;
    const stopping = c.stop().then(() => (stopped = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    for (const call of held.calls) call.release();
    await stopping;
    consumer = undefined;
    expect(await pending('ADA-USD')).toBe(0);
    expect(held.calls).toHaveLength(2);
  });
});
