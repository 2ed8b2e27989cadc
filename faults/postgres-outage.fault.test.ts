import type { AlertMessage } from '../shared/contract/alert';
import { makeAlert, publishAlert } from '../test/helpers/alerts';
import { createTestDatabase, TEST_PG_SERVER, type TestDatabase } from '../test/helpers/db';
import { startService, type ServiceProcess } from '../test/helpers/process';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { startTcpProxy, type TcpProxy } from '../test/helpers/tcp-proxy';
import { waitFor } from '../test/helpers/wait';
import { printFigures } from './figures';
import { masterTestEnv } from '../test/helpers/master-env';

/**
 * The master reaches Postgres only through a TCP proxy the test controls. While workers keep publishing (50 alerts/s),
 * the proxy resets every connection and refuses new ones for 30 s, then lets them through again: no alert may be lost
 * (none dead-lettered for the outage either), and ingest must resume on its own.
 */
const OUTAGE_MS = 30_000;
const RATE = 50;

describe('when Postgres is unreachable for 30 s', () => {
  let database: TestDatabase;
  let redis: TestRedis;
  let proxy: TcpProxy;
  let master: ServiceProcess | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
    redis = await createTestRedis();
    const server = new URL(TEST_PG_SERVER);
    proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
  });
  afterAll(async () => {
    await master?.stop('SIGKILL');
    await proxy?.close();
    await redis?.cleanup();
    await database?.drop();
  });

  const count = async () => Number(((await database.db('alerts').count('* as n')) as { n: string }[])[0]!.n);

  it('loses nothing and resumes ingest when it is back', async () => {
    const viaProxy = new URL(database.url);
    viaProxy.port = String(proxy.port);
    master = startService('master/main.ts', {
      ...masterTestEnv(viaProxy.toString(), redis),
      DELIVERY: 'stream',
      NOTIFY: 'log',
      LOG_LEVEL: 'info',
    });
    await master.waitForOutput('master started', 30_000);

    const produced: AlertMessage[] = [];
    let publishing = true;
    const publisher = (async () => {
      const started = Date.now();
      while (publishing) {
        const due = Math.floor(((Date.now() - started) / 1000) * RATE);
        while (produced.length < due) {
          const alert = makeAlert({ pair: produced.length % 2 ? 'BTC-USD' : 'ETH-USD' });
          produced.push(alert);
          await publishAlert(redis.redis, redis.keys, alert);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();

    await waitFor('ingest to run before the outage', async () => (await count()) >= RATE * 2, { timeoutMs: 30_000 });
    proxy.down('reset');
    const downAt = Date.now();
    // A COMMIT that reached Postgres just before the cut still completes there: count once the cut has settled.
    await new Promise((r) => setTimeout(r, 500));
    const storedBefore = await count();
    await new Promise((r) => setTimeout(r, OUTAGE_MS - 500));
    const storedDuringOutage = (await count()) - storedBefore;
    const producedDuringOutage = produced.length;
    proxy.up();
    const upAt = Date.now();
    const firstAfter = await waitFor('the first row committed after Postgres is back', async () => {
      const [row] = (await database.db('alerts').max('received_at as at')) as { at: Date | null }[];
      return row?.at && row.at.getTime() >= upAt - 50 ? Date.now() : undefined;
    }, { timeoutMs: 60_000, intervalMs: 50 });
    // Five more seconds of steady traffic after recovery, then everything must be stored.
    await new Promise((r) => setTimeout(r, 5_000));
    publishing = false;
    await publisher;
    await waitFor('every produced alert to be stored', async () => (await count()) >= produced.length, { timeoutMs: 60_000, intervalMs: 100 });
    const caughtUpAt = Date.now();
    const { rows } = await database.db.raw<{ rows: { matched: string; total: string; distinct_ids: string }[] }>(
      'SELECT (SELECT count(*) FROM alerts WHERE id = ANY(?::uuid[])) AS matched, (SELECT count(*) FROM alerts) AS total, (SELECT count(DISTINCT id) FROM alerts) AS distinct_ids',
      [produced.map((a) => a.id)],
    );
    const deadLetters = await redis.redis.xlen(redis.keys.deadLetterStream);
    const alive = master.child.exitCode === null;
    const stored = Number(rows[0]!.total);
    printFigures(
      'postgres-outage',
      {
        produced: produced.length,
        stored,
        lost: produced.length - Number(rows[0]!.matched),
        duplicates: stored - Number(rows[0]!.distinct_ids),
        produced_during_outage: producedDuringOutage - storedBefore,
        stored_during_outage: storedDuringOutage,
        outage_ms: upAt - downAt,
        recovery_ms: firstAfter - upAt,
        caught_up_ms: caughtUpAt - upAt,
        dead_letters: deadLetters,
        proxy_connections: proxy.accepted,
      },
      `TCP proxy reset every connection and refused new ones; master ${alive ? 'stayed up' : 'EXITED'}`,
    );
    expect(alive).toBe(true);
    expect(storedDuringOutage).toBe(0);
    expect(Number(rows[0]!.matched)).toBe(produced.length);
    expect(stored).toBe(produced.length);
    expect(deadLetters).toBe(0);
  });
});
