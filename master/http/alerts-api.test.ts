import type { FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { Decimal } from '../../shared/contract/decimal';
import { createLogger } from '../../shared/platform/logger';
import { createDb, type Knex } from '../../shared/platform/db';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { copyAlerts, generateFixtureAlerts, insertAlerts, type FixtureAlert } from '../../test/helpers/fixtures';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { createMetrics } from '../metrics';
import { createApiServer } from './server';

/**
 * The alert endpoints, in process (app.inject) against a real Postgres holding fixture alerts whose expected answers
 * are computed here from the same generated rows.
 */

const NOW = Date.parse('2026-11-29T12:00:00.000Z');
const PAIRS = ['BTC-USD', 'ETH-USD', 'XRP-USD', 'DOGE-EUR'];
let tdb: TestDatabase;
let tr: TestRedis;
let app: FastifyInstance;
let rows: FixtureAlert[];

beforeAll(async () => {
  [tdb, tr] = await Promise.all([createTestDatabase(), createTestRedis()]);
  // 30 minutes at one-second resolution: about two alerts per second, so many share an observed_at and only the id
  // tie-breaker keeps pages apart. DOGE-EUR is rare.
  rows = [
    ...generateFixtureAlerts({
      count: 3000,
      pairs: PAIRS,
      pairWeights: [10, 10, 10, 1],
      start: new Date(NOW - 30 * 60_000),
      end: new Date(NOW),
      timeResolutionMs: 1000,
      seed: 7,
    }),
  ];
  await copyAlerts(tdb.db, rows);
  app = await createApiServer({
    db: tdb.db,
    redis: tr.redis,
    keys: tr.keys,
    metrics: createMetrics({ defaultMetrics: false }),
    logger: createLogger({ name: 'api-test', level: 'silent' }),
    now: () => NOW,
  });
});

afterAll(async () => {
  await app?.close();
  await tr?.cleanup();
  await tdb?.drop();
});

type Item = Record<string, unknown> & { id: string; pair: string; direction: string; observed_at: string; change_percent: string };

const byKey = (ordering: string) => {
  const desc = ordering.startsWith('-') ? -1 : 1;
  const column = ordering.replace('-', '');
  return (a: FixtureAlert, b: FixtureAlert) => {
    const primary =
      column === 'observed_at'
        ? Date.parse(a.observed_at) - Date.parse(b.observed_at)
        : new Decimal(a.change_percent).comparedTo(new Decimal(b.change_percent));
    return desc * (primary || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  };
};

interface FilterCase {
  readonly name: string;
  readonly query: Record<string, string>;
  readonly keep: (a: FixtureAlert) => boolean;
}

const since = new Date(NOW - 20 * 60_000).toISOString();
const until = new Date(NOW - 5 * 60_000).toISOString();
const FILTERS: FilterCase[] = [
  { name: 'no filter', query: {}, keep: () => true },
  { name: 'one pair', query: { pair: 'ETH-USD' }, keep: (a) => a.pair === 'ETH-USD' },
  { name: 'a rare pair and a common one, as a comma list', query: { pair: 'doge-eur,XRP-USD' }, keep: (a) => a.pair === 'DOGE-EUR' || a.pair === 'XRP-USD' },
  { name: 'direction down', query: { direction: 'down' }, keep: (a) => a.direction === 'down' },
  { name: 'since', query: { since }, keep: (a) => Date.parse(a.observed_at) >= Date.parse(since) },
  { name: 'until (exclusive)', query: { until }, keep: (a) => Date.parse(a.observed_at) < Date.parse(until) },
  { name: 'min_change', query: { min_change: '0.12' }, keep: (a) => new Decimal(a.change_percent).abs().gte('0.12') },
  {
    name: 'everything at once',
    query: { pair: 'BTC-USD,ETH-USD', direction: 'up', since, until, min_change: '0.06' },
    keep: (a) =>
      ['BTC-USD', 'ETH-USD'].includes(a.pair) &&
      a.direction === 'up' &&
      Date.parse(a.observed_at) >= Date.parse(since) &&
      Date.parse(a.observed_at) < Date.parse(until) &&
      new Decimal(a.change_percent).abs().gte('0.06'),
  },
];
const ORDERINGS = ['-observed_at', 'observed_at', '-change_percent', 'change_percent'];

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await app.inject({ method: 'GET', url, headers });
  return { status: res.statusCode, body: res.body, json: () => res.json() as Record<string, unknown>, headers: res.headers };
}

/** Follows next_cursor to the end; returns every item in the order served and the number of pages. */
async function walk(query: Record<string, string>, limit: number, between?: (page: number) => Promise<void>): Promise<{ items: Item[]; pages: number }> {
  const items: Item[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const qs = new URLSearchParams({ ...query, limit: String(limit), ...(cursor ? { cursor } : {}) });
    const res = await get(`/alerts?${qs}`);
    expect(res.status).toBe(200);
    const body = res.json() as { items: Item[]; next_cursor: string | null };
    expect(body.items.length).toBeLessThanOrEqual(limit);
    items.push(...body.items);
    cursor = body.next_cursor;
    pages++;
    if (between) await between(pages);
  } while (cursor !== null);
  return { items, pages };
}

describe('GET /alerts filters and orderings', () => {
  for (const ordering of ORDERINGS) {
    describe(`ordering=${ordering}`, () => {
      it.each(FILTERS.map((f) => [f.name, f] as const))('%s: pages through exactly the matching alerts in order', async (_name, filter) => {
        const expected = rows.filter(filter.keep).sort(byKey(ordering)).map((a) => a.id);
        expect(expected.length).toBeGreaterThan(0);
        const { items } = await walk({ ...filter.query, ordering }, 211);
        expect(items.map((i) => i.id)).toEqual(expected);
      });
    });
  }

  it('answers the default page: 50 newest alerts with every stored field, decimals as exact strings', async () => {
    const res = await get('/alerts');
    expect(res.status).toBe(200);
    const body = res.json() as { items: Item[]; next_cursor: string | null };
    expect(body.items).toHaveLength(50);
    expect(typeof body.next_cursor).toBe('string');
    const newest = [...rows].sort(byKey('-observed_at'))[0] as FixtureAlert;
    expect(body.items[0]).toEqual({
      id: newest.id,
      bot_id: newest.bot_id,
      pair: newest.pair,
      direction: newest.direction,
      price: new Decimal(newest.price).toFixed(),
      reference_price: new Decimal(newest.reference_price).toFixed(),
      change_percent: new Decimal(newest.change_percent).toFixed(),
      threshold_percent: newest.threshold_percent,
      observed_at: newest.observed_at,
      config: newest.config,
      received_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6})?Z$/),
      silenced_by: null,
    });
  });

  it('ends with next_cursor null when the last page is exactly full', async () => {
    const count = rows.filter((a) => a.pair === 'DOGE-EUR').length;
    const res = await get(`/alerts?pair=DOGE-EUR&limit=${count}`);
    const body = res.json() as { items: Item[]; next_cursor: string | null };
    expect(body.items).toHaveLength(count);
    expect(body.next_cursor).toBeNull();
  });

  it('accepts a repeated pair parameter like a comma list', async () => {
    const a = (await get('/alerts?pair=BTC-USD&pair=DOGE-EUR&limit=100')).json();
    const b = (await get('/alerts?pair=DOGE-EUR,BTC-USD&limit=100')).json();
    expect(a).toEqual(b);
  });
});

