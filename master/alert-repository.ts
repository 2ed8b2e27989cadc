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

/**
 * One INSERT ... SELECT FROM unnest() with one array parameter per column: ten parameters whatever the batch size, so
 * Postgres parses a short statement and there is no 65535-parameter ceiling. Measured (master/measure-ingest.ts) about
 * 2-4x faster than knex's multi-row VALUES insert for batches of 1000, and on par with COPY into a temporary table, which
 * needs a temp table per connection and a CSV encoder.
 */
const INSERT_SQL = `INSERT INTO alerts (id, bot_id, pair, direction, price, reference_price, change_percent, threshold_percent, observed_at, config)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::numeric[], $7::numeric[], $8::numeric[], $9::timestamptz[], $10::jsonb[])
ON CONFLICT (id) DO NOTHING
RETURNING id`;

/** The pg connection knex holds (inside a transaction: the transaction's own connection). */
interface PgQueryable {
  query<R>(sql: string, values: unknown[]): Promise<{ rows: R[] }>;
}

/** Maps a contract message to its row's values. Exported for the ingest measurement (strategy comparison). */
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
      if (alerts.length === 0) return [];
      const rows = alerts.map(toAlertRow);
      const column = <K extends keyof (typeof rows)[number]>(key: K) => rows.map((r) => r[key]);
      const values = [
        column('id'),
        column('bot_id'),
        column('pair'),
        column('direction'),
        column('price'),
        column('reference_price'),
        column('change_percent'),
        column('threshold_percent'),
        column('observed_at'),
        column('config'),
      ];
      // knex would expand array bindings into value lists, so the statement goes to pg directly. Inside a transaction
      // knex hands out the transaction's connection and releasing it is a no-op.
      const q = trx ?? db;
      const connection = (await q.client.acquireConnection()) as PgQueryable;
      try {
        const result = await connection.query<{ id: string }>(INSERT_SQL, values);
        return result.rows.map((r) => r.id);
      } finally {
        await q.client.releaseConnection(connection);
      }
    },
    async findByIds(ids, trx) {
      if (ids.length === 0) return [];
      const rows: AlertRow[] = await (trx ?? db)('alerts').whereIn('id', [...ids]).orderBy([{ column: 'observed_at' }, { column: 'id' }]);
      return rows.map(fromRow);
    },
  };
}
