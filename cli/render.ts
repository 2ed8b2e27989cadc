import Table from 'cli-table3';
import { Decimal } from '../shared/contract/decimal';
import type { AlertItem, StatsResult } from '../shared/read-model/alert-queries';
import type { FleetItem } from '../shared/read-model/fleet-view';
import type { BotItem } from '../shared/read-model/bots-repository';
import { describeMatchers, type SilenceItem } from '../shared/read-model/silences';
import type { ReceiverItem } from '../shared/read-model/receivers-repository';

/**
 * Human-readable tables for the terminal (cli-table3). CSV and JSON keep every digit; tables round the change to
 * 4 decimals and show times without the date noise when they are today.
 */

const plain = { style: { head: [] as string[], border: [] as string[], compact: true } };

/**
 * C0 controls, DEL, C1 controls (ESC and CSI start terminal escape sequences) and the bidirectional marks and overrides:
 * text that came from outside (a ticker's error message in a bot's last error, a bot id read from Redis) could otherwise
 * move the cursor, clear the screen, retitle the terminal or reorder what the reader sees.
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** `text` with every control character shown as a visible `\uXXXX` escape, safe to print on a terminal. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

type Cell = string | number;
/** One table row, every text cell made printable. */
const row = (cells: readonly Cell[]): Cell[] => cells.map((c) => (typeof c === 'string' ? printable(c) : c));

/** Rounds a decimal string for display, keeping its sign. */
function round(value: string | null, places: number): string {
  return value === null ? '-' : new Decimal(value).toDecimalPlaces(places).toFixed();
}

function when(iso: string | null, now: number): string {
  if (!iso) return '-';
  const t = new Date(iso);
  const sameDay = t.toISOString().slice(0, 10) === new Date(now).toISOString().slice(0, 10);
  return sameDay ? `${t.toISOString().slice(11, 19)}Z` : `${t.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

function ago(iso: string | null, now: number): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

export function alertTable(items: readonly AlertItem[], now: number): string {
  const table = new Table({ ...plain, head: ['observed at', 'pair', 'dir', 'change %', 'price', 'reference', 'threshold %', 'bot', 'id'] });
  for (const a of items) {
    const change = round(a.change_percent, 4);
    table.push(row([when(a.observed_at, now), a.pair, a.direction === 'up' ? 'up ▲' : 'down ▼', change.startsWith('-') ? change : `+${change}`, a.price, a.reference_price, a.threshold_percent, a.bot_id, a.id]));
  }
  return table.toString();
}

export function statsTable(stats: StatsResult, range: { since: string; until?: string; window: string | null }, now: number): string {
  const table = new Table({ ...plain, head: ['pair', 'alerts', 'up', 'down', 'largest |change| %', 'last alert'] });
  for (const p of stats.pairs) table.push(row([p.pair, p.count, p.up, p.down, round(p.max_abs_change_percent, 4), when(p.last_alert_at, now)]));
  const o = stats.overall;
  table.push(['all pairs', o.count, o.up, o.down, round(o.max_abs_change_percent, 4), when(o.last_alert_at, now)]);
  const title = range.window ? `Alerts in the last ${range.window} (since ${range.since})` : `Alerts from ${range.since} to ${range.until ?? 'now'}`;
  return `${title}\n${table.toString()}`;
}

/** The status cell: why an exhausted or expired bot stopped, and the alerts its cooldown suppressed. */
function fleetStatus(b: FleetItem): string {
  const status = b.status_reason ? `${b.status}: ${b.status_reason}` : b.status;
  const text = b.stale ? `STALE (${status})` : b.rate_limited ? `${status}, rate-limited` : status;
  return b.alerts_suppressed ? `${text}, ${b.alerts_suppressed} suppressed` : text;
}

/** A bot's rule in a few words: `reference` alone when it is today's. */
function describeRule(b: BotItem): string {
  const parts = [b.rule === 'window' ? `window ${b.window_ms ?? '?'} ms` : b.reference_mode];
  if (b.pending_polls !== 1) parts.push(`${b.pending_polls} polls`);
  if (b.cooldown_ms !== 0) parts.push(`cooldown ${b.cooldown_ms} ms`);
  if (b.max_alerts !== null) parts.push(b.max_alerts === 1 ? 'once' : `max ${b.max_alerts}`);
  if (b.expires_at !== null) parts.push(`until ${b.expires_at}`);
  return parts.join(', ');
}

export function fleetTable(bots: readonly FleetItem[], now: number): string {
  if (bots.length === 0) return 'No bot has reported yet.';
  const table = new Table({ ...plain, head: ['bot', 'pair', 'status', 'last price', 'last fetch', 'errors', 'last error', 'heartbeat'] });
  for (const b of bots) {
    table.push(row([
      b.bot_id,
      b.pair,
      fleetStatus(b),
      b.last_price ?? '-',
      ago(b.last_fetch_at, now),
      b.consecutive_errors,
      b.last_error ? b.last_error.slice(0, 40) : '-',
      ago(b.heartbeat_at, now),
    ]));
  }
  return table.toString();
}

export function botsTable(bots: readonly BotItem[], now: number): string {
  if (bots.length === 0) return 'No bots yet: add one with `npm run alerts -- bots add <pair>`.';
  const table = new Table({ ...plain, head: ['bot', 'pair', 'state', 'interval ms', 'threshold %', 'price', 'rule', 'source', 'version', 'changed', 'by'] });
  for (const b of bots) {
    table.push(row([
      b.bot_id,
      b.pair,
      b.enabled ? 'enabled' : 'PAUSED',
      b.interval_ms,
      b.threshold_percent,
      b.price_field,
      describeRule(b),
      b.source === 'compose' ? `compose (${b.service ?? '-'})` : 'api',
      b.version,
      ago(b.updated_at, now),
      b.updated_by,
    ]));
  }
  return table.toString();
}

export function silencesTable(silences: readonly SilenceItem[], now: number): string {
  if (silences.length === 0) return 'No silences: add one with `npm run alerts -- silences add --pair P --duration 1h --comment "why"`.';
  const table = new Table({ ...plain, head: ['id', 'matchers', 'state', 'starts', 'ends', 'comment', 'by', 'expired by'] });
  for (const s of silences) {
    table.push(row([s.id, describeMatchers(s.matchers), s.state, when(s.starts_at, now), when(s.expired_at ?? s.ends_at, now), s.comment.slice(0, 40), s.created_by, s.expired_by ?? '-']));
  }
  return table.toString();
}

export function receiversTable(receivers: readonly ReceiverItem[], now: number): string {
  if (receivers.length === 0) return 'No receivers: set MAIL_TO or WEBHOOK_URL, or add one with `npm run alerts -- receivers add <name> --kind email --to you@example.com`.';
  const table = new Table({ ...plain, head: ['name', 'kind', 'target', 'match', 'quiet hours', 'group wait', 'source', 'changed', 'by'] });
  for (const r of receivers) {
    const match = [r.match.pairs?.join(','), r.match.directions?.join(','), r.match.min_change === undefined ? undefined : `>= ${r.match.min_change}%`].filter(Boolean).join(' ') || 'everything';
    const quiet = r.quiet_hours ? `${r.quiet_hours.start}-${r.quiet_hours.end} ${r.quiet_hours.tz}` : '-';
    const wait = Math.max(r.group_wait_ms, r.digest_seconds * 1000);
    table.push(row([r.name, r.kind, Object.values(r.target).join(' '), match, quiet, wait > 0 ? `${wait} ms` : '-', r.source, ago(r.updated_at, now), r.updated_by]));
  }
  return table.toString();
}
