import { Writable } from 'node:stream';
import { ALERT_MESSAGE_MAX_BYTES, serializeAlert } from '../../shared/contract/alert';
import { createLogger } from '../../shared/platform/logger';
import { loadMasterConfig } from '../../shared/config/master-config';
import { ALERT_CONSUMER_GROUP } from '../../shared/contract/redis-keys';
import { makeAlert, publishAlert } from '../../test/helpers/alerts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { waitFor } from '../../test/helpers/wait';
import { createMaster, type Master } from '../app';
import { masterTestEnv } from '../../test/helpers/master-env';

describe('master stream ingest', () => {
  let t: TestDatabase;
  let r: TestRedis;
  let master: Master | undefined;
  const logLines: Record<string, unknown>[] = [];

  async function start(env: Record<string, string> = {}): Promise<Master> {
    const config = loadMasterConfig({
      ...masterTestEnv(t.url, r),
      STREAM_CLAIM_IDLE_MS: '1000',
      ...env,
    });
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
        cb();
      },
    });
    return createMaster({ config, logger: createLogger({ name: 'master', level: 'info', destination }), tuning: { streamBlockMs: 500, pairsRefreshMs: 200 } });
  }

  const countRows = async (ids: string[]) => Number((await t.db('alerts').whereIn('id', ids).count<{ n: string }[]>('* as n'))[0]!.n);

  beforeAll(async () => {
    [t, r] = await Promise.all([createTestDatabase(), createTestRedis()]);
  });
  afterEach(async () => {
    await master?.close();
    master = undefined;
  });
  afterAll(async () => {
    await r?.cleanup();
    await t?.drop();
  });

  it('stores a published alert with every column, logs it, and announces it on the stored-alerts channel', async () => {
    master = await start();
    const sub = r.redis.duplicate();
    const announced: string[] = [];
    sub.on('message', (_c: string, m: string) => announced.push(m));
    await sub.subscribe(r.keys.storedAlertsChannel);

    const alert = makeAlert({ pair: 'ETH-EUR', direction: 'down', changePercent: '-1.234567890123456789', price: '1234.5', referencePrice: '1249.92' });
    await publishAlert(r.redis, r.keys, alert);

    const row = await waitFor('the alert row', () => t.db('alerts').where({ id: alert.id }).first());
    expect(row).toMatchObject({
      bot_id: alert.botId,
      pair: 'ETH-EUR',
      direction: 'down',
      price: '1234.500000000000000000',
      reference_price: '1249.920000000000000000',
      change_percent: '-1.234567890123456789',
      threshold_percent: '0.010000000000000000',
      config: alert.config,
    });
    expect(row.observed_at.toISOString()).toBe(alert.observedAt);
    expect(row.received_at).toBeInstanceOf(Date);

    await waitFor('the announcement', () => announced.length === 1);
    expect(JSON.parse(announced[0]!)).toEqual([alert]);
    const line = await waitFor('the alert log line', () => logLines.find((l) => l.alertId === alert.id));
    expect(line).toMatchObject({ pair: 'ETH-EUR', direction: 'down', changePercent: alert.changePercent, price: '1234.5', referencePrice: '1249.92' });
    // Acknowledged only after the commit: nothing is left pending.
    await waitFor('no pending entries', async () => ((await r.redis.xpending(r.keys.alertStream('ETH-EUR'), ALERT_CONSUMER_GROUP)) as [number])[0] === 0);
    sub.disconnect();
  });

  it('catches up on alerts published while no master was running, including pairs it has never seen', async () => {
    const early = [makeAlert({ pair: 'LTC-USD' }), makeAlert({ pair: 'XRP-USD' }), makeAlert({ pair: 'LTC-USD' })];
    for (const a of early) await publishAlert(r.redis, r.keys, a);
    master = await start();
    await waitFor('the early alerts', async () => (await countRows(early.map((a) => a.id))) === 3);
    const late = makeAlert({ pair: 'DOGE-USD' });
    await publishAlert(r.redis, r.keys, late);
    await waitFor('an alert on a new pair', async () => (await countRows([late.id])) === 1);
  });

  it('stores an alert delivered twice once and queues one notification for it', async () => {
    master = await start({ NOTIFY: 'webhook', WEBHOOK_URL: 'http://127.0.0.1:9/never' });
    const alert = makeAlert();
    await publishAlert(r.redis, r.keys, alert);
    await publishAlert(r.redis, r.keys, alert);
    await waitFor('both entries acknowledged', async () => ((await r.redis.xpending(r.keys.alertStream(alert.pair), ALERT_CONSUMER_GROUP)) as [number])[0] === 0 && (await countRows([alert.id])) === 1);
    const duplicates = await master.metrics.alertsDuplicate.get();
    expect(duplicates.values[0]?.value).toBeGreaterThanOrEqual(1);
    const rows = await t.db('notifications').whereRaw('? = ANY(alert_ids)', [alert.id]);
    expect(rows).toHaveLength(1);
  });

  it('reclaims entries a dead consumer read but never acknowledged', async () => {
    const pair = 'ADA-USD';
    master = await start({ MASTER_PAIRS: pair });
    await waitFor('the group', async () => ((await r.redis.xinfo('GROUPS', r.keys.alertStream(pair))) as unknown[]).length === 1);
    await master.close();
    master = undefined;

    const alert = makeAlert({ pair });
    await publishAlert(r.redis, r.keys, alert);
    // A replica reads the entry and dies before storing it.
    const read = await r.redis.xreadgroup('GROUP', ALERT_CONSUMER_GROUP, 'dead-replica', 'COUNT', 10, 'STREAMS', r.keys.alertStream(pair), '>');
    expect(read).not.toBeNull();

    master = await start({ MASTER_PAIRS: pair });
    await waitFor('the reclaimed alert', async () => (await countRows([alert.id])) === 1, { timeoutMs: 10_000 });
    await waitFor('no pending entries', async () => ((await r.redis.xpending(r.keys.alertStream(pair), ALERT_CONSUMER_GROUP)) as [number])[0] === 0);
  });

  it('dead-letters an entry delivered more than STREAM_MAX_ATTEMPTS times instead of retrying it forever', async () => {
    const pair = 'AVAX-USD';
    const alert = makeAlert({ pair });
    await r.redis.xgroup('CREATE', r.keys.alertStream(pair), ALERT_CONSUMER_GROUP, '0', 'MKSTREAM');
    await publishAlert(r.redis, r.keys, alert);
    // Two replicas took it and died (deliveries 1 and 2); the master's reclaim is delivery 3.
    await r.redis.xreadgroup('GROUP', ALERT_CONSUMER_GROUP, 'dead-1', 'COUNT', 10, 'STREAMS', r.keys.alertStream(pair), '>');
    await r.redis.xclaim(r.keys.alertStream(pair), ALERT_CONSUMER_GROUP, 'dead-2', 0, (await r.redis.xrange(r.keys.alertStream(pair), '-', '+'))[0]![0]);
    master = await start({ MASTER_PAIRS: pair, STREAM_MAX_ATTEMPTS: '2' });
    const letter = await waitFor('the dead letter', async () => (await r.redis.xrange(r.keys.deadLetterStream, '-', '+')).find(([, f]) => f.includes(r.keys.alertStream(pair))));
    expect(letter[1]).toContain('delivered 3 times (STREAM_MAX_ATTEMPTS=2) without being stored');
    await waitFor('nothing pending', async () => ((await r.redis.xpending(r.keys.alertStream(pair), ALERT_CONSUMER_GROUP)) as [number])[0] === 0);
    expect(await countRows([alert.id])).toBe(0);
  });

  it('dead-letters invalid messages with the reason and stores the valid ones around them', async () => {
    master = await start();
    const pair = 'SOL-USD';
    const before = makeAlert({ pair });
    const after = makeAlert({ pair });
    const broken = { ...makeAlert({ pair }), price: '-5' };
    await publishAlert(r.redis, r.keys, before);
    await publishAlert(r.redis, r.keys, { pair, raw: '{not json' });
    await publishAlert(r.redis, r.keys, { pair, raw: serializeAlert(broken) });
    await r.redis.xadd(r.keys.alertStream(pair), '*', 'wrong', 'field');
    // Valid for the contract but too large for numeric(38,18): the database refuses it, alone.
    const huge = makeAlert({ pair, price: '123456789012345678901234567890' });
    await publishAlert(r.redis, r.keys, huge);
    await publishAlert(r.redis, r.keys, after);

    await waitFor('the valid alerts', async () => (await countRows([before.id, after.id])) === 2);
    const dead = await waitFor('four dead letters', async () => {
      const entries = (await r.redis.xrange(r.keys.deadLetterStream, '-', '+')).filter(([, f]) => f.includes(r.keys.alertStream(pair)));
      return entries.length >= 4 ? entries : null;
    });
    const records = dead.map(([, fields]) => Object.fromEntries(fields.reduce<string[][]>((acc, v, i) => (i % 2 ? (acc[acc.length - 1]!.push(v), acc) : [...acc, [v]]), [])));
    expect(records.map((d) => d.reason)).toEqual([
      expect.stringMatching(/^not valid JSON/),
      expect.stringMatching(/breaks the alert contract v1: price/),
      'stream entry has no "alert" field',
      expect.stringMatching(/rejected by the database: .*numeric field overflow/),
    ]);
    for (const d of records) expect(d).toMatchObject({ source: 'stream', stream: r.keys.alertStream(pair), entryId: expect.stringMatching(/^\d+-\d+$/) });
    expect(records[0]!.payload).toBe('{not json');
    expect(await countRows([huge.id, broken.id])).toBe(0);
    await waitFor('nothing pending', async () => ((await r.redis.xpending(r.keys.alertStream(pair), ALERT_CONSUMER_GROUP)) as [number])[0] === 0);
    expect((await master.metrics.deadLettered.get()).values.find((v) => v.labels.source === 'stream')?.value).toBe(4);
  });

  it('dead-letters an entry over the size limit, unparsed, and stores the alerts behind it', async () => {
    master = await start();
    const pair = 'ADA-USD';
    const oversized = makeAlert({ pair });
    // A contract-valid alert padded past the limit: only the size cap refuses it.
    const raw = serializeAlert(oversized) + ' '.repeat(ALERT_MESSAGE_MAX_BYTES);
    const behind = [makeAlert({ pair }), makeAlert({ pair })];
    await publishAlert(r.redis, r.keys, { pair, raw });
    for (const a of behind) await publishAlert(r.redis, r.keys, a);

    await waitFor('the alerts behind it', async () => (await countRows(behind.map((a) => a.id))) === 2);
    const [entry] = await waitFor('the dead letter', async () => {
      const entries = (await r.redis.xrange(r.keys.deadLetterStream, '-', '+')).filter(([, f]) => f.includes(r.keys.alertStream(pair)));
      return entries.length > 0 ? entries : null;
    });
    const fields = entry![1];
    expect(fields[fields.indexOf('reason') + 1]).toBe(`an alert message of ${Buffer.byteLength(raw)} bytes is over the ${ALERT_MESSAGE_MAX_BYTES}-byte limit`);
    expect(await countRows([oversized.id])).toBe(0);
    await waitFor('nothing pending', async () => ((await r.redis.xpending(r.keys.alertStream(pair), ALERT_CONSUMER_GROUP)) as [number])[0] === 0);
  });

  it('shares a burst between two replicas with no alert stored twice', async () => {
    const a = await start({ CONSUMER_NAME: 'replica-a', INGEST_BATCH_MAX: '50' });
    const b = await start({ CONSUMER_NAME: 'replica-b', INGEST_BATCH_MAX: '50' });
    try {
      const alerts = Array.from({ length: 600 }, (_, i) => makeAlert({ pair: i % 2 ? 'BTC-EUR' : 'ETH-BTC' }));
      // Both replicas must be reading both streams before the burst, or the first to find them takes it all.
      await r.redis.sadd(r.keys.pairsSet, 'BTC-EUR', 'ETH-BTC');
      const consumersOf = async (pair: string) => {
        try {
          return ((await r.redis.xinfo('CONSUMERS', r.keys.alertStream(pair), ALERT_CONSUMER_GROUP)) as unknown[][]).map((c) => String(c[1]));
        } catch {
          return [];
        }
      };
      await waitFor('both replicas reading both streams', async () => {
        for (const pair of ['BTC-EUR', 'ETH-BTC']) {
          const names = await consumersOf(pair);
          if (!names.includes('replica-a') || !names.includes('replica-b')) return false;
        }
        return true;
      });
      const pipeline = r.redis.pipeline();
      for (const al of alerts) pipeline.xadd(r.keys.alertStream(al.pair), '*', 'alert', serializeAlert(al)).sadd(r.keys.pairsSet, al.pair);
      await pipeline.exec();
      await waitFor('all 600 alerts', async () => (await countRows(alerts.map((x) => x.id))) === 600, { timeoutMs: 15_000 });
      const ingested = async (m: Master) => (await m.metrics.alertsIngested.get()).values.reduce((s, v) => s + v.value, 0);
      const [na, nb] = [await ingested(a), await ingested(b)];
      expect(na + nb).toBe(600);
      expect(na).toBeGreaterThan(0);
      expect(nb).toBeGreaterThan(0);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
