import { LRUCache } from 'lru-cache';
import { isDatabaseUnreachable, type Knex } from '../platform/db';
import { describeError, toError } from '../platform/errors';
import type { Logger } from '../platform/logger';
import { withTimeout } from '../platform/retry';
import { createAlertQueries, cursorAfter, type AlertItem, type AlertQueries } from './alert-queries';

/**
 * Alert reads on a streaming replica (DATABASE_READ_URL), with the primary as the fallback.
 *
 * Only the alert read model goes here (lists, details, stats, time series, CSV): rows that ingest writes and the
 * readers never write themselves, so a replica a moment behind shows a moment-old history and nothing else. Whatever a
 * reader writes and reads back (bots, the audit, silences, receivers) stays on the primary and never passes through
 * this module.
 *
 * When the replica cannot answer (refused, reset, shut down, a connection that does not open within its connect
 * timeout, a query that gets no answer within its read timeout) the read is served by the primary instead: the warning
 * is logged once per outage, every such read counts in `onFallback`, and for `retryAfterMs` reads go straight to the
 * primary rather than each paying a connect attempt. A replica's query cancelled for a conflict with recovery (it
 * needed rows that replay removed) is also re-run on the primary. With `maxLagMs`, reads also go to the primary while
 * the replica replays further behind than that.
 */

/** Why a read went to the primary although a replica is configured. */
export type FallbackReason =
  /** The replica refused, dropped or did not answer the connection or the query. */
  | 'unreachable'
  /** The replica replays further behind than DATABASE_READ_MAX_LAG. */
  | 'lagging'
  /** The replica cancelled the query for a conflict with recovery. */
  | 'conflict';

/** The replica as GET /ready reports it. */
export interface ReplicaReport {
  /** "ok", or "down: <reason>". */
  readonly status: string;
  /** Where alert reads go now: the replica, or the primary (down, or lagging past the limit). */
  readonly reads_from: 'replica' | 'primary';
  /** False when DATABASE_READ_URL points at a server that is not a standby. Null when unknown (down). */
  readonly in_recovery: boolean | null;
  /** True while replay is paused (pg_wal_replay_pause()). Null when unknown. */
  readonly replay_paused: boolean | null;
  /**
   * 0 when the replica has replayed all the WAL the primary has written; otherwise the age of the newest transaction it
   * has replayed (now() - pg_last_xact_replay_timestamp()). Null when unknown.
   */
  readonly lag_ms: number | null;
  /** WAL bytes written on the primary and not yet replayed on the replica (0 when caught up). Null when unknown. */
  readonly lag_bytes: number | null;
}

export interface ReplicaReadsDeps {
  /** The readers' pool on DATABASE_URL (the API's own pool, or the CLI's). */
  readonly primary: Knex;
  /** The pool on DATABASE_READ_URL (with a connect timeout and a read timeout, see createDb). */
  readonly replica: Knex;
  readonly logger: Logger;
  /** Reads go to the primary while the replica's `lag_ms` exceeds this. @defaultValue none (any lag is served) */
  readonly maxLagMs?: number;
  /** After the replica failed, reads skip it this long before trying it again (a passing check ends it early). @defaultValue 5000 */
  readonly retryAfterMs?: number;
  /** With `maxLagMs`, one lag measurement decides the reads of this long. @defaultValue 1000 */
  readonly lagSampleMs?: number;
  /** Longest one lag measurement may take before the replica counts as unreachable. @defaultValue 2000 */
  readonly probeTimeoutMs?: number;
  /** Called for every read served by the primary instead of the replica (a metric). */
  readonly onFallback?: (reason: FallbackReason) => void;
  /** Called with every measurement (metrics). */
  readonly onReport?: (report: ReplicaReport) => void;
  /** @defaultValue Date.now */
  readonly now?: () => number;
}

export interface ReplicaReads {
  /** The alert read model, routed: replica first, primary as described above. */
  readonly queries: AlertQueries;
  /** Measures the replica now (reachability, replay state and lag); a passing check also ends a fallback period. */
  check(timeoutMs?: number): Promise<ReplicaReport>;
}

/** SQLSTATE 40001 with this text: a standby cancelled the query because replay had to remove rows it was reading. */
function isRecoveryConflict(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  return (e?.code === '40001' || e?.code === '40P01') && /conflict with recovery/i.test(e?.message ?? '');
}

