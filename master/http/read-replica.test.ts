import { createDb, ensureDatabase, migrateLatest, type Knex } from '../../shared/platform/db';
import type { AlertMessage } from '../../shared/contract/alert';
import { createLogger } from '../../shared/platform/logger';
import { loadMasterConfig } from '../../shared/config/master-config';
import { createReplicaReads, type FallbackReason } from '../../shared/read-model/replica-reads';
import type { AlertItem } from '../../shared/read-model/alert-queries';
import { makeAlert, publishAlert } from '../../test/helpers/alerts';
import { masterTestEnv } from '../../test/helpers/master-env';
import { startPostgresCluster, type PostgresCluster } from '../../test/helpers/postgres-cluster';
import { startService, type ServiceProcess } from '../../test/helpers/process';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { startTcpProxy, type TcpProxy } from '../../test/helpers/tcp-proxy';
import { waitFor } from '../../test/helpers/wait';

/**
 * The master with DATABASE_READ_URL on a real streaming replica: ingest writes to the primary, the analysts' reads come
 * from the replica, and when the replica is out of reach (a silent network, then a stopped server) the primary serves
 * them with no 5xx and no hang. The replica is reached through a TCP proxy so the test can silence the network path
 * without touching the server.
 */
const STATEMENT_TIMEOUT_MS = 2000;
const CONNECT_TIMEOUT_MS = 1000;

