import { readFileSync } from 'node:fs';
import http from 'node:http';
import { makeAlert, publishAlert } from '../test/helpers/alerts';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db';
import { insertFixtureAlerts } from '../test/helpers/fixtures';
import { masterTestEnv } from '../test/helpers/master-env';
import { freePort } from '../test/helpers/net';
import { startService, type ServiceProcess } from '../test/helpers/process';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { waitFor } from '../test/helpers/wait';
import { printFigures } from './figures';

/**
 * A master (a real process, default cost bounds) ingests a steady 100 alerts/s published to the streams the way workers
 * publish them, first alone, then while hostile clients load its API: 500 idle SSE clients on /events, 20 clients asking
 * for whole-history /stats with a different window each time (no cache hit), and 4 clients pulling full CSV exports of
 * a 200k-row table over and over. Ingest latency is publish -> the row's received_at (Postgres now() in the storing
 * transaction). Reported: p50/p99 latency of both phases and their ratio (goal at most 2x; reported, not asserted: it
 * is a time), the master's peak RSS (asserted against a generous bound) and what the hostile clients were answered.
 * Asserted: every alert stored exactly once, and no 5xx other than the documented refusals (503 from the caps).
 */

const ROWS = 200_000;
const RATE_PER_S = 100;
const PHASE_MS = 15_000;
const SSE_CLIENTS = 500;
const STATS_CLIENTS = 20;
const CSV_CLIENTS = 4;
/** Generous: the master idles near 100 MB; unbounded buffering behind 500 streams or 4 exports would blow far past this. */
const RSS_BOUND_MB = 768;
const PAIRS = ['BTC-USD', 'ETH-USD', 'XRP-USD', 'SOL-EUR'];

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * One GET read to the end; resolves with the status, the bytes read and whether the body was complete. At `deadline`
 * the client lets go (`cut`): the phase ends on time however long an export would still take.
 */
function get(agent: http.Agent, url: string, deadline: number): Promise<{ status: number; bytes: number; complete: boolean }> {
  return new Promise((resolve) => {
    let status = -1;
    let bytes = 0;
    let cut = false;
    const req = http.get(url, { agent }, (res) => {
      status = res.statusCode ?? 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status, bytes, complete: true }));
      res.on('error', () => resolve({ status: cut ? status : -1, bytes, complete: false }));
    });
    const timer = setTimeout(() => {
      cut = true;
      req.destroy();
    }, Math.max(0, deadline - Date.now()));
    req.on('close', () => clearTimeout(timer));
    req.on('error', () => resolve({ status: cut ? status : -1, bytes, complete: false }));
  });
}

