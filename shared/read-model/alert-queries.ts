import type { Knex } from '../platform/db';
import type { AlertFilter, Ordering, PageCursor } from './query-params';
import { ALERT_COLUMNS as TABLE_COLUMNS } from './alert-table';
import type { WireAlert } from './alert-wire';

/**
 * Read-side repository over the `alerts` table (and the notifications outbox) for the API and the CLI.
 *
 * Every query is SQL text of our own run through knex.raw, and every value travels as a bound parameter (`?`), never
 * spliced into the text. List queries use keyset pagination:
 * a page is "the next `limit` rows strictly after (key, id) in the ordering", which stays correct while alerts arrive
 * (no offsets to shift, no row seen twice) and is served by an index range scan whatever the page depth:
 *   - `observed_at` orderings: alerts_observed_at_idx / alerts_pair_observed_at_idx (first migration),
 *   - `change_percent` orderings: alerts_change_percent_idx / alerts_pair_change_percent_idx (20261129000003),
 * each scanned forwards or backwards. Several pairs become one index scan per pair merged by UNION ALL, so a page over
 * two quiet pairs does not walk the whole time index.
 */

/** An alert as the API and the CLI show it: the wire alert (alert-wire.ts), read from its row, so received_at is known. */
export interface AlertItem extends WireAlert {
  readonly received_at: string;
}

/** The column order of CSV exports (config is written as JSON text): the table's own columns. */
export const ALERT_COLUMNS: readonly (keyof AlertItem)[] = TABLE_COLUMNS;

/** One notification delivery of an alert (a row of the outbox). */
export interface NotificationItem {
  readonly id: string;
  /** The receiver's name (null on rows written before receivers existed). */
  readonly receiver: string | null;
  /** The receiver's kind: email, webhook, slack, discord or telegram. */
  readonly kind: string;
  /** The same as `kind` (its first name, kept for older clients). */
  readonly channel: string;
  /** The recipient address (email), the receiver's scheme and host (webhook, Slack, Discord) or `chat <id>` (Telegram). */
  readonly target: string;
  /** The message that carried it, the same on every retry (null before the first attempt and on older rows). */
  readonly delivery_id: string | null;
  /** Why it waited past its due time: quiet_hours or email_cap (null when it did not). */
  readonly held_for: string | null;
  /** pending, sent or failed. */
  readonly status: string;
  readonly attempts: number;
  readonly last_error: string | null;
  /** True when the hourly email cap held it back (it went out in a summary). */
  readonly held_back: boolean;
  readonly next_attempt_at: string | null;
  readonly sent_at: string | null;
  readonly created_at: string | null;
}

export interface AlertPage {
  readonly items: AlertItem[];
  /** Null on the last page. */
  readonly nextCursor: PageCursor | null;
}

/** Per-pair (and overall) statistics over a time range. */
export interface PairStats {
  readonly count: number;
  readonly up: number;
  readonly down: number;
  /** Largest absolute change percent in the range; null when there were no alerts. */
  readonly max_abs_change_percent: string | null;
  /** Latest observed_at in the range; null when there were no alerts. */
  readonly last_alert_at: string | null;
}

export interface StatsResult {
  readonly overall: PairStats;
  readonly pairs: (PairStats & { readonly pair: string })[];
}

export interface TimeseriesPoint {
  /** Start of the bucket, ISO-8601 UTC. */
  readonly t: string;
  readonly count: number;
  readonly up: number;
  readonly down: number;
}

export interface AlertQueries {
  /** One keyset page. `cursor` must come from a page with the same ordering. */
  listAlerts(filter: AlertFilter, options: { ordering: Ordering; limit: number; cursor?: PageCursor }): Promise<AlertPage>;
  /**
   * Every matching alert, in order, yielded in keyset batches of `batchSize` rows: memory stays bounded by one batch and
   * no connection or transaction is held between batches, so a slow reader costs the database nothing.
   */
  streamAlerts(filter: AlertFilter, options: { ordering: Ordering; cursor?: PageCursor; batchSize?: number }): AsyncGenerator<AlertItem[]>;
  /** One alert, or null. `id` must already be a valid UUID. */
  getAlert(id: string): Promise<AlertItem | null>;
  /** Notification deliveries of one alert, oldest first. */
  getNotifications(alertId: string): Promise<NotificationItem[]>;
  /** Counts per pair over [since, until); no `until` means up to now (and any clock skew beyond). */
  stats(range: { since: string; until?: string; pairs: readonly string[] }): Promise<StatsResult>;
  /** Alert counts per bucket over [since, until), buckets aligned to multiples of `bucketMs` since the epoch, zero-filled. */
  timeseries(range: { since: string; until: string; bucketMs: number; pairs: readonly string[]; direction?: 'up' | 'down' }): Promise<TimeseriesPoint[]>;
}