describe('the read replica variables', () => {
  it('are off by default: no replica, reads on DATABASE_URL', () => {
    expect(loadMasterConfig({}).readReplica).toBeUndefined();
  });

  it('parse a replica URL, a lag limit in the one duration grammar and a connect timeout', () => {
    const config = loadMasterConfig({ DATABASE_READ_URL: 'postgres://ro:pw@replica:5432/tickwatch', DATABASE_READ_MAX_LAG: '1m30s', DATABASE_READ_CONNECT_TIMEOUT_MS: '500' });
    expect(config.readReplica).toEqual({ url: 'postgres://ro:pw@replica:5432/tickwatch', maxLagMs: 90_000, connectTimeoutMs: 500 });
  });

  it.each([
    [{ DATABASE_READ_URL: 'mysql://ro:s3cret@replica/x' }, /DATABASE_READ_URL=\(hidden\) is invalid: expected a URL starting with postgres:\/\/ or postgresql:\/\//],
    [{ DATABASE_READ_URL: 'postgres://replica/x', DATABASE_READ_MAX_LAG: 'soon' }, /DATABASE_READ_MAX_LAG="soon" is invalid: expected a duration from 100 ms to 86400 s such as 30s/],
    [{ DATABASE_READ_URL: 'postgres://replica/x', DATABASE_READ_MAX_LAG: '10ms' }, /DATABASE_READ_MAX_LAG="10ms" is invalid/],
    [{ DATABASE_READ_CONNECT_TIMEOUT_MS: '0' }, /DATABASE_READ_CONNECT_TIMEOUT_MS="0" is invalid: expected an integer from 100 to 60000/],
  ])('refuse %o naming the variable, never showing the URL', (env, message) => {
    expect(() => loadMasterConfig(env)).toThrow(message);
    expect(() => loadMasterConfig(env)).not.toThrow(/s3cret/);
  });
});

describe('alert reads on a read replica (DATABASE_READ_URL)', () => {
  let cluster: PostgresCluster;
  let r: TestRedis;
  let proxy: TcpProxy;
  let primaryDb: Knex;
  let master: ServiceProcess | undefined;
  let api: string;
  const cli: ServiceProcess[] = [];

  const get = async (path: string) => {
    const res = await fetch(`${api}${path}`);
    const text = await res.text();
    return { status: res.status, text, json: () => JSON.parse(text) as Record<string, unknown> };
  };
  const listedIds = async () => {
    const res = await get('/alerts?limit=200');
    expect(res.status).toBe(200);
    return (res.json().items as { id: string }[]).map((a) => a.id);
  };
  const onPrimary = async (alert: AlertMessage) => waitFor(`alert ${alert.id} on the primary`, async () => (await primaryDb('alerts').where({ id: alert.id })).length === 1, { timeoutMs: 15_000 });
  const pauseReplay = async () => {
    await cluster.replica.query('SELECT pg_wal_replay_pause()');
    await waitFor('replay to pause', async () => (await cluster.replica.query<{ s: string }>('SELECT pg_get_wal_replay_pause_state() AS s'))[0]?.s === 'paused');
  };
  const resumeReplay = () => cluster.replica.query('SELECT pg_wal_replay_resume()');
  const fallbacks = async () => {
    const text = (await get('/metrics')).text;
    return Number(/^tickwatch_replica_fallback_reads_total\{reason="unreachable"\} (\d+)/m.exec(text)?.[1] ?? 0);
  };
  const alertsCli = (env: Record<string, string>) => {
    const p = startService('cli/main.ts', { DATABASE_URL: `${cluster.primary.url}/tickwatch`, ...env }, ['--format', 'json', '--limit', 'all']);
    cli.push(p);
    return p;
  };

  beforeAll(async () => {
    [cluster, r] = await Promise.all([startPostgresCluster(), createTestRedis()]);
    const primaryUrl = `${cluster.primary.url}/tickwatch`;
    await ensureDatabase(primaryUrl);
    primaryDb = createDb(primaryUrl, { poolMax: 2, applicationName: 'tickwatch-test' });
    await migrateLatest(primaryDb);
    proxy = await startTcpProxy({ host: '127.0.0.1', port: cluster.replica.port });
    master = startService('master/main.ts', {
      ...masterTestEnv(primaryUrl, r),
      DATABASE_READ_URL: `postgres://postgres@127.0.0.1:${proxy.port}/tickwatch`,
      DATABASE_READ_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
      API_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS),
      LOG_LEVEL: 'info',
    });
    await master.waitForOutput('master started', 60_000);
    api = /master started; API on (http:\/\/[^\s"]+)/.exec(master.output())![1]!;
  }, 120_000);

  afterAll(async () => {
    await Promise.all([master?.stop('SIGKILL'), ...cli.map((p) => p.stop('SIGKILL'))]);
    await primaryDb?.destroy();
    await proxy?.close();
    await r?.cleanup();
    await cluster?.destroy();
  });

  let first: AlertMessage;

  it('serves alerts ingested through the primary from the replica (its connections are on the replica)', async () => {
    const alert = makeAlert({ pair: 'BTC-USD' });
    first = alert;
    await publishAlert(r.redis, r.keys, alert);
    await waitFor('the alert in GET /alerts', async () => (await listedIds()).includes(alert.id), { timeoutMs: 20_000 });
    expect((await get(`/alerts/${alert.id}`)).status).toBe(200);
    expect((await get('/stats?window=31d')).status).toBe(200);
    const csv = await fetch(`${api}/alerts.csv?since=2026-01-01`);
    expect(csv.status).toBe(200);
    expect(await csv.text()).toContain(alert.id);
    // The API's replica pool lives on the replica, and nowhere on the primary.
    const onReplica = await cluster.replica.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'tickwatch-master-api-replica'");
    const onPrimaryServer = await cluster.primary.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'tickwatch-master-api-replica'");
    expect(onReplica[0]?.n).toBeGreaterThan(0);
    expect(onPrimaryServer[0]?.n).toBe(0);
  });

  describe('while the replica has paused replay', () => {
    let held: AlertMessage;
    beforeAll(async () => {
      await pauseReplay();
      held = makeAlert({ pair: 'ETH-USD' });
      await publishAlert(r.redis, r.keys, held);
      await onPrimary(held);
    });
    afterAll(() => resumeReplay());

    it('the list does not show an alert only the primary has, /ready reports the lag and stays ready, and the list shows it once replay resumes', async () => {
      expect(await listedIds()).not.toContain(held.id);
      const stats = (await get(`/stats?window=31d&pair=ETH-USD`)).json() as { overall: { count: number } };
      expect(stats.overall.count).toBe(0);
      const ready = await get('/ready');
      expect(ready.status).toBe(200);
      expect(ready.json()).toMatchObject({ status: 'ready', postgres: 'ok', replica: { status: 'ok', reads_from: 'replica', in_recovery: true, replay_paused: true } });
      const replica = ready.json().replica as { lag_ms: number; lag_bytes: number };
      expect(replica.lag_bytes).toBeGreaterThan(0);
      expect(replica.lag_ms).toBeGreaterThan(0);
      // The CLI reads the replica too.
      const p = alertsCli({ DATABASE_READ_URL: `${cluster.replica.url}/tickwatch` });
      expect(await p.exited).toBe(0);
      expect(p.output()).toContain(first.id);
      expect(p.output()).not.toContain(held.id);

      await resumeReplay();
      await waitFor('the held alert in GET /alerts after replay resumed', async () => (await listedIds()).includes(held.id), { timeoutMs: 10_000 });
      expect((await get('/ready')).json()).toMatchObject({ replica: { replay_paused: false, lag_ms: 0, lag_bytes: 0 } });
    });

    it('the detail of an alert not replayed yet comes from the primary (the live feed may have announced it)', async () => {
      const fresh = makeAlert({ pair: 'ETH-USD' });
      await pauseReplay();
      await publishAlert(r.redis, r.keys, fresh);
      await onPrimary(fresh);
      expect(await listedIds()).not.toContain(fresh.id);
      const detail = await get(`/alerts/${fresh.id}`);
      expect(detail.status).toBe(200);
      expect(detail.json()).toMatchObject({ id: fresh.id, pair: 'ETH-USD', notifications: [] });
    });
  });

  describe('when the network to the replica goes silent', () => {
    let late: AlertMessage;
    beforeAll(async () => {
      // Replay held, so what the primary serves differs from what the replica would.
      await pauseReplay();
      late = makeAlert({ pair: 'SOL-USD' });
      await publishAlert(r.redis, r.keys, late);
      await onPrimary(late);
      expect(await listedIds()).not.toContain(late.id);
      proxy.down('blackhole');
    });
    afterAll(async () => {
      proxy.up();
      await resumeReplay();
    });

    it('reads are served by the primary within the read timeout, then at once; /ready stays ready and says so; the metric counts them', async () => {
      const before = await fallbacks();
      const started = Date.now();
      expect(await listedIds()).toContain(late.id);
      // A pooled connection gives up after the statement timeout plus 1 s, a new one after the connect timeout.
      expect(Date.now() - started).toBeLessThan(STATEMENT_TIMEOUT_MS + 1000 + 1500);
      const again = Date.now();
      const stats = await get('/stats?window=31d&pair=SOL-USD');
      expect(stats.status).toBe(200);
      expect((stats.json() as { overall: { count: number } }).overall.count).toBe(1);
      expect(Date.now() - again).toBeLessThan(1000);
      expect(await fallbacks()).toBeGreaterThanOrEqual(before + 2);
      // The reason, not the SQL of the read that failed.
      await master!.waitForOutput(/"detail":"(Query read timeout|Connection terminated due to connection timeout)","msg":"alert reads fall back to the primary \(DATABASE_URL\): the read replica is unreachable"/, 5000);

      const startedReady = Date.now();
      const ready = await get('/ready');
      expect(Date.now() - startedReady).toBeLessThan(5000);
      expect(ready.status).toBe(200);
      expect(ready.json()).toMatchObject({ status: 'ready', postgres: 'ok', redis: 'ok', replica: { reads_from: 'primary', lag_ms: null } });
      expect((ready.json().replica as { status: string }).status).toMatch(/^down: /);
    });

    it('once the network is back, a passing /ready check sends reads to the replica again', async () => {
      proxy.up();
      await waitFor('/ready to find the replica again', async () => ((await get('/ready')).json().replica as { status: string }).status === 'ok', { timeoutMs: 10_000 });
      expect(await listedIds()).not.toContain(late.id);
      await master!.waitForOutput('alert reads back on the read replica', 5000);
    });
  });

  describe('the routing in process, on the same replica', () => {
    let replicaDb: Knex;
    const reasons: FallbackReason[] = [];
    const logger = createLogger({ name: 'replica-reads-test', level: 'silent' });
    const everything = { pairs: [] as string[] };
    const ids = (items: AlertItem[]) => items.map((a) => a.id);
    beforeAll(() => {
      replicaDb = createDb(`${cluster.replica.url}/tickwatch`, { poolMax: 2, connectTimeoutMs: 1000, queryTimeoutMs: 3000, applicationName: 'tickwatch-test-replica' });
    });
    afterAll(() => replicaDb?.destroy());

    it('with DATABASE_READ_MAX_LAG, reads go to the primary while replay lags past it, and back to the replica once it caught up', async () => {
      const lagLimited = createReplicaReads({ primary: primaryDb, replica: replicaDb, logger, maxLagMs: 300, lagSampleMs: 0, onFallback: (r) => reasons.push(r) });
      const unlimited = createReplicaReads({ primary: primaryDb, replica: replicaDb, logger });
      const page = { ordering: '-observed_at' as const, limit: 200 };
      await pauseReplay();
      const behind = makeAlert({ pair: 'ADA-USD' });
      await publishAlert(r.redis, r.keys, behind);
      await onPrimary(behind);
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(ids((await unlimited.queries.listAlerts(everything, page)).items)).not.toContain(behind.id);
      expect(ids((await lagLimited.queries.listAlerts(everything, page)).items)).toContain(behind.id);
      expect(reasons).toEqual(['lagging']);
      expect(await lagLimited.check()).toMatchObject({ status: 'ok', reads_from: 'primary', replay_paused: true });

      await resumeReplay();
      await waitFor('the replica to catch up', async () => (await unlimited.check()).lag_bytes === 0);
      expect(ids((await lagLimited.queries.listAlerts(everything, page)).items)).toContain(behind.id);
      expect(reasons).toEqual(['lagging']);
    });

    it('a stream whose replica stops midway goes on from the primary after the last row it yielded: every row once, in order', async () => {
      const routed = createReplicaReads({ primary: primaryDb, replica: replicaDb, logger, onFallback: (r) => reasons.push(r) });
      const expected = (await primaryDb.raw<{ rows: { id: string }[] }>('SELECT id FROM alerts ORDER BY observed_at DESC, id DESC')).rows.map((row) => row.id);
      expect(expected.length).toBeGreaterThanOrEqual(5);
      const seen: string[] = [];
      let stopped = false;
      for await (const batch of routed.queries.streamAlerts(everything, { ordering: '-observed_at', batchSize: 2 })) {
        seen.push(...ids(batch));
        if (!stopped) {
          // From here on, the replica's pool finds its connections terminated and new ones refused.
          await cluster.replica.stop();
          stopped = true;
        }
      }
      expect(seen).toEqual(expected);
      expect(reasons.slice(1)).toEqual(['unreachable']);
    });
  });

  describe('when the replica server is stopped', () => {
    // Stopped by the stream test above already; stop() is a no-op for a stopped server.
    beforeAll(() => cluster.replica.stop());

    it('GET /alerts, a detail and a CSV export are served by the primary at once, and /ready reports the replica down but stays ready', async () => {
      const started = Date.now();
      const ids = await listedIds();
      expect(ids.length).toBeGreaterThanOrEqual(4);
      expect(Date.now() - started).toBeLessThan(CONNECT_TIMEOUT_MS + 1500);
      expect((await get(`/alerts/${ids[0]}`)).status).toBe(200);
      const csv = await fetch(`${api}/alerts.csv?since=2026-01-01`);
      expect(csv.status).toBe(200);
      expect((await csv.text()).trim().split('\n')).toHaveLength(ids.length + 1);
      const ready = await get('/ready');
      expect(ready.status).toBe(200);
      expect(ready.json()).toMatchObject({ status: 'ready', replica: { reads_from: 'primary' } });
      expect((ready.json().replica as { status: string }).status).toMatch(/^down: /);
    });

    it('the CLI reads the primary with a warning on stderr, and exits 0', async () => {
      const p = alertsCli({ DATABASE_READ_URL: `${cluster.replica.url}/tickwatch` });
      expect(await p.exited).toBe(0);
      const out = p.output();
      expect(out).toMatch(/alert reads fall back to the primary/);
      // One alert per line of the JSON array on stdout (the warning is a line on stderr).
      expect(out.split('\n').filter((line) => line.startsWith('  {"id":')).length).toBeGreaterThanOrEqual(4);
    });
  });
});
