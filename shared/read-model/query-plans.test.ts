import type { PoolClient } from 'pg';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { insertFixtureAlerts } from '../../test/helpers/fixtures';
import { createAlertQueries, type AlertQueries } from './alert-queries';
import { ORDERINGS, type AlertFilter, type Ordering } from './query-params';

/**
 * Every list query the API and the CLI issue is served by an index: for each filter and ordering combination (first
 * page and a deeper cursor page) the exact SQL the repository ran is EXPLAINed with sequential scans disabled, and the
 * plan must read `alerts` only through our indexes. Where the ordering index serves the filter, the plan must also
 * have no Sort of the table (the index yields the order, so a page costs the same at any depth and table size).
 */

const NOW = Date.parse('2026-11-29T12:00:00Z');
let tdb: TestDatabase;
let queries: AlertQueries;
let captured: { sql: string; bindings: unknown[] }[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  await insertFixtureAlerts(tdb.db, { count: 20_000, start: new Date(NOW - 7 * 86_400_000), end: new Date(NOW), seed: 11 });
  tdb.db.on('query', (q: { sql: string; bindings?: unknown[] }) => captured.push({ sql: q.sql, bindings: q.bindings ?? [] }));
  queries = createAlertQueries(tdb.db);
}, 120_000);

afterAll(async () => {
  await tdb?.drop();
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

/** True when `node` reaches a scan of alerts without a Limit in between (it consumes an unbounded number of rows). */
function readsTableUnbounded(node: PlanNode): boolean {
  return (node.Plans ?? []).some((child) => child['Node Type'] !== 'Limit' && (child['Relation Name'] === 'alerts' || readsTableUnbounded(child)));
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

async function explain(sql: string, bindings: unknown[]): Promise<PlanNode> {
  const client = (await tdb.db.client.acquireConnection()) as PoolClient;
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL enable_seqscan = off');
    const res = await client.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(`EXPLAIN (FORMAT JSON) ${sql}`, bindings);
    await client.query('ROLLBACK');
    return (res.rows[0]?.['QUERY PLAN'][0] as { Plan: PlanNode }).Plan;
  } finally {
    await tdb.db.client.releaseConnection(client);
  }
}

const OUR_INDEXES = [
  'alerts_observed_at_idx',
  'alerts_pair_observed_at_idx',
  'alerts_change_percent_idx',
  'alerts_pair_change_percent_idx',
  'alerts_abs_change_percent_idx',
  'alerts_pkey',
];

const since = { iso: new Date(NOW - 86_400_000).toISOString(), ms: NOW - 86_400_000 };
const until = { iso: new Date(NOW - 3_600_000).toISOString(), ms: NOW - 3_600_000 };
/** orderedByIndex: a time ordering must read these straight off an index, with no Sort of the table. */
const FILTERS: [string, AlertFilter, { orderedByIndex: boolean }][] = [
  ['no filter', { pairs: [] }, { orderedByIndex: true }],
  ['one pair', { pairs: ['BTC-USD'] }, { orderedByIndex: true }],
  ['three pairs', { pairs: ['BTC-USD', 'ETH-USD', 'SOL-EUR'] }, { orderedByIndex: true }],
  ['direction', { pairs: [], direction: 'down' }, { orderedByIndex: true }],
  ['since and until', { pairs: [], since, until }, { orderedByIndex: true }],
  ['min_change', { pairs: [], minChange: '0.2' }, { orderedByIndex: false }],
  ['pair, direction, since, min_change', { pairs: ['ETH-USD'], direction: 'up', since, minChange: '0.08' }, { orderedByIndex: false }],
];

describe.each(ORDERINGS as readonly Ordering[])('ordering=%s', (ordering) => {
  it.each(FILTERS)('%s: first and later pages read alerts through an index', async (_name, filter, { orderedByIndex }) => {
    captured = [];
    const first = await queries.listAlerts(filter, { ordering, limit: 50 });
    expect(first.nextCursor).not.toBeNull();
    await queries.listAlerts(filter, { ordering, limit: 50, cursor: first.nextCursor ?? undefined });
    expect(captured).toHaveLength(2);
    for (const q of captured) {
      const plan = await explain(q.sql, q.bindings);
      const all = nodes(plan);
      const scans = all.filter((n) => n['Relation Name'] === 'alerts');
      expect(scans.length).toBeGreaterThan(0);
      for (const scan of scans) {
        expect(scan['Node Type']).toMatch(/^(Index Scan|Index Only Scan|Bitmap Heap Scan)$/);
        if (scan['Index Name']) expect(OUR_INDEXES).toContain(scan['Index Name']);
      }
      // A time range with a change ordering may rightly be served by the time index plus a sort of that range; so may
      // a rare min_change through its expression index. Everything else must come off an index in order.
      const byChange = ordering.endsWith('change_percent');
      if (byChange ? !filter.since && !filter.until : orderedByIndex) {
        // The rows come off the index in order; a Sort may only merge the bounded (LIMITed) results of UNION ALL branches.
        expect(all.filter((n) => n['Node Type'] === 'Sort' && readsTableUnbounded(n))).toEqual([]);
      }
    }
  });
});

it('statistics and timeseries over a recent window read alerts through the time index', async () => {
  captured = [];
  await queries.stats({ since: new Date(NOW - 20 * 60_000).toISOString(), pairs: [] });
  await queries.stats({ since: new Date(NOW - 20 * 60_000).toISOString(), pairs: ['BTC-USD'] });
  await queries.timeseries({ since: new Date(NOW - 3_600_000).toISOString(), until: new Date(NOW).toISOString(), bucketMs: 60_000, pairs: ['ETH-USD'] });
  expect(captured).toHaveLength(3);
  for (const q of captured) {
    const scans = nodes(await explain(q.sql, q.bindings)).filter((n) => n['Relation Name'] === 'alerts');
    expect(scans.map((s) => s['Node Type'])).not.toContain('Seq Scan');
    expect(scans.length).toBeGreaterThan(0);
  }
});

it('the alerts silences muted are listed through the partial silenced indexes, newest first without a sort', async () => {
  const silence = '0b6f2f4e-3c1a-4d5e-9f00-1a2b3c4d5e6f';
  await tdb.db('silences').insert({
    id: silence,
    matchers: JSON.stringify({ pair: 'BTC-USD' }),
    starts_at: new Date(NOW - 7 * 86_400_000),
    ends_at: new Date(NOW),
    comment: 'plan test',
    created_by: 'test',
  });
  // A few hundred muted among 20,000: the case the partial indexes are for.
  await tdb.db.raw('UPDATE alerts SET silenced_by = ? WHERE id IN (SELECT id FROM alerts WHERE pair = ? ORDER BY id LIMIT 300)', [silence, 'BTC-USD']);
  await tdb.db.raw('ANALYZE alerts');
  for (const [filter, index] of [
    [{ pairs: [], silenced: true }, 'alerts_silenced_observed_at_idx'],
    [{ pairs: [], silencedBy: silence }, 'alerts_silenced_by_idx'],
  ] as const) {
    captured = [];
    const first = await queries.listAlerts(filter, { ordering: '-observed_at', limit: 50 });
    expect(first.items.every((a) => a.silenced_by === silence)).toBe(true);
    await queries.listAlerts(filter, { ordering: '-observed_at', limit: 50, cursor: first.nextCursor ?? undefined });
    expect(captured).toHaveLength(2);
    for (const q of captured) {
      const all = nodes(await explain(q.sql, q.bindings));
      expect(all.filter((n) => n['Relation Name'] === 'alerts').map((n) => n['Index Name'])).toEqual([index]);
      expect(all.filter((n) => n['Node Type'] === 'Sort')).toEqual([]);
    }
  }
});
