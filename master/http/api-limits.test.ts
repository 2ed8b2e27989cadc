import http from 'node:http';
import { createLogger } from '../../shared/platform/logger';
import { loadMasterConfig } from '../../shared/config/master-config';
import { makeAlert, publishAlert } from '../../test/helpers/alerts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { insertFixtureAlerts } from '../../test/helpers/fixtures';
import { masterTestEnv } from '../../test/helpers/master-env';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { waitFor } from '../../test/helpers/wait';
import { createMaster, type Master } from '../app';

/**
 * Every request's cost is bounded, on a real master (in process) over real HTTP against a table of 300k alerts: the
 * API's own Postgres pool and statement timeout, and the per-master cap and timeout of CSV exports.
 */

const ROWS = 300_000;
let t: TestDatabase;
let r: TestRedis;
let master: Master | undefined;

async function start(env: Record<string, string>): Promise<Master> {
  const config = loadMasterConfig({ ...masterTestEnv(t.url, r), ...env });
  return createMaster({ config, logger: createLogger({ name: 'master', level: process.env.TEST_LOG_LEVEL ?? 'silent' }), tuning: { streamBlockMs: 200, pairsRefreshMs: 200 } });
}

const countRows = async (ids: string[]) => Number((await t.db('alerts').whereIn('id', ids).count<{ n: string }[]>('* as n'))[0]!.n);

/** A CSV download whose client reads nothing: the server is held by back-pressure until we let go. */
function stalledDownload(url: string): Promise<{ res: http.IncomingMessage; req: http.ClientRequest; ended: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      res.pause();
      const ended = new Promise<string>((done) => {
        res.on('end', () => done('end'));
        res.on('aborted', () => done('aborted'));
        res.on('error', (err) => done(`error: ${err.message}`));
        res.on('close', () => done('close'));
      });
      resolve({ res, req, ended });
    });
    req.on('error', reject);
  });
}

beforeAll(async () => {
  [t, r] = await Promise.all([createTestDatabase(), createTestRedis()]);
  await insertFixtureAlerts(t.db, { count: ROWS, seed: 5 });
}, 120_000);

/** Lets go of a stalled client even when an assertion failed (a stalled download holds the server's close). */
let afterThis: (() => void) | undefined;

afterEach(async () => {
  afterThis?.();
  afterThis = undefined;
  await master?.close();
  master = undefined;
});

afterAll(async () => {
  await r?.cleanup();
  await t?.drop();
});

describe('when an API query runs longer than API_STATEMENT_TIMEOUT_MS', () => {
  it('answers 503 query_timeout with a message, for stats and for a CSV export', async () => {
    master = await start({ API_STATEMENT_TIMEOUT_MS: '1' });
    const stats = await fetch(`${master.url}/stats?window=31d`);
    expect(stats.status).toBe(503);
    expect(await stats.json()).toEqual({ error: 'query_timeout', message: expect.stringMatching(/took longer than the API allows/) });
    const csv = await fetch(`${master.url}/alerts.csv?min_change=0.2`);
    expect(csv.status).toBe(503);
    expect(await csv.json()).toMatchObject({ error: 'query_timeout' });
  });
});

describe('when heavy queries exhaust the API pool', () => {
  it('ingest keeps committing alerts while API requests wait for a connection', async () => {
    master = await start({ API_DB_POOL_MAX: '1', API_STATEMENT_TIMEOUT_MS: '60000' });
    // The stream is known to the consumer before the API gets busy.
    const warm = makeAlert({ pair: 'BTC-USD' });
    await publishAlert(r.redis, r.keys, warm);
    await waitFor('the first alert stored', async () => (await countRows([warm.id])) === 1);

    const pool = (master.apiDb.client as { pool: { numPendingAcquires(): number } }).pool;
    // Every window different, so none is served from the stats cache: 40 whole-table scans for one connection.
    const heavy = Array.from({ length: 40 }, (_, i) => fetch(`${master!.url}/stats?window=${2_600_000 - i}s`).then((res) => res.status));
    await waitFor('API requests queued for the API pool', () => pool.numPendingAcquires() >= 10);

    const alerts = Array.from({ length: 20 }, () => makeAlert({ pair: 'BTC-USD' }));
    for (const a of alerts) await publishAlert(r.redis, r.keys, a);
    await waitFor('the 20 alerts stored', async () => (await countRows(alerts.map((a) => a.id))) === 20);
    const stillWaiting = pool.numPendingAcquires();

    expect(await Promise.all(heavy)).toEqual(Array(40).fill(200));
    // The alerts were committed while API requests were still queued behind the busy API pool.
    expect(stillWaiting).toBeGreaterThan(0);
  });
});

