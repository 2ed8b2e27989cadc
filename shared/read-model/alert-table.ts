/**
 * The `alerts` table as every reader and writer sees it: its column list and the COPY text encoding of a row. The
 * ingest writes rows with it, the read model selects and exports in the same order, and the bench and test fixtures
 * load rows with it, so a new column is added in one place.
 */

/** The columns an alert row carries when written, in COPY order (received_at is the database's own default). */
export const WRITTEN_ALERT_COLUMNS = [
  'id',
  'bot_id',
  'pair',
  'direction',
  'price',
  'reference_price',
  'change_percent',
  'threshold_percent',
  'observed_at',
  'config',
] as const;

/**
 * Every column of a stored alert, in the order the API's CSV export writes them. `silenced_by` is set by the ingest after
 * the insert, in the same transaction (see shared/read-model/silences-repository.ts), so it is not a written column.
 */
export const ALERT_COLUMNS = [...WRITTEN_ALERT_COLUMNS, 'received_at', 'silenced_by'] as const;

export type WrittenAlertColumn = (typeof WRITTEN_ALERT_COLUMNS)[number];

/** A written row's values as text (config as JSON text), keyed by column. */
export type AlertRowText = Readonly<Record<WrittenAlertColumn, string>>;

// COPY text format: a backslash, tab, newline or carriage return inside a value must be escaped.
const COPY_ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** A value escaped for PostgreSQL's COPY text format. */
export function escapeCopyText(value: string): string {
  return value.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!);
}

/** One line of COPY text format, columns in `WRITTEN_ALERT_COLUMNS` order, newline included. */
export function alertCopyLine(row: AlertRowText): string {
  let line = '';
  for (let i = 0; i < WRITTEN_ALERT_COLUMNS.length; i++) {
    if (i > 0) line += '\t';
    line += escapeCopyText(row[WRITTEN_ALERT_COLUMNS[i]!]);
  }
  return `${line}\n`;
}

/** `COPY <table> (<written columns>) FROM STDIN`, text format. */
export function alertCopySql(table: string): string {
  return `COPY ${table} (${WRITTEN_ALERT_COLUMNS.join(', ')}) FROM STDIN`;
}
