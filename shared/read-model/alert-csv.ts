import { stringify } from 'csv-stringify/sync';
import { ALERT_COLUMNS, type AlertItem } from './alert-queries';

/**
 * CSV rendering of alerts, shared by GET /alerts.csv and the CLI: RFC 4180 via csv-stringify, a header row of the
 * snake_case column names, `config` as JSON text, one string per batch (one write per batch, not per row).
 */
export const ALERT_CSV_HEADER = stringify([[...ALERT_COLUMNS]]);

export function alertCsvBatch(items: readonly AlertItem[]): string {
  return stringify(
    items.map((item) => ({ ...item, config: JSON.stringify(item.config) })),
    { columns: [...ALERT_COLUMNS] },
  );
}

/** The whole export: the header, then each batch of `batches` as one CSV string. */
export async function* alertCsvChunks(batches: AsyncIterable<readonly AlertItem[]>): AsyncGenerator<string> {
  yield ALERT_CSV_HEADER;
  for await (const batch of batches) yield alertCsvBatch(batch);
}
