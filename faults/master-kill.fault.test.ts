import { ALERT_CONSUMER_GROUP } from '../shared/contract/redis-keys';
import { makeAlert, publishAlert } from '../test/helpers/alerts';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db';
import { startService, type ServiceProcess } from '../test/helpers/process';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { waitFor } from '../test/helpers/wait';
import { printFigures } from './figures';
import { masterTestEnv } from '../test/helpers/master-env';

/**
 * The master is SIGKILLed (no shutdown, no final ack) while a 20k-alert burst is being published the way workers publish
 * (one MULTI per alert), and started again: every alert must end up stored exactly once. The new process has a new
 * consumer name, so it must also reclaim what the dead one had read but not acknowledged.
 */
const BURST = 20_000;

describe('when the master is SIGKILLed during a 20k-alert burst and restarted', () => {
  let database: TestDatabase;
  let redis: TestRedis;
  const masters: ServiceProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    redis = await createTestRedis();
  });
  afterAll(async () => {
    for (const m of masters) await m.stop('SIGKILL');
    await redis?.cleanup();
    await database?.drop();
  });

  const startMaster = async () => {
    const master = startService('master/main.ts', {
      ...masterTestEnv(database.url, redis),
      DELIVERY: 'stream',
      NOTIFY: 'log',
      // A replaced consumer's pending entries are reclaimed after this idle time (30 s by default).
      STREAM_CLAIM_IDLE_MS: '2000',
      LOG_LEVEL: 'warn',
    });
    masters.push(master);
    return master;
  };
  const count = async () => Number(((await database.db('alerts').count('* as n')) as { n: string }[])[0]!.n);

  it('stores every alert exactly once', async () => {
    const first = await startMaster();
    const alerts = Array.from({ length: BURST }, (_, i) => makeAlert({ pair: ['BTC-USD', 'ETH-USD', 'XRP-USD', 'SOL-EUR'][i % 4]! }));
    let published = 0;
    // Workers publish concurrently (one per pair): 32 MULTIs in flight.
    const burst = (async () => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < alerts.length) {
            await publishAlert(redis.redis, redis.keys, alerts[next++]!);
            published += 1;
          }
        }),
      );
    })();

    const storedAtKill = await waitFor('the first master to store part of the burst', async () => {
      const n = await count();
      return n >= 2_000 ? n : 0;
    }, { timeoutMs: 60_000, intervalMs: 10 });
    const publishedAtKill = published;
    first.child.kill('SIGKILL');
    await first.exited;

    await burst;
    const restartedAt = Date.now();
    const second = await startMaster();
    await waitFor('every alert of the burst to be stored', async () => (await count()) >= BURST, { timeoutMs: 120_000, intervalMs: 50 });
    const recoveryMs = Date.now() - restartedAt;

    const ids = alerts.map((a) => a.id);
    const { rows } = await database.db.raw<{ rows: { matched: string; total: string; distinct_ids: string }[] }>(
      'SELECT (SELECT count(*) FROM alerts WHERE id = ANY(?::uuid[])) AS matched, (SELECT count(*) FROM alerts) AS total, (SELECT count(DISTINCT id) FROM alerts) AS distinct_ids',
      [ids],
    );
    const stored = Number(rows[0]!.total);
    const matched = Number(rows[0]!.matched);
    const duplicates = stored - Number(rows[0]!.distinct_ids);
    // Nothing left pending in the group: the dead consumer's entries were reclaimed and acknowledged.
    const pending = await waitFor('the group to have nothing pending', async () => {
      let sum = 0;
      for (const pair of ['BTC-USD', 'ETH-USD', 'XRP-USD', 'SOL-EUR']) {
        const [n] = (await redis.redis.xpending(redis.keys.alertStream(pair), ALERT_CONSUMER_GROUP)) as [number];
        sum += n;
      }
      return sum === 0 ? 'none' : undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 }).catch(() => 'some');
    const deadLetters = await redis.redis.xlen(redis.keys.deadLetterStream);
    await second.stop();

    printFigures(
      'master-kill',
      { produced: BURST, stored, lost: BURST - matched, duplicates, stored_at_kill: storedAtKill, published_at_kill: publishedAtKill, recovery_ms: recoveryMs, dead_letters: deadLetters },
      `SIGKILL at ${storedAtKill} stored; restart with a new consumer name, STREAM_CLAIM_IDLE_MS=2000; pending after: ${pending}`,
    );
    expect(publishedAtKill).toBeLessThan(BURST);
    expect(matched).toBe(BURST);
    expect(stored).toBe(BURST);
    expect(duplicates).toBe(0);
    expect(deadLetters).toBe(0);
    expect(pending).toBe('none');
  });
});
