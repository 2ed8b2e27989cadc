import { serializeAlertBatch, type AlertMessage } from '../../shared/contract/alert';
import type { Knex } from '../../shared/platform/db';
import { describeError } from '../../shared/platform/errors';
import type { Logger } from '../../shared/platform/logger';
import { publishSharded, type Redis } from '../../shared/platform/redis';
import type { RedisKeys } from '../../shared/contract/redis-keys';
import type { AlertRepository } from './alert-repository';
import type { MasterMetrics } from '../metrics';
import type { Outbox } from '../notify/outbox';
import { createSilencesRepository, type SilencesRepository } from '../../shared/read-model/silences-repository';

/** The outcome of storing one batch. */
export interface StoreResult {
  /** Alerts stored by this call (not seen before), in input order. */
  readonly inserted: AlertMessage[];
  /** Alerts whose id was already stored. */
  readonly duplicates: number;
  /** Alerts the database refused (a value out of range, say), with its reason: the caller dead-letters them. */
  readonly rejected: { alert: AlertMessage; reason: string }[];
}

export interface AlertStore {
  /**
   * Stores a batch and its notification outbox rows in ONE transaction, then (after commit) logs each new alert,
   * publishes the batch's new alerts on the stored-alerts channel (one message) and nudges the notification loop.
   * Throws when Postgres is unreachable: nothing was stored and the caller retries the same batch later.
   */
  store(alerts: readonly AlertMessage[]): Promise<StoreResult>;
}

export interface AlertStoreDeps {
  readonly db: Knex;
  readonly repository: AlertRepository;
  readonly outbox: Outbox;
  /** A regular connection, for PUBLISH after commit. */
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly logger: Logger;
  readonly metrics: MasterMetrics;
  /** Called after a commit that wrote outbox rows. */
  readonly onNotificationsQueued?: () => void;
  /** Marks new alerts that an active silence matches (`alerts.silenced_by`). @defaultValue the silences table over `db` */
  readonly silences?: SilencesRepository;
}

/**
 * SQLSTATE classes that mean "this data is wrong", not "the database is unavailable": 22 data exception (numeric overflow,
 * bad timestamp), 23 integrity constraint violation. Retrying such a batch can never succeed.
 */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}

export function createAlertStore(deps: AlertStoreDeps): AlertStore {
  const log = deps.logger.child({ component: 'ingest' });
  // The alert line carries only the alert's own public fields (never config or secrets), so it skips the root logger's
  // redaction: its wildcard paths walk every logged object and doubled the cost of this one-line-per-alert hot path.
  const alertLog = deps.logger.child({ component: 'notify', channel: 'log' }, { redact: [] });
  let databaseDown = false;
  const silences = deps.silences ?? createSilencesRepository(deps.db);

  /** `silenced`: alert id -> the silence that muted it (for the after-commit log line). */
  async function commit(alerts: readonly AlertMessage[]): Promise<{ inserted: AlertMessage[]; queued: number; silenced: Map<string, string> }> {
    return deps.db.transaction(async (trx) => {
      const ids = new Set(await deps.repository.insertMany(alerts, trx));
      const inserted = alerts.filter((a) => ids.delete(a.id));
      // Before the outbox rows, in the same transaction: the outbox leaves out alerts with silenced_by set, and a silence
      // created after this commit cannot reach back to an alert already queued. The silence is the one active at the
      // alert's observed_at (not now): a backlog observed during a maintenance window and ingested after it stays muted,
      // and a redelivered alert gets the same answer whenever it arrives.
      const silenced = await silences.markSilenced(trx, inserted);
      const queued = await deps.outbox.enqueue(trx, inserted.map((a) => a.id));
      return { inserted, queued, silenced };
    });
  }

  /** Commits a batch; when the database refuses its data, finds the offending alerts one by one. */
  async function commitIsolatingBadData(alerts: readonly AlertMessage[]): Promise<{ inserted: AlertMessage[]; queued: number; silenced: Map<string, string>; rejected: StoreResult['rejected'] }> {
    try {
      return { ...(await commit(alerts)), rejected: [] };
    } catch (err) {
      if (!isDataError(err)) throw err;
      if (alerts.length === 1) return { inserted: [], queued: 0, silenced: new Map(), rejected: [{ alert: alerts[0]!, reason: `rejected by the database: ${describeError(err)}` }] };
      const result = { inserted: [] as AlertMessage[], queued: 0, silenced: new Map<string, string>(), rejected: [] as StoreResult['rejected'] };
      for (const alert of alerts) {
        const one = await commitIsolatingBadData([alert]);
        result.inserted.push(...one.inserted);
        result.queued += one.queued;
        for (const [alertId, silenceId] of one.silenced) result.silenced.set(alertId, silenceId);
        result.rejected.push(...one.rejected);
      }
      return result;
    }
  }

  async function afterCommit(inserted: readonly AlertMessage[], silenced: ReadonlyMap<string, string>): Promise<void> {
    for (const a of inserted) {
      const silence = silenced.get(a.id);
      alertLog.info(
        { alertId: a.id, botId: a.botId, pair: a.pair, direction: a.direction, changePercent: a.changePercent, price: a.price, referencePrice: a.referencePrice, thresholdPercent: a.thresholdPercent, observedAt: a.observedAt, ...(silence ? { silencedBy: silence } : {}) },
        `alert ${a.pair} ${a.direction} ${a.changePercent}%${silence ? ' (silenced)' : ''}`,
      );
    }
    if (inserted.length === 0) return;
    const perPair = new Map<string, number>();
    for (const a of inserted) perPair.set(a.pair, (perPair.get(a.pair) ?? 0) + 1);
    for (const [pair, n] of perPair) deps.metrics.alertsIngested.inc({ pair }, n);
    try {
      // The whole batch in one message: a PUBLISH per alert cost a sixth of the master's ingest CPU.
      await publishSharded(deps.redis, deps.keys.storedAlertsChannel, serializeAlertBatch(inserted));
    } catch (err) {
      // The rows are committed; only the dashboard's live feed misses them (it reloads from the API).
      log.warn({ err: describeError(err), count: inserted.length }, 'could not announce stored alerts');
    }
  }

  return {
    async store(alerts) {
      if (alerts.length === 0) return { inserted: [], duplicates: 0, rejected: [] };
      let result: Awaited<ReturnType<typeof commitIsolatingBadData>>;
      try {
        result = await commitIsolatingBadData(alerts);
      } catch (err) {
        deps.metrics.ingestFailures.inc();
        if (!databaseDown) log.warn({ err: describeError(err) }, 'postgres unavailable; alerts stay pending until it is back');
        databaseDown = true;
        throw err;
      }
      if (databaseDown) log.info('postgres available again');
      databaseDown = false;
      deps.metrics.ingestBatchSize.observe(alerts.length);
      const duplicates = alerts.length - result.inserted.length - result.rejected.length;
      if (duplicates > 0) deps.metrics.alertsDuplicate.inc(duplicates);
      await afterCommit(result.inserted, result.silenced);
      if (result.queued > 0) deps.onNotificationsQueued?.();
      return { inserted: result.inserted, duplicates, rejected: result.rejected };
    },
  };
}