describe('keyset pagination while alerts arrive', () => {
  let writer: Knex;
  beforeAll(() => {
    writer = createDb(tdb.url, { poolMax: 2 });
  });
  afterAll(async () => {
    await writer?.destroy();
  });

  it.each(ORDERINGS)('ordering=%s: every alert present at the start is served exactly once', async (ordering) => {
    const before = new Set((await tdb.db('alerts').select('id')).map((r: { id: string }) => r.id));
    let batch = 0;
    const { items, pages } = await walk({ ordering }, 150, async () => {
      // New alerts land everywhere in the change orderings and at the newest end of the time orderings, some with an
      // observed_at equal to existing ones.
      batch++;
      const fresh = [
        ...generateFixtureAlerts({ count: 15, pairs: PAIRS, start: new Date(NOW - 60_000), end: new Date(NOW + 60_000), timeResolutionMs: 1000, seed: 1000 + batch + ordering.length * 100 }),
      ];
      await insertAlerts(writer, fresh);
    });
    expect(pages).toBeGreaterThan(10);
    const ids = items.map((i) => i.id);
    expect(new Set(ids).size).toBe(ids.length);
    const missing = [...before].filter((id) => !ids.includes(id));
    expect(missing).toEqual([]);
  });
});

describe('GET /alerts.csv and Accept: text/csv', () => {
  const csvIds = (body: string) =>
    body
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(',')[0]);

  it('exports every matching alert with a header row, in the requested order, filters applied', async () => {
    const res = await get('/alerts.csv?pair=DOGE-EUR,XRP-USD&direction=up&ordering=change_percent');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    expect(res.headers['content-disposition']).toMatch(/attachment; filename="alerts.csv"/);
    const [header, first] = res.body.split('\n');
    expect(header).toBe('id,bot_id,pair,direction,price,reference_price,change_percent,threshold_percent,observed_at,config,received_at,silenced_by');
    const ids = csvIds(res.body);
    const current = (await tdb.db('alerts').select('*')) as FixtureAlert[];
    const expected = current.filter((a) => ['DOGE-EUR', 'XRP-USD'].includes(a.pair) && a.direction === 'up');
    expect(ids).toHaveLength(expected.length);
    const json = await walk({ pair: 'DOGE-EUR,XRP-USD', direction: 'up', ordering: 'change_percent' }, 1000);
    expect(ids).toEqual(json.items.map((i) => i.id));
    // The config column holds the snapshot as JSON text (quoted per RFC 4180).
    expect(first).toMatch(/,"\{""[a-zA-Z]+"":/);
  });

  it('serves the same CSV from GET /alerts with Accept: text/csv', async () => {
    const viaAccept = await get('/alerts?pair=DOGE-EUR&ordering=observed_at', { accept: 'text/csv' });
    const viaPath = await get('/alerts.csv?pair=DOGE-EUR&ordering=observed_at');
    expect(viaAccept.status).toBe(200);
    expect(viaAccept.headers['content-type']).toMatch(/^text\/csv/);
    expect(viaAccept.body).toBe(viaPath.body);
  });

  it('answers JSON when text/csv is refused with q=0', async () => {
    const res = await get('/alerts?limit=1', { accept: 'text/csv;q=0, application/json' });
    expect(res.headers['content-type']).toMatch(/^application\/json/);
  });
});