describe('when hostile clients load the API during steady ingest', () => {
  let database: TestDatabase;
  let redis: TestRedis;
  let master: ServiceProcess | undefined;
  const sse: http.ClientRequest[] = [];

  beforeAll(async () => {
    [database, redis] = await Promise.all([createTestDatabase(), createTestRedis()]);
    await insertFixtureAlerts(database.db, { count: ROWS, seed: 17 });
  }, 60_000);

  afterAll(async () => {
    for (const req of sse) req.destroy();
    await master?.stop('SIGKILL');
    await redis?.cleanup();
    await database?.drop();
  });

  it('keeps ingesting every alert, with bounded memory', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    master = startService(
      'master/main.ts',
      {
        ...masterTestEnv(database.url, redis),
        API_PORT: String(port),
        DELIVERY: 'stream',
        NOTIFY: 'log',
        LOG_LEVEL: 'warn',
        EVENTS_MAX_CLIENTS: String(SSE_CLIENTS + 100),
      },
      [],
      { outputFile: true },
    );
    await waitFor('the master to answer /ready', async () => (await fetch(`${url}/ready`).catch(() => null))?.status === 200, { timeoutMs: 30_000, intervalMs: 100 });
    const pid = master.pid;

    // Warm-up: the consumer knows every pair's stream before anything is timed.
    const warm = PAIRS.map((pair) => makeAlert({ pair }));
    for (const a of warm) await publishAlert(redis.redis, redis.keys, a);
    await waitFor('the warm-up alerts stored', async () => {
      const { rows } = await database.db.raw<{ rows: { n: string }[] }>('SELECT count(*) AS n FROM alerts WHERE id = ANY(?::uuid[])', [warm.map((a) => a.id)]);
      return Number(rows[0]!.n) === warm.length;
    }, { timeoutMs: 30_000 });

    const published = new Map<string, { at: number; phase: 'alone' | 'hostile' }>();
    let phase: 'alone' | 'hostile' = 'alone';
    let publishing = true;
    let sequence = 0;
    // Fixed rate: one alert every 10 ms on a chained timer, each on the next pair in turn.
    const publisher = (async () => {
      const started = Date.now();
      while (publishing) {
        const alert = makeAlert({ pair: PAIRS[sequence % PAIRS.length]! });
        const at = Date.now();
        published.set(alert.id, { at, phase });
        sequence += 1;
        await publishAlert(redis.redis, redis.keys, alert);
        const due = started + (sequence * 1000) / RATE_PER_S;
        await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
      }
    })();

    const rss = { alone: 0, hostile: 0 };
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        rss[phase] = Math.max(rss[phase], rssMb(pid));
        await new Promise((r) => setTimeout(r, 250));
      }
    })();

    await new Promise((r) => setTimeout(r, PHASE_MS));

    // Hostile phase.
    phase = 'hostile';
    const hostileStarted = Date.now();
    const sseAgent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
    let sseOpen = 0;
    const sseStatuses = new Map<number, number>();
    for (let i = 0; i < SSE_CLIENTS; i++) {
      const req = http.get(`${url}/events`, { agent: sseAgent }, (res) => {
        sseStatuses.set(res.statusCode ?? 0, (sseStatuses.get(res.statusCode ?? 0) ?? 0) + 1);
        if (res.statusCode === 200) sseOpen += 1;
        // Idle: connected, reading what the server sends, asking nothing.
        res.resume();
      });
      req.on('error', () => undefined);
      sse.push(req);
    }

    const statuses = { stats: new Map<number, number>(), csv: new Map<number, number>() };
    const count = (m: Map<number, number>, s: number) => m.set(s, (m.get(s) ?? 0) + 1);
    let csvBytes = 0;
    let csvFull = 0;
    let csvCut = 0;
    const apiAgent = new http.Agent({ keepAlive: true, maxSockets: STATS_CLIENTS + CSV_CLIENTS });
    const until = hostileStarted + PHASE_MS;
    let windowSeq = 0;
    const statsClient = async () => {
      while (Date.now() < until) {
        // Whole history (the fixture spans 7 days) with a window no one asked before: never a cache hit.
        const window = `${31 * 86_400 - windowSeq++}s`;
        const res = await get(apiAgent, `${url}/stats?window=${window}`, until);
        if (res.complete) count(statuses.stats, res.status);
      }
    };
    const csvClient = async () => {
      while (Date.now() < until) {
        const res = await get(apiAgent, `${url}/alerts.csv`, until);
        csvBytes += res.bytes;
        if (!res.complete) {
          // Cut by us at the end of the phase: a 200 streaming until then.
          if (res.status === 200) csvCut += 1;
          else count(statuses.csv, res.status);
          continue;
        }
        count(statuses.csv, res.status);
        if (res.status === 200) {
          csvFull += 1;
        } else {
          // Refused (503 + Retry-After): a polite client would wait 5 s; a hostile one retries sooner.
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    };
    await Promise.all([
      ...Array.from({ length: STATS_CLIENTS }, statsClient),
      ...Array.from({ length: CSV_CLIENTS }, csvClient),
      new Promise((r) => setTimeout(r, until - Date.now())),
    ]);
    const hostileMs = Date.now() - hostileStarted;
    apiAgent.destroy();

    publishing = false;
    await publisher;
    for (const req of sse) req.destroy();
    sse.length = 0;
    sseAgent.destroy();

    // Every published alert stored, exactly once.
    const ids = [...published.keys()];
    await waitFor('every published alert stored', async () => {
      const { rows } = await database.db.raw<{ rows: { n: string }[] }>('SELECT count(*) AS n FROM alerts WHERE id = ANY(?::uuid[])', [ids]);
      return Number(rows[0]!.n) >= ids.length;
    }, { timeoutMs: 30_000, intervalMs: 200 }).catch(() => undefined);
    sampling = false;
    await sampler;

    const { rows } = await database.db.raw<{ rows: { id: string; received_ms: string }[] }>(
      'SELECT id::text, (extract(epoch FROM received_at) * 1000)::bigint::text AS received_ms FROM alerts WHERE id = ANY(?::uuid[])',
      [ids],
    );
    const storedIds = new Set(rows.map((r) => r.id));
    const duplicates = rows.length - storedIds.size;
    const lost = ids.filter((id) => !storedIds.has(id)).length;
    const latencies = { alone: [] as number[], hostile: [] as number[] };
    for (const r of rows) {
      const p = published.get(r.id)!;
      latencies[p.phase].push(Math.max(0, Number(r.received_ms) - p.at));
    }
    for (const l of Object.values(latencies)) l.sort((a, b) => a - b);
    const p99Alone = percentile(latencies.alone, 99);
    const p99Hostile = percentile(latencies.hostile, 99);
    const fmt = (m: Map<number, number>) => [...m.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`).join(',');
    const unexpected5xx = [...statuses.stats.entries(), ...statuses.csv.entries()].filter(([s]) => (s >= 500 && s !== 503) || s === -1).reduce((n, [, c]) => n + c, 0);

    printFigures(
      'hostile-clients',
      {
        produced: ids.length,
        stored: storedIds.size,
        lost,
        duplicates,
        p50_alone_ms: percentile(latencies.alone, 50),
        p99_alone_ms: p99Alone,
        p50_hostile_ms: percentile(latencies.hostile, 50),
        p99_hostile_ms: p99Hostile,
        p99_ratio: p99Hostile / Math.max(1, p99Alone),
        rss_alone_mb: rss.alone,
        rss_hostile_mb: rss.hostile,
        sse_open: sseOpen,
        csv_full: csvFull,
        csv_cut: csvCut,
        csv_mb: csvBytes / 1e6,
      },
      `${RATE_PER_S}/s ingest, ${PHASE_MS / 1000}s alone then ${(hostileMs / 1000).toFixed(1)}s hostile; ${ROWS} rows; stats ${fmt(statuses.stats)}; csv ${fmt(statuses.csv)}; sse ${fmt(sseStatuses)}`,
    );

    expect(lost).toBe(0);
    expect(duplicates).toBe(0);
    expect(rss.hostile).toBeLessThan(RSS_BOUND_MB);
    expect(sseOpen).toBe(SSE_CLIENTS);
    expect(unexpected5xx).toBe(0);
    // The hostile clients were served, not merely refused.
    expect(statuses.stats.get(200) ?? 0).toBeGreaterThan(0);
    expect(csvFull + csvCut).toBeGreaterThan(0);
    expect(csvBytes).toBeGreaterThan(0);
  }, 150_000);
});
