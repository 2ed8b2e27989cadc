import { Client } from 'pg';
import type { BenchDatabase } from './resources';

const CHANNEL = 'bench_alerts_committed';

/**
 * Learns when each alert row is committed, to the millisecond, without trusting the master's own clock or events:
 * a statement-level trigger (installed only in the bench's own database) sends the inserted ids with pg_notify, and
 * Postgres delivers notifications exactly when the inserting transaction commits. The trigger's cost is a small part
 * of the measured latency (one string_agg per insert statement).
 */
export async function listenForCommits(db: BenchDatabase, onCommit: (ids: string[], atMs: number) => void): Promise<{ close(): Promise<void> }> {
  await db.db.raw(`
    CREATE OR REPLACE FUNCTION bench_notify_committed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE chunk text;
    BEGIN
      -- NOTIFY payloads are capped at 8000 bytes: 150 ids (37 bytes each) per notification.
      FOR chunk IN SELECT string_agg(id::text, ',') FROM (SELECT id, (row_number() OVER ()) / 150 AS g FROM new_rows) t GROUP BY g LOOP
        PERFORM pg_notify('${CHANNEL}', chunk);
      END LOOP;
      RETURN NULL;
    END $$;
    DROP TRIGGER IF EXISTS bench_notify_committed ON alerts;
    CREATE TRIGGER bench_notify_committed AFTER INSERT ON alerts REFERENCING NEW TABLE AS new_rows
      FOR EACH STATEMENT EXECUTE FUNCTION bench_notify_committed();
  `);
  const client = new Client({ connectionString: db.url });
  await client.connect();
  client.on('notification', (n) => {
    const at = performance.timeOrigin + performance.now();
    if (n.channel === CHANNEL && n.payload) onCommit(n.payload.split(','), at);
  });
  await client.query(`LISTEN ${CHANNEL}`);
  return {
    async close() {
      await client.end();
    },
  };
}

/** Epoch milliseconds with sub-millisecond resolution (same clock as `listenForCommits`). */
export const nowMs = () => performance.timeOrigin + performance.now();