// Times are rendered by Postgres, not by JS Dates, which would drop microseconds and break keyset cursors.
const ISO_UTC = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;
const isoColumn = (column: string, alias = column) => `to_char(${column} AT TIME ZONE 'UTC', ${ISO_UTC}) AS ${alias}`;

const SELECT_ALERT = [
  'id',
  'bot_id',
  'pair',
  'direction',
  'trim_scale(price)::text AS price',
  'trim_scale(reference_price)::text AS reference_price',
  'trim_scale(change_percent)::text AS change_percent',
  'trim_scale(threshold_percent)::text AS threshold_percent',
  isoColumn('observed_at'),
  'config',
  isoColumn('received_at'),
  'silenced_by::text AS silenced_by',
].join(', ');

interface AlertRow extends Omit<AlertItem, 'config'> {
  config: Record<string, unknown> | string;
}

/** "…00.123000Z" -> "…00.123Z": microseconds only when they carry information. */
function trimMicros(iso: string): string {
  // String checks rather than a RegExp: this runs for every timestamp of every page (100 per page of 50).
  const n = iso.length;
  return n >= 9 && iso.endsWith('000Z') && iso.charCodeAt(n - 8) === 46 /* . */ ? `${iso.slice(0, n - 4)}Z` : iso;
}

function toItem(row: AlertRow): AlertItem {
  return {
    ...row,
    config: typeof row.config === 'string' ? (JSON.parse(row.config) as Record<string, unknown>) : row.config,
    observed_at: trimMicros(row.observed_at),
    received_at: trimMicros(row.received_at),
  };
}

function orderingParts(ordering: Ordering): { column: 'observed_at' | 'change_percent'; desc: boolean } {
  return { column: ordering.endsWith('observed_at') ? 'observed_at' : 'change_percent', desc: ordering.startsWith('-') };
}

function cursorKey(item: AlertItem, ordering: Ordering): string {
  return orderingParts(ordering).column === 'observed_at' ? item.observed_at : item.change_percent;
}

/** The keyset position just after `item` in `ordering`: a page or stream given it goes on with the next row. */
export function cursorAfter(item: AlertItem, ordering: Ordering): PageCursor {
  return { ordering, key: cursorKey(item, ordering), id: item.id };
}

