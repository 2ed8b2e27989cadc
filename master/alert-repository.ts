import type { AlertMessage, BotConfigSnapshot, Direction } from '../shared/alert';
import type { Knex } from '../shared/db';

/** An alert as stored in Postgres (decimals exact, as the strings Postgres returns). */
export interface StoredAlert {
  readonly id: string;
  readonly botId: string;
  readonly pair: string;
  readonly direction: Direction;
  readonly price: string;
  readonly referencePrice: string;
  readonly changePercent: string;
  readonly thresholdPercent: string;
  readonly observedAt: Date;
  readonly config: BotConfigSnapshot;
  readonly receivedAt: Date;
}

interface AlertRow {
  id: string;
  bot_id: string;
  pair: string;
  direction: Direction;
  price: string;
  reference_price: string;
  change_percent: string;
  threshold_percent: string;
  observed_at: Date;
  config: BotConfigSnapshot;
  received_at: Date;
}

export interface AlertRepository {
  /**
   * Inserts the alerts in one multi-row statement, ignoring ids already stored (a redelivery).
   * Returns the ids actually inserted, so callers notify about new alerts only. Runs inside `trx` when given.
   */
  insertMany(alerts: readonly AlertMessage[], trx?: Knex.Transaction): Promise<string[]>;
  /** The stored alerts with these ids, oldest observation first. */
  findByIds(ids: readonly string[], trx?: Knex.Transaction): Promise<StoredAlert[]>;
}

/** Postgres caps a statement at 65535 bind parameters; 11 columns per row leaves room for 5957 rows. */
const MAX_ROWS_PER_STATEMENT = 5000;

/** Maps a contract message to its row. Exported for the ingest measurement (COPY comparison). */
export function toAlertRow(alert: AlertMessage): Omit<AlertRow, 'received_at' | 'observed_at' | 'config'> & { observed_at: string; config: string } {
  return {
    id: alert.id,
    bot_id: alert.botId,
    pair: alert.pair,
    direction: alert.direction,
    price: alert.price,
    reference_price: alert.referencePrice,
    change_percent: alert.changePercent,
    threshold_percent: alert.thresholdPercent,
    observed_at: alert.observedAt,
    // Serialised here: pg would turn a JS array into a Postgres array, so jsonb values always go as JSON text.
    config: JSON.stringify(alert.config),
  };
}

function fromRow(row: AlertRow): StoredAlert {
  return {
    id: row.id,
    botId: row.bot_id,
    pair: row.pair,
    direction: row.direction,
    price: row.price,
    referencePrice: row.reference_price,
    changePercent: row.change_percent,
    thresholdPercent: row.threshold_percent,
    observedAt: row.observed_at,
    config: row.config,
    receivedAt: row.received_at,
  };
}

/** Alert history over knex. Parameterised queries only. */
export function createAlertRepository(db: Knex): AlertRepository {
  return {
    async insertMany(alerts, trx) {
      const q = trx ?? db;
      const inserted: string[] = [];
      for (let i = 0; i < alerts.length; i += MAX_ROWS_PER_STATEMENT) {
        const rows = alerts.slice(i, i + MAX_ROWS_PER_STATEMENT).map(toAlertRow);
        const result: { id: string }[] = await q('alerts').insert(rows).onConflict('id').ignore().returning('id');
        for (const r of result) inserted.push(r.id);
      }
      return inserted;
    },
    async findByIds(ids, trx) {
      if (ids.length === 0) return [];
      const rows: AlertRow[] = await (trx ?? db)('alerts').whereIn('id', [...ids]).orderBy([{ column: 'observed_at' }, { column: 'id' }]);
      return rows.map(fromRow);
    },
  };
}