describe('GET /alerts/{id}', () => {
  it('answers one alert with its notification deliveries', async () => {
    const alert = rows[42] as FixtureAlert;
    const other = rows[43] as FixtureAlert;
    await tdb.db('notifications').insert([
      { alert_ids: [alert.id, other.id], channel: 'email', target: 'ops@example.com', status: 'sent', attempts: 2, last_error: 'SMTP 451 try later', sent_at: new Date(NOW) },
      { alert_ids: [other.id], channel: 'webhook', target: 'https://hooks.example.com', status: 'pending', attempts: 0 },
    ]);
    const res = await get(`/alerts/${alert.id.toUpperCase()}`);
    expect(res.status).toBe(200);
    const body = res.json() as Item & { notifications: Record<string, unknown>[] };
    expect(body.id).toBe(alert.id);
    expect(body.price).toBe(new Decimal(alert.price).toFixed());
    expect(body.notifications).toEqual([
      expect.objectContaining({ channel: 'email', target: 'ops@example.com', status: 'sent', attempts: 2, last_error: 'SMTP 451 try later', sent_at: new Date(NOW).toISOString() }),
    ]);
  });

  it('answers 404 for an unknown id and 400 for something that is not a UUID', async () => {
    const missing = await get('/alerts/00000000-0000-4000-8000-000000000000');
    expect(missing.status).toBe(404);
    expect(missing.json()).toMatchObject({ error: 'not_found' });
    const bad = await get('/alerts/not-a-uuid');
    expect(bad.status).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'bad_request', parameter: 'id', value: 'not-a-uuid' });
  });
});

