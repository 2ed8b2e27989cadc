import type { AlertMessage } from '../shared/contract/alert';
import { makeAlert } from '../test/helpers/alerts';
import { createLogger } from '../shared/platform/logger';
import { closeRedis, createRedis } from '../shared/platform/redis';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { waitFor } from '../test/helpers/wait';
import { createAlertPublisher } from './publisher';
import { readAlertStream, subscribeAlerts } from '../test/helpers/worker-streams';

const logger = createLogger({ name: 'test', level: 'silent' });

const alert = (price: string): AlertMessage => makeAlert({ botId: 'PUB-USD', pair: 'PUB-USD', price });

describe('alert publisher', () => {
  let t: TestRedis;
  beforeAll(async () => {
    t = await createTestRedis();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('publishes on the channel, appends to the stream and registers the pair, in order', async () => {
    const redis = createRedis(t.url, logger, { name: 'pub', failFast: true });
    await waitFor('redis', () => redis.status === 'ready');
    const channel = await subscribeAlerts(t.url, t.keys, 'PUB-USD');
    const publisher = createAlertPublisher({ redis, keys: t.keys, streamMaxLen: 1000, queueMax: 100, logger });
    try {
      const sent = ['1.01', '1.02', '1.03'].map(alert);
      for (const a of sent) publisher.publish(a);
      expect(await publisher.flush(2000)).toBe(0);
      expect((await readAlertStream(t.redis, t.keys, 'PUB-USD')).map((a) => a.id)).toEqual(sent.map((a) => a.id));
      await waitFor('the channel', () => channel.alerts.length === 3);
      expect(channel.alerts.map((a) => a.id)).toEqual(sent.map((a) => a.id));
      expect(await t.redis.smembers(t.keys.pairsSet)).toEqual(['PUB-USD']);
      expect(publisher.stats()).toEqual({ published: 3, dropped: 0, queued: 0 });
    } finally {
      publisher.close();
      await channel.close();
      await closeRedis(redis);
    }
  });

  it('while Redis is unreachable keeps a bounded queue, dropping (and counting) the oldest, and never blocks', async () => {
    const dead = createRedis('redis://127.0.0.1:1', logger, { name: 'dead', failFast: true, extra: { retryStrategy: () => null } });
    const publisher = createAlertPublisher({ redis: dead, keys: t.keys, streamMaxLen: 1000, queueMax: 3, logger, retryMs: 50 });
    try {
      const started = Date.now();
      for (const p of ['1', '2', '3', '4', '5']) publisher.publish(alert(p));
      expect(Date.now() - started).toBeLessThan(1000);
      expect(publisher.stats()).toEqual({ published: 0, dropped: 2, queued: 3 });
      // A bounded flush gives up and reports what is left.
      expect(await publisher.flush(200)).toBe(3);
    } finally {
      publisher.close();
      // Never connected: wait for ioredis to give up (no reconnects) rather than disconnecting a dead socket.
      await waitFor('the dead connection to end', () => dead.status === 'end');
    }
  });
});
