import { Writable } from 'node:stream';
import type { AlertMessage } from '../../shared/contract/alert';
import { ALERT_CONSUMER_GROUP } from '../../shared/contract/redis-keys';
import { createLogger } from '../../shared/platform/logger';
import { adoptLegacyLastSeen } from '../../shared/read-model/fleet-view';
import { makeAlert } from '../../test/helpers/alerts';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { waitFor } from '../../test/helpers/wait';
import { createMetrics } from '../metrics';
import type { AlertStore } from './alert-store';
import { createDeadLetters } from './dead-letter';
import { createStreamConsumer, type StreamConsumer } from './stream-consumer';

/**
 * Upgrading from a version whose keys had no hash tags: what the older workers and master left in Redis under the old
 * names is still stored (streams) or kept (the fleet's last-seen copies).
 */
describe('after an upgrade from untagged key names', () => {
  let r: TestRedis;
  let consumer: StreamConsumer | undefined;
  const silent = createLogger({ name: 'test', level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const stored: AlertMessage[] = [];
  const store: AlertStore = {
    async store(alerts) {
      stored.push(...alerts);
      return { inserted: [...alerts], duplicates: 0, rejected: [] };
    },
  };

  beforeAll(async () => {
    r = await createTestRedis();
  });
  afterEach(async () => {
    await consumer?.stop();
    consumer = undefined;
  });
  afterAll(() => r?.cleanup());

  const start = (pairs: '*' | string[]) => {
    const metrics = createMetrics({ defaultMetrics: false });
    consumer = createStreamConsumer({
      redis: r.redis,
      keys: r.keys,
      store,
      deadLetters: createDeadLetters({ redis: r.redis, keys: r.keys, logger: silent, metrics }),
      logger: silent,
      metrics,
      pairs,
      consumerName: 'upgrade-test',
      batchMax: 10,
      claimIdleMs: 60_000,
      maxAttempts: 5,
      blockMs: 200,
      pairsRefreshMs: 200,
    });
    consumer.start();
  };
  const xadd = (stream: string, alert: AlertMessage) => r.redis.xadd(stream, '*', 'alert', JSON.stringify(alert));

  it('stores the alerts of the old stream name beside the new one, each once, including those an old worker adds later', async () => {
    const pair = 'UPA-USD';
    const legacy = r.keys.legacyAlertStream(pair);
    expect(legacy).not.toBe(r.keys.alertStream(pair));
    // The old master's group exists on the old stream and has read some entries already (acknowledged), not the rest.
    const done = makeAlert({ pair });
    await xadd(legacy, done);
    await r.redis.xgroup('CREATE', legacy, ALERT_CONSUMER_GROUP, '$');
    const old = Array.from({ length: 5 }, () => makeAlert({ pair }));
    for (const a of old) await xadd(legacy, a);
    const fresh = Array.from({ length: 3 }, () => makeAlert({ pair }));
    for (const a of fresh) await xadd(r.keys.alertStream(pair), a);

    start([pair]);
    await waitFor('the old and the new alerts stored', () => stored.length >= 8);
    // A worker of the older version still running adds to the old stream.
    const late = makeAlert({ pair });
    await xadd(legacy, late);
    await waitFor('the late one stored', () => stored.some((a) => a.id === late.id));
    await new Promise((res) => setTimeout(res, 300));
    expect(stored.map((a) => a.id).sort()).toEqual([...old, ...fresh, late].map((a) => a.id).sort());
    expect(((await r.redis.xpending(legacy, ALERT_CONSUMER_GROUP)) as [number])[0]).toBe(0);
  });

  it('finds the old streams of every pair in the pairs set when consuming *', async () => {
    stored.length = 0;
    const pair = 'UPB-USD';
    await r.redis.sadd(r.keys.pairsSet, pair);
    const old = Array.from({ length: 4 }, () => makeAlert({ pair }));
    for (const a of old) await xadd(r.keys.legacyAlertStream(pair), a);
    start('*');
    await waitFor('the old stream drained', () => old.every((o) => stored.some((a) => a.id === o.id)));
  });

  it('moves the old last-seen hash into the new one, keeping a newer copy, and deletes it', async () => {
    await r.redis.hset(r.keys.legacyBotsLastSeen, 'gone', '{"botId":"gone","v":"old"}', 'both', '{"botId":"both","v":"old"}');
    await r.redis.hset(r.keys.botsLastSeen, 'both', '{"botId":"both","v":"new"}');
    expect(await adoptLegacyLastSeen(r.redis, r.keys)).toBe(2);
    expect(await r.redis.hgetall(r.keys.botsLastSeen)).toEqual({ gone: '{"botId":"gone","v":"old"}', both: '{"botId":"both","v":"new"}' });
    expect(await r.redis.exists(r.keys.legacyBotsLastSeen)).toBe(0);
    expect(await adoptLegacyLastSeen(r.redis, r.keys)).toBe(0);
  });
});