describe('CSV exports beyond CSV_MAX_CONCURRENT', () => {
  it('are refused with 503 and Retry-After while the slots are taken, and served once one is free', async () => {
    master = await start({ CSV_MAX_CONCURRENT: '1' });
    const first = await stalledDownload(`${master.url}/alerts.csv`);
    afterThis = () => first.req.destroy();
    expect(first.res.statusCode).toBe(200);

    const refused = await fetch(`${master.url}/alerts?pair=BTC-USD`, { headers: { accept: 'text/csv' } });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(await refused.json()).toEqual({ error: 'too_many_exports', message: expect.stringMatching(/CSV_MAX_CONCURRENT/) });
    // A JSON page is not an export: it is served meanwhile.
    expect((await fetch(`${master.url}/alerts?limit=5`)).status).toBe(200);

    first.req.destroy();
    const next = await waitFor('a free export slot', async () => {
      const res = await fetch(`${master!.url}/alerts.csv?pair=SOL-EUR&min_change=0.5`);
      if (res.status !== 200) return null;
      return res.text();
    });
    expect(next.split('\n')[0]).toMatch(/^id,/);
  });
});

describe('a CSV export longer than CSV_TIMEOUT_MS', () => {
  it('is cut off (the download ends incomplete) and gives its slot back', async () => {
    master = await start({ CSV_MAX_CONCURRENT: '1', CSV_TIMEOUT_MS: '1000' });
    const slow = await stalledDownload(`${master.url}/alerts.csv`);
    try {
      expect(slow.res.statusCode).toBe(200);
      // The slot comes back once the server cut the stalled export off.
      const next = await waitFor('the slot back after the cut', async () => {
        const res = await fetch(`${master!.url}/alerts.csv?pair=SOL-EUR&min_change=0.5`);
        return res.status === 200 ? res.text() : null;
      });
      expect(next.endsWith('\n')).toBe(true);
      // The stalled client, reading at last, gets part of the export and then a broken connection, never a clean end.
      let bytes = 0;
      slow.res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      slow.res.resume();
      expect(await slow.ended).not.toBe('end');
      expect(bytes).toBeGreaterThan(0);
    } finally {
      slow.req.destroy();
    }
  });
});

describe('the cost-bound variables', () => {
  const env = () => ({ DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/x', API_HOST: '127.0.0.1' });

  it('default to a 5-connection API pool, 5 s statements, 2 exports of at most 5 min, and a 24h fleet retention', () => {
    expect(loadMasterConfig(env()).api).toMatchObject({ dbPoolMax: 5, statementTimeoutMs: 5000, csvMaxConcurrent: 2, csvTimeoutMs: 300_000, fleetRetentionMs: 86_400_000 });
    expect(loadMasterConfig({ ...env(), FLEET_RETENTION: '1h30m' }).api.fleetRetentionMs).toBe(5_400_000);
  });

  it.each([
    [{ API_DB_POOL_MAX: '0' }, /API_DB_POOL_MAX="0" is invalid: expected an integer from 1 to 100/],
    [{ API_STATEMENT_TIMEOUT_MS: 'soon' }, /API_STATEMENT_TIMEOUT_MS="soon" is invalid/],
    [{ CSV_MAX_CONCURRENT: '-1' }, /CSV_MAX_CONCURRENT="-1" is invalid/],
    [{ CSV_TIMEOUT_MS: '10' }, /CSV_TIMEOUT_MS="10" is invalid: expected an integer from 1000/],
    [{ FLEET_RETENTION: 'a day' }, /FLEET_RETENTION="a day" is invalid: expected a duration such as 30m, 24h, 7d/],
  ])('refuse %j naming the variable and what is allowed', (bad, message) => {
    expect(() => loadMasterConfig({ ...env(), ...bad })).toThrow(message);
  });
});