export function createAlertQueries(db: Knex): AlertQueries {
  /**
   * The index range scans a page is merged from: one per pair and, for change orderings filtered by direction or
   * min_change, one per sign of change_percent. A sign range ("change_percent >= 0.5", "change_percent <= -0.5") is a
   * contiguous stretch of the change index, so deep pages never walk the small moves they filter out. The contract
   * makes direction agree with the sign (and |change| >= threshold > 0), so direction=up is exactly change_percent > 0.
   */
  function branches(filter: AlertFilter, ordering: Ordering): { pair?: string; sign?: [string, string] }[] {
    const pairs: (string | undefined)[] = filter.pairs.length ? [...filter.pairs] : [undefined];
    let signs: ([string, string] | undefined)[] = [undefined];
    if (orderingParts(ordering).column === 'change_percent' && (filter.direction || filter.minChange !== undefined)) {
      const m = filter.minChange ?? '0';
      const up: [string, string] = filter.minChange !== undefined ? ['change_percent >= ?::numeric', m] : ['change_percent > ?::numeric', '0'];
      const down: [string, string] = filter.minChange !== undefined ? ['change_percent <= -?::numeric', m] : ['change_percent < ?::numeric', '0'];
      signs = filter.direction === 'up' ? [up] : filter.direction === 'down' ? [down] : [up, down];
    }
    return pairs.flatMap((pair) => signs.map((sign) => ({ pair, sign })));
  }

  /** WHERE clause of one branch with every filter and the keyset position; returns [sql, bindings]. */
  function whereFor(filter: AlertFilter, branch: { pair?: string; sign?: [string, string] }, ordering: Ordering, cursor: PageCursor | undefined): [string, unknown[]] {
    const clauses: string[] = [];
    const bindings: unknown[] = [];
    if (branch.pair !== undefined) {
      clauses.push('pair = ?');
      bindings.push(branch.pair);
    }
    if (filter.direction) {
      clauses.push('direction = ?');
      bindings.push(filter.direction);
    }
    if (filter.since) {
      clauses.push('observed_at >= ?::timestamptz');
      bindings.push(filter.since.iso);
    }
    if (filter.until) {
      clauses.push('observed_at < ?::timestamptz');
      bindings.push(filter.until.iso);
    }
    if (filter.silencedBy !== undefined) {
      clauses.push('silenced_by = ?::uuid');
      bindings.push(filter.silencedBy);
    } else if (filter.silenced !== undefined) {
      // Exactly the predicate of the partial index alerts_silenced_observed_at_idx, so silenced=true walks only the silenced.
      clauses.push(filter.silenced ? 'silenced_by IS NOT NULL' : 'silenced_by IS NULL');
    }
    if (branch.sign) {
      clauses.push(branch.sign[0]);
      bindings.push(branch.sign[1]);
    } else if (filter.minChange !== undefined) {
      // Written as abs(...) to match the expression index alerts_abs_change_percent_idx (and its statistics).
      clauses.push('abs(change_percent) >= ?::numeric');
      bindings.push(filter.minChange);
    }
    if (cursor) {
      const { column, desc } = orderingParts(ordering);
      // A row comparison on exactly the index's columns: the planner turns it into an index range bound.
      clauses.push(`(${column}, id) ${desc ? '<' : '>'} (?::${column === 'observed_at' ? 'timestamptz' : 'numeric'}, ?::uuid)`);
      bindings.push(cursor.key, cursor.id);
    }
    return [clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', bindings];
  }

  async function page(filter: AlertFilter, ordering: Ordering, limit: number, cursor?: PageCursor): Promise<AlertItem[]> {
    const { column, desc } = orderingParts(ordering);
    const dir = desc ? 'DESC' : 'ASC';
    // Qualified: a bare name would sort by the SELECT list's text rendering of the column (and miss the index).
    const orderBy = `ORDER BY alerts.${column} ${dir}, alerts.id ${dir}`;
    const parts = branches(filter, ordering);
    let sql: string;
    const bindings: unknown[] = [];
    if (parts.length === 1) {
      const [where, b] = whereFor(filter, parts[0] ?? {}, ordering, cursor);
      sql = `SELECT ${SELECT_ALERT} FROM alerts ${where} ${orderBy} LIMIT ?`;
      bindings.push(...b, limit);
    } else {
      const subqueries = parts.map((branch) => {
        const [where, b] = whereFor(filter, branch, ordering, cursor);
        bindings.push(...b, limit);
        return `(SELECT * FROM alerts ${where} ${orderBy} LIMIT ?)`;
      });
      sql = `SELECT ${SELECT_ALERT} FROM (${subqueries.join(' UNION ALL ')}) AS alerts ${orderBy} LIMIT ?`;
      bindings.push(limit);
    }
    const result = await db.raw<{ rows: AlertRow[] }>(sql, bindings as Knex.RawBinding[]);
    return result.rows.map(toItem);
  }

  return {
    async listAlerts(filter, { ordering, limit, cursor }) {
      const rows = await page(filter, ordering, limit + 1, cursor);
      const items = rows.slice(0, limit);
      const last = items[items.length - 1];
      const nextCursor = rows.length > limit && last ? { ordering, key: cursorKey(last, ordering), id: last.id } : null;
      return { items, nextCursor };
    },

    async *streamAlerts(filter, { ordering, cursor, batchSize = 2000 }) {
      let position = cursor;
      for (;;) {
        const rows = await page(filter, ordering, batchSize, position);
        if (rows.length) yield rows;
        const last = rows[rows.length - 1];
        if (rows.length < batchSize || !last) return;
        position = { ordering, key: cursorKey(last, ordering), id: last.id };
      }
    },

    async getAlert(id) {
      const result = await db.raw<{ rows: AlertRow[] }>(`SELECT ${SELECT_ALERT} FROM alerts WHERE id = ?::uuid`, [id]);
      const row = result.rows[0];
      return row ? toItem(row) : null;
    },

    async getNotifications(alertId) {
      return readNotifications(db, alertId);
    },

    async stats({ since, until, pairs }) {
      const bindings: unknown[] = [since];
      let extra = '';
      if (until !== undefined) {
        extra += ' AND observed_at < ?::timestamptz';
        bindings.push(until);
      }
      if (pairs.length) {
        extra += ' AND pair = ANY(?::text[])';
        bindings.push(pairs);
      }
      // GROUPING SETS adds the overall row (pair NULL) in the same scan, computed exactly by Postgres.
      const result = await db.raw<{ rows: (PairStats & { pair: string | null })[] }>(
        `SELECT pair,
                count(*)::int AS count,
                (count(*) FILTER (WHERE direction = 'up'))::int AS up,
                (count(*) FILTER (WHERE direction = 'down'))::int AS down,
                trim_scale(max(abs(change_percent)))::text AS max_abs_change_percent,
                ${isoColumn('max(observed_at)', 'last_alert_at')}
           FROM alerts
          WHERE observed_at >= ?::timestamptz${extra}
          GROUP BY GROUPING SETS ((pair), ())
          ORDER BY pair NULLS FIRST`,
        bindings as Knex.RawBinding[],
      );
      const rows = result.rows.map((r) => ({ ...r, last_alert_at: r.last_alert_at ? trimMicros(r.last_alert_at) : null }));
      const overall = rows.find((r) => r.pair === null);
      const { pair: _overall, ...overallStats } = overall ?? { pair: null, ...EMPTY_STATS };
      return { overall: overallStats, pairs: rows.filter((r): r is PairStats & { pair: string } => r.pair !== null) };
    },

    async timeseries({ since, until, bucketMs, pairs, direction }) {
      const bindings: unknown[] = [`${bucketMs} milliseconds`, since, until];
      let extra = '';
      if (pairs.length) {
        extra += ' AND pair = ANY(?::text[])';
        bindings.push(pairs);
      }
      if (direction) {
        extra += ' AND direction = ?';
        bindings.push(direction);
      }
      const result = await db.raw<{ rows: { ms: string; count: number; up: number; down: number }[] }>(
        `SELECT (extract(epoch FROM date_bin(?::interval, observed_at, timestamptz '1970-01-01 00:00:00+00')) * 1000)::bigint::text AS ms,
                count(*)::int AS count,
                (count(*) FILTER (WHERE direction = 'up'))::int AS up,
                (count(*) FILTER (WHERE direction = 'down'))::int AS down
           FROM alerts
          WHERE observed_at >= ?::timestamptz AND observed_at < ?::timestamptz${extra}
          GROUP BY 1
          ORDER BY 1`,
        bindings as Knex.RawBinding[],
      );
      const found = new Map(result.rows.map((r) => [Number(r.ms), r]));
      const start = Math.floor(Date.parse(since) / bucketMs) * bucketMs;
      const end = Date.parse(until);
      const points: TimeseriesPoint[] = [];
      for (let t = start; t < end; t += bucketMs) {
        const row = found.get(t);
        points.push({ t: new Date(t).toISOString(), count: row?.count ?? 0, up: row?.up ?? 0, down: row?.down ?? 0 });
      }
      return points;
    },
  };
}

const EMPTY_STATS: PairStats = { count: 0, up: 0, down: 0, max_abs_change_percent: null, last_alert_at: null };

/** Deliveries whose batch carried this alert (the outbox of migration 20261129000002, searched by its GIN index). */
async function readNotifications(db: Knex, alertId: string): Promise<NotificationItem[]> {
  const result = await db.raw<{ rows: NotificationItem[] }>(
    `SELECT id::text AS id, receiver_name AS receiver, channel AS kind, channel, target, delivery_id,
            COALESCE(held_for, CASE WHEN held_back THEN 'email_cap' END) AS held_for, status, attempts, last_error, held_back,
            ${isoColumn('next_attempt_at')}, ${isoColumn('sent_at')}, ${isoColumn('created_at')}
       FROM notifications
      WHERE alert_ids @> ARRAY[?::uuid]
      ORDER BY created_at, id`,
    [alertId],
  );
  return result.rows.map((r) => ({
    ...r,
    next_attempt_at: r.next_attempt_at && trimMicros(r.next_attempt_at),
    sent_at: r.sent_at && trimMicros(r.sent_at),
    created_at: r.created_at && trimMicros(r.created_at),
  }));
}
