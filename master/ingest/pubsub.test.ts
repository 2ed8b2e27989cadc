import { ALERT_MESSAGE_MAX_BYTES } from '../../shared/contract/alert';
import { loadMasterConfig } from '../../shared/config/master-config';
import { createLogger } from '../../shared/platform/logger';
import { makeAlert, publishAlert } from '../../test/helpers/alerts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { waitFor } from '../../test/helpers/wait';
import { createMaster, type Master } from '../app';
import { masterTestEnv } from '../../test/helpers/master-env';

describe('master with DELIVERY=pubsub (the original channel design)', () => {
  let t: TestDatabase;
  let r: TestRedis;
  const masters: Master[] = [];

  async function start(env: Record<string, string>): Promise<Master> {
    const config = loadMasterConfig({ ...masterTestEnv(t.url, r), ...env });
    const m = await createMaster({ config, logger: createLogger({ name: 'master', level: 'silent' }), tuning: { streamBlockMs: 500, pairsRefreshMs: 200 } });
    masters.push(m);
    return m;
  }
  const stored = async (id: string) => Number((await t.db('alerts').where({ id }).count<{ n: string }[]>('* as n'))[0]!.n);
  /** Ids of this file's Redis clients whose name is `name`. */
  async function clientIds(name: string): Promise<string[]> {
    const list = (await r.redis.client('LIST')) as string;
    return list
      .split('\n')
      .filter((line) => line.includes(` name=${name} `))
      .map((line) => /\bid=(\d+)/.exec(line)![1]!);
  }

  beforeAll(async () => {
    [t, r] = await Promise.all([createTestDatabase(), createTestRedis()]);
  });
  afterEach(async () => {
    await Promise.all(masters.splice(0).map((m) => m.close()));
  });
  afterAll(async () => {
    await r?.cleanup();
    await t?.drop();
  });

  it('stores alerts published on the subscribed alerts:<PAIR> channels and dead-letters invalid ones', async () => {
    await start({ DELIVERY: 'pubsub', MASTER_PAIRS: 'BTC-USD,ETH-USD' });
    const alerts = [makeAlert({ pair: 'BTC-USD' }), makeAlert({ pair: 'ETH-USD' })];
    // Only the channel, as the original design published: no stream involved.
    for (const a of alerts) await r.redis.publish(r.keys.alertChannel(a.pair), JSON.stringify(a));
    await r.redis.publish(r.keys.alertChannel('BTC-USD'), '{"version":1}');
    const notSubscribed = makeAlert({ pair: 'XRP-USD' });
    await r.redis.publish(r.keys.alertChannel('XRP-USD'), JSON.stringify(notSubscribed));
    await waitFor('both alerts', async () => (await stored(alerts[0]!.id)) + (await stored(alerts[1]!.id)) === 2);

    const [entry] = await waitFor('a dead letter', async () => {
      const entries = await r.redis.xrange(r.keys.deadLetterStream, '-', '+');
      return entries.length ? entries : null;
    });
    const fields: string[] = entry![1];
    const letter = Object.fromEntries(fields.flatMap((v, i) => (i % 2 ? [] : [[v, fields[i + 1]]])));
    expect(letter).toMatchObject({ source: 'pubsub', stream: r.keys.alertChannel('BTC-USD'), entryId: '', payload: '{"version":1}' });
    expect(letter.reason).toMatch(/breaks the alert contract v1: id: /);
    expect(await stored(notSubscribed.id)).toBe(0);
  });

  it('dead-letters a message over the size limit, unparsed, and stores the one after it', async () => {
    await start({ DELIVERY: 'pubsub', MASTER_PAIRS: 'SOL-USD' });
    const oversized = makeAlert({ pair: 'SOL-USD' });
    // A valid alert padded past the limit: only the size cap refuses it.
    const raw = JSON.stringify(oversized) + ' '.repeat(ALERT_MESSAGE_MAX_BYTES);
    const after = makeAlert({ pair: 'SOL-USD' });
    await r.redis.publish(r.keys.alertChannel('SOL-USD'), raw);
    await r.redis.publish(r.keys.alertChannel('SOL-USD'), JSON.stringify(after));
    await waitFor('the alert after it', async () => (await stored(after.id)) === 1);
    const reasons = await waitFor('the dead letter', async () => {
      const entries = await r.redis.xrange(r.keys.deadLetterStream, '-', '+');
      const found = entries.map(([, f]) => f).filter((f) => f.includes(r.keys.alertChannel('SOL-USD'))).map((f) => f[f.indexOf('reason') + 1]);
      return found.length ? found : null;
    });
    expect(reasons).toEqual([`an alert message of ${Buffer.byteLength(raw)} bytes is over the ${ALERT_MESSAGE_MAX_BYTES}-byte limit`]);
    expect(await stored(oversized.id)).toBe(0);
  });

  it('with MASTER_PAIRS=* follows every pair through a pattern subscription, and re-subscribes after losing its connection', async () => {
    await start({ DELIVERY: 'pubsub', CONSUMER_NAME: 'pubsub-reconnect' });
    const first = makeAlert({ pair: 'DOGE-EUR' });
    await publishAlert(r.redis, r.keys, first);
    await waitFor('the first alert', async () => (await stored(first.id)) === 1);

    const name = 'tickwatch-master-pubsub-reconnect-pubsub';
    const [id] = await clientIds(name);
    expect(id).toMatch(/^\d+$/); // the subscriber's Redis client id
    await r.redis.client('KILL', 'ID', id!);
    await waitFor('a new subscriber connection', async () => {
      const ids = await clientIds(name);
      const patterns = Number(await r.redis.pubsub('NUMPAT'));
      return ids.length === 1 && ids[0] !== id && patterns > 0;
    });
    const second = makeAlert({ pair: 'ADA-EUR' });
    await publishAlert(r.redis, r.keys, second);
    await waitFor('the alert published after the reconnect', async () => (await stored(second.id)) === 1);
  });

  it('stores an alert once, with one notification, when a stream master and a pubsub master both receive it', async () => {
    await start({ DELIVERY: 'stream', CONSUMER_NAME: 'both-stream', NOTIFY: 'webhook', WEBHOOK_URL: 'http://127.0.0.1:9/none' });
    await start({ DELIVERY: 'pubsub', CONSUMER_NAME: 'both-pubsub', NOTIFY: 'webhook', WEBHOOK_URL: 'http://127.0.0.1:9/none' });
    const alerts = Array.from({ length: 20 }, () => makeAlert({ pair: 'LTC-BTC' }));
    for (const a of alerts) await publishAlert(r.redis, r.keys, a);
    await waitFor('the alerts', async () => {
      const n = await t.db('alerts').whereIn('id', alerts.map((a) => a.id)).count<{ n: string }[]>('* as n');
      return Number(n[0]!.n) === alerts.length;
    });
    // The stream master has stored or skipped every alert once its entries are acknowledged.
    await waitFor('stream entries acknowledged', async () => ((await r.redis.xpending(r.keys.alertStream('LTC-BTC'), 'tickwatch-master')) as [number])[0] === 0);
    const ingested = async (m: Master) => (await m.metrics.alertsIngested.get()).values.reduce((s, v) => s + v.value, 0);
    const duplicates = async (m: Master) => (await m.metrics.alertsDuplicate.get()).values.reduce((s, v) => s + v.value, 0);
    const copies = async () => [await ingested(masters[0]!), await ingested(masters[1]!), await duplicates(masters[0]!), await duplicates(masters[1]!)];
    await waitFor('every copy accounted for', async () => {
      // The pubsub master sees exactly these 20 (the stream master also catches up on older streams of this file).
      const [, ib, , db] = await copies();
      return ib! + db! === 20;
    }).catch(async (err) => {
      throw new Error(`${String(err)}; ingested/duplicates per master: ${(await copies()).join(', ')}`);
    });
    const perAlert = await t.db.raw<{ rows: { n: number }[] }>(
      'SELECT count(*)::int AS n FROM notifications n, unnest(n.alert_ids) AS u(alert_id) WHERE u.alert_id = ANY(?::uuid[]) GROUP BY u.alert_id',
      [alerts.map((a) => a.id)],
    );
    expect(perAlert.rows).toHaveLength(20);
    expect(perAlert.rows.every((row) => row.n === 1)).toBe(true);
  });
});