/**
 * The reason in a failed read's error, for a log line or /ready: knex prefixes the message of a failed query with its
 * SQL ("SELECT ... - Connection terminated unexpectedly"), which says nothing about the replica.
 */
function reasonOf(err: unknown): string {
  const e = toError(err) as Error & { code?: unknown };
  const at = e.message.lastIndexOf(' - ');
  if (at < 0 || !/^\s*(SELECT|WITH)\s/i.test(e.message)) return describeError(e);
  const bare = Object.assign(new Error(e.message.slice(at + 3)), { code: e.code });
  bare.name = e.name;
  return describeError(bare);
}

interface ReplicaRow {
  in_recovery: boolean;
  replay_paused: boolean | null;
  lag_bytes: string | null;
  replayed_all_received: boolean;
  replay_age_ms: string | null;
}

export function createReplicaReads(deps: ReplicaReadsDeps): ReplicaReads {
  const { primary, replica, maxLagMs, retryAfterMs = 5000, lagSampleMs = 1000, probeTimeoutMs = 2000 } = deps;
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'replica-reads' });
  const onReplica = createAlertQueries(replica);
  const onPrimary = createAlertQueries(primary);
  /** Reads skip the replica until then (ms since the epoch). */
  let downUntil = 0;
  /** Where reads went last: a change is logged once, not per read. */
  let servingFrom: 'replica' | { reason: FallbackReason; detail: string } = 'replica';
  let sample: { at: number; report: ReplicaReport } | undefined;
  let sampling: Promise<ReplicaReport> | undefined;
  /**
   * Alerts found on the primary only (announced on the live feed before the replica replayed them): their
   * notifications are read there too, so one detail answer never mixes the two servers.
   */
  const primaryOnly = new LRUCache<string, true>({ max: 1000, ttl: 60_000 });

  function servedBy(next: typeof servingFrom): void {
    const before = servingFrom;
    servingFrom = next;
    if (next === 'replica') {
      if (before !== 'replica') log.info({ was: before.reason }, 'alert reads back on the read replica');
    } else if (before === 'replica' || before.reason !== next.reason) {
      log.warn({ reason: next.reason, detail: next.detail }, `alert reads fall back to the primary (DATABASE_URL): the read replica is ${next.reason === 'lagging' ? 'too far behind' : 'unreachable'}`);
    }
  }

  function markDown(err: unknown): void {
    downUntil = now() + retryAfterMs;
    sample = undefined;
    servedBy({ reason: 'unreachable', detail: reasonOf(err) });
  }

  async function measure(timeoutMs: number): Promise<ReplicaReport> {
    try {
      const report = await withTimeout(
        (async () => {
          // The primary's position first: a replica that replays past it while we ask shows 0, never a negative lag. The
          // insert position, not the write one: a commit still in the WAL buffers (synchronous_commit=off) is visible
          // on the primary already, and missing from the replica.
          let primaryLsn: string | null = null;
          try {
            primaryLsn = ((await primary.raw<{ rows: { lsn: string }[] }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]?.lsn) ?? null;
          } catch {
            // The primary down (or itself in recovery): the replica is still reported, its byte lag unknown.
          }
          const result = await replica.raw<{ rows: ReplicaRow[] }>(
            `SELECT pg_is_in_recovery() AS in_recovery,
                    CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END AS replay_paused,
                    CASE WHEN NOT pg_is_in_recovery() THEN '0'
                         ELSE pg_wal_lsn_diff(?::pg_lsn, pg_last_wal_replay_lsn())::bigint::text END AS lag_bytes,
                    pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() AS replayed_all_received,
                    round(extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::bigint::text AS replay_age_ms`,
            [primaryLsn],
          );
          const row = result.rows[0]!;
          const lagBytes = row.lag_bytes === null ? null : Math.max(0, Number(row.lag_bytes));
          // Caught up: nothing of the primary's WAL left to replay (or, the primary unknown, nothing received left). The
          // age of the last replayed transaction only measures lag while there is something left: on a quiet primary
          // it grows with no lag at all.
          const caughtUp = !row.in_recovery || (lagBytes === null ? row.replayed_all_received : lagBytes === 0);
          const lagMs = caughtUp ? 0 : row.replay_age_ms === null ? null : Math.max(0, Number(row.replay_age_ms));
          return { in_recovery: row.in_recovery, replay_paused: row.replay_paused, lag_ms: lagMs, lag_bytes: lagBytes };
        })(),
        timeoutMs,
        'the read replica',
      );
      const lagging = maxLagMs !== undefined && (report.lag_ms === null ? (report.lag_bytes ?? 1) > 0 : report.lag_ms > maxLagMs);
      downUntil = 0;
      servedBy(lagging ? { reason: 'lagging', detail: `lag ${report.lag_ms ?? 'unknown'} ms, limit ${maxLagMs} ms` } : 'replica');
      const full: ReplicaReport = { status: 'ok', reads_from: lagging ? 'primary' : 'replica', ...report };
      sample = { at: now(), report: full };
      deps.onReport?.(full);
      return full;
    } catch (err) {
      markDown(err);
      const down: ReplicaReport = { status: `down: ${reasonOf(err)}`, reads_from: 'primary', in_recovery: null, replay_paused: null, lag_ms: null, lag_bytes: null };
      deps.onReport?.(down);
      return down;
    }
  }

  /** Null: read the replica; otherwise why this read goes to the primary. */
  async function choose(): Promise<FallbackReason | null> {
    if (now() < downUntil) return 'unreachable';
    if (maxLagMs === undefined) return null;
    if (!sample || now() - sample.at >= lagSampleMs) {
      // Concurrent reads share one measurement.
      sampling ??= measure(probeTimeoutMs).finally(() => {
        sampling = undefined;
      });
      await sampling;
    }
    if (now() < downUntil) return 'unreachable';
    return sample?.report.reads_from === 'primary' ? 'lagging' : null;
  }

  function fellBack(reason: FallbackReason): AlertQueries {
    deps.onFallback?.(reason);
    return onPrimary;
  }

  /** Runs `work` on the replica, or on the primary when the replica is out (or fails in a way the primary can fix). */
  async function run<T>(work: (q: AlertQueries) => Promise<T>): Promise<T> {
    const reason = await choose();
    if (reason) return work(fellBack(reason));
    try {
      const result = await work(onReplica);
      if (servingFrom !== 'replica') servedBy('replica');
      return result;
    } catch (err) {
      if (isDatabaseUnreachable(err)) {
        markDown(err);
        return work(fellBack('unreachable'));
      }
      if (isRecoveryConflict(err)) {
        log.warn({ err: reasonOf(err) }, 'a read replica query was cancelled by recovery; re-running it on the primary');
        return work(fellBack('conflict'));
      }
      throw err;
    }
  }

  const queries: AlertQueries = {
    listAlerts: (filter, options) => run((q) => q.listAlerts(filter, options)),
    stats: (range) => run((q) => q.stats(range)),
    timeseries: (range) => run((q) => q.timeseries(range)),

    async getAlert(id) {
      const found = await run((q) => q.getAlert(id));
      if (found) return found;
      // Not on the replica (yet?): an alert the live feed just announced may still be on its way, so the primary decides.
      if ((await choose()) !== null) return null;
      const onPrimaryOnly = await onPrimary.getAlert(id);
      if (onPrimaryOnly) primaryOnly.set(id, true);
      return onPrimaryOnly;
    },

    getNotifications: (alertId) => (primaryOnly.has(alertId) ? onPrimary.getNotifications(alertId) : run((q) => q.getNotifications(alertId))),

    /**
     * Batch after batch from the replica; when the replica fails, the stream goes on from the primary at the keyset
     * position after the last row it yielded (the primary holds every row the replica had): no row twice, none left out.
     */
    async *streamAlerts(filter, options) {
      const reason = await choose();
      if (reason) {
        yield* fellBack(reason).streamAlerts(filter, options);
        return;
      }
      const batches = onReplica.streamAlerts(filter, options);
      let last: AlertItem | undefined;
      for (;;) {
        let next: IteratorResult<AlertItem[]>;
        try {
          next = await batches.next();
        } catch (err) {
          const unreachable = isDatabaseUnreachable(err);
          if (!unreachable && !isRecoveryConflict(err)) throw err;
          if (unreachable) markDown(err);
          const cursor = last ? cursorAfter(last, options.ordering) : options.cursor;
          yield* fellBack(unreachable ? 'unreachable' : 'conflict').streamAlerts(filter, { ...options, cursor });
          return;
        }
        if (next.done) return;
        last = next.value[next.value.length - 1] ?? last;
        yield next.value;
      }
    },
  };

  return {
    queries,
    check: (timeoutMs = probeTimeoutMs) => measure(timeoutMs),
  };
}
