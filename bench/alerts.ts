import { PAIR_RE, type AlertMessage } from '../shared/contract/alert';
import { toAlertRow } from '../master/ingest/alert-repository';
import { makeAlert } from '../test/helpers/alerts';
import { WRITTEN_ALERT_COLUMNS, alertCopyLine } from '../shared/read-model/alert-table';

/** The pairs a bench fleet spreads its alerts over (a realistic fleet has many streams, not one). */
export function benchPairs(count: number): string[] {
  const bases = ['BTC', 'ETH', 'XRP', 'LTC', 'SOL', 'ADA', 'DOT', 'DOGE', 'AVAX', 'LINK', 'XLM', 'ATOM', 'UNI', 'BCH', 'ETC', 'FIL'];
  const pairs = Array.from({ length: count }, (_, i) => `${bases[i % bases.length]}${i >= bases.length ? i : ''}-USD`);
  for (const p of pairs) if (!PAIR_RE.test(p)) throw new Error(`bad bench pair ${p}`);
  return pairs;
}

/** `count` valid, distinct contract alerts spread round-robin over `pairs`. */
export function benchAlerts(count: number, pairs: readonly string[]): AlertMessage[] {
  return Array.from({ length: count }, (_, i) => makeAlert({ pair: pairs[i % pairs.length]! }));
}

/** COPY column list matching `copyLine`. */
export const COPY_COLUMNS = WRITTEN_ALERT_COLUMNS.join(', ');

/** One COPY text-format line for the alert, built from the master's own row mapping (`toAlertRow`). */
export function copyLine(alert: AlertMessage): string {
  return alertCopyLine(toAlertRow(alert));
}
