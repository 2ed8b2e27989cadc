import { stringify, type Options } from 'csv-stringify/sync';
import { SIGNED_DECIMAL_RE } from '../contract/decimal';
import { ALERT_COLUMNS, type AlertItem } from './alert-queries';

/**
 * CSV rendering of alerts, shared by GET /alerts.csv and the CLI: RFC 4180 via csv-stringify, a header row of the
 * snake_case column names, `config` as JSON text, one string per batch (one write per batch, not per row).
 *
 * Formula injection: a cell starting with =, +, -, @, tab or CR (or their full-width forms) is prefixed with a single
 * quote (csv-stringify's `escape_formulas`), so a spreadsheet shows it as text instead of running it. The decimal
 * columns are the one exception: a value that is a plain decimal such as "-0.5" (SIGNED_DECIMAL_RE: an optional
 * minus, digits, an optional fraction, nothing else) is a number to every spreadsheet, never a formula, and is written
 * as it is so negative changes stay numbers. Anything else in those columns is escaped like text.
 */
const DECIMAL_COLUMNS: ReadonlySet<string> = new Set<keyof AlertItem>(['price', 'reference_price', 'change_percent', 'threshold_percent']);

const CSV_OPTIONS: Options = {
  escape_formulas: true,
  cast: {
    string: (value, context) =>
      typeof context.column === 'string' && DECIMAL_COLUMNS.has(context.column) && SIGNED_DECIMAL_RE.test(value)
        ? { value, escape_formulas: false }
        : value,
  },
};

export const ALERT_CSV_HEADER = stringify([[...ALERT_COLUMNS]]);

export function alertCsvBatch(items: readonly AlertItem[]): string {
  return stringify(
    items.map((item) => ({ ...item, config: JSON.stringify(item.config) })),
    { ...CSV_OPTIONS, columns: [...ALERT_COLUMNS] },
  );
}

/** The whole export: the header, then each batch of `batches` as one CSV string. */
export async function* alertCsvChunks(batches: AsyncIterable<readonly AlertItem[]>): AsyncGenerator<string> {
  yield ALERT_CSV_HEADER;
  for await (const batch of batches) yield alertCsvBatch(batch);
}