describe('bad parameters', () => {
  it.each([
    ['/alerts?limit=0', 'limit', '0'],
    ['/alerts?limit=1001', 'limit', '1001'],
    ['/alerts?limit=ten', 'limit', 'ten'],
    ['/alerts?direction=sideways', 'direction', 'sideways'],
    ['/alerts?ordering=price', 'ordering', 'price'],
    ['/alerts?pair=BTCUSD', 'pair', 'BTCUSD'],
    ['/alerts?since=yesterday', 'since', 'yesterday'],
    ['/alerts?since=2026-11-29T10:00:00', 'since', '2026-11-29T10:00:00'],
    ['/alerts?until=2026-13-01', 'until', '2026-13-01'],
    ['/alerts?min_change=-1', 'min_change', '-1'],
    ['/alerts?min_change=1e3', 'min_change', '1e3'],
    ['/alerts?cursor=bm9wZQ', 'cursor', 'bm9wZQ'],
    ['/alerts?colour=red', 'colour', 'red'],
    ['/alerts.csv?limit=5', 'limit', '5'],
    ['/stats?window=20', 'window', '20'],
    ['/stats?window=1h&since=2h', 'window', '1h'],
    ['/stats/timeseries?bucket=1s&since=30d', 'bucket', '1s'],
    ['/fleet?verbose=1', 'verbose', '1'],
  ])('%s answers 400 naming %s', async (url, parameter, value) => {
    const res = await get(url);
    expect(res.status).toBe(400);
    const body = res.json();
    expect(body).toMatchObject({ error: 'bad_request', parameter, value });
    expect(body.allowed).toBeTruthy();
  });

  it('answers a malformed percent-escape in the path with the same 400 shape', async () => {
    const res = await get('/alerts/%zz');
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ error: 'bad_request', parameter: 'url', value: '/alerts/%zz' });
  });

  it('does not run an export for HEAD /alerts.csv', async () => {
    const res = await app.inject({ method: 'HEAD', url: '/alerts.csv' });
    expect(res.statusCode).toBe(404);
  });

  it('refuses until before since', async () => {
    const res = await get('/alerts?since=2026-11-29T11:00:00Z&until=2026-11-29T10:00:00Z');
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ parameter: 'until' });
  });

  it('refuses a cursor made for another ordering', async () => {
    const first = (await get('/alerts?limit=1&ordering=-change_percent')).json() as { next_cursor: string };
    const res = await get(`/alerts?limit=1&ordering=observed_at&cursor=${first.next_cursor}`);
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ parameter: 'cursor' });
  });

  it('never answers 5xx to hostile query strings', async () => {
    const names = ['pair', 'direction', 'since', 'until', 'min_change', 'ordering', 'limit', 'cursor', 'window', 'bucket', '__proto__', 'constructor', 'pair[]', ''];
    const value = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom('%', '%00', '%E0%A4%A', "'; DROP TABLE alerts; --", '1e309', '-0', '9'.repeat(40), '2026-11-29T25:00:00Z', 'NaN', '1h', '0.5', 'BTC-USD'),
      fc.string({ unit: 'binary', maxLength: 20 }).map(encodeURIComponent),
    );
    const pathArb = fc.constantFrom('/alerts', '/alerts.csv', '/stats', '/stats/timeseries', '/fleet', '/alerts/x');
    await fc.assert(
      fc.asyncProperty(pathArb, fc.array(fc.tuple(fc.constantFrom(...names), value), { maxLength: 5 }), async (path, pairs) => {
        const qs = pairs.map(([k, v]) => `${k}=${v.includes('%') ? v : encodeURIComponent(v)}`).join('&');
        const res = await app.inject({ method: 'GET', url: `${path}?${qs}` });
        if (res.statusCode >= 500) throw new Error(`${path}?${qs} answered ${res.statusCode}: ${res.body}`);
        if (res.statusCode === 400) expect(res.json()).toHaveProperty('parameter');
      }),
      { numRuns: 300 },
    );
  });
});

describe('GET /stats and /stats/timeseries', () => {
  it('counts per pair and overall over the window', async () => {
    const current = (await tdb.db('alerts').select('pair', 'direction', 'change_percent', 'observed_at')) as { pair: string; direction: string; change_percent: string; observed_at: Date }[];
    const inWindow = current.filter((a) => a.observed_at.getTime() >= NOW - 10 * 60_000);
    const res = await get('/stats?window=10m');
    expect(res.status).toBe(200);
    const body = res.json() as { overall: Record<string, unknown>; pairs: Record<string, unknown>[]; window: string };
    expect(body.window).toBe('10m');
    expect(body.overall).toMatchObject({ count: inWindow.length, up: inWindow.filter((a) => a.direction === 'up').length });
    const maxAbs = inWindow.reduce((m, a) => Decimal.max(m, new Decimal(a.change_percent).abs()), new Decimal(0));
    expect(body.overall.max_abs_change_percent).toBe(maxAbs.toFixed());
    const btc = inWindow.filter((a) => a.pair === 'BTC-USD');
    expect(body.pairs.find((p) => p.pair === 'BTC-USD')).toMatchObject({
      count: btc.length,
      down: btc.filter((a) => a.direction === 'down').length,
      last_alert_at: new Date(Math.max(...btc.map((a) => a.observed_at.getTime()))).toISOString(),
    });
  });

  it('takes since/until and a pair filter instead of a window', async () => {
    const res = await get(`/stats?since=${since}&until=${until}&pair=DOGE-EUR`);
    const expected = rows.filter((a) => a.pair === 'DOGE-EUR' && Date.parse(a.observed_at) >= Date.parse(since) && Date.parse(a.observed_at) < Date.parse(until));
    const body = res.json() as { overall: { count: number }; pairs: { pair: string }[] };
    expect(body.overall.count).toBe(expected.length);
    expect(body.pairs.map((p) => p.pair)).toEqual(['DOGE-EUR']);
  });

  it('answers zeros and no pairs for a range without alerts', async () => {
    const res = await get('/stats?since=2001-01-01&until=2001-01-02');
    expect(res.json()).toMatchObject({ overall: { count: 0, up: 0, down: 0, max_abs_change_percent: null, last_alert_at: null }, pairs: [] });
  });

  it('answers zero-filled buckets that add up to the alerts in range', async () => {
    const res = await get(`/stats/timeseries?bucket=5m&since=${since}&until=${until}&pair=ETH-USD`);
    expect(res.status).toBe(200);
    const body = res.json() as { points: { t: string; count: number; up: number; down: number }[] };
    expect(body.points.map((p) => p.t)).toEqual([0, 1, 2].map((i) => new Date(Date.parse(since) + i * 5 * 60_000).toISOString()));
    const expected = rows.filter((a) => a.pair === 'ETH-USD' && Date.parse(a.observed_at) >= Date.parse(since) && Date.parse(a.observed_at) < Date.parse(until));
    expect(body.points.reduce((n, p) => n + p.count, 0)).toBe(expected.length);
    for (const p of body.points) expect(p.up + p.down).toBe(p.count);
  });
});
