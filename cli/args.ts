import { parseArgs } from 'node:util';
import { BOT_ID_RE } from '../shared/contract/alert';
import { BadRequestError } from '../shared/read-model/bad-request';
import {
  ALERT_CSV_PARAMS,
  MAX_PAGE_LIMIT,
  parseParams,
  STATS_PARAMS,
  resolveStatsRange,
  toAlertFilter,
  type AlertFilter,
  type Ordering,
} from '../shared/read-model/query-params';

/**
 * Command-line parsing for `npm run alerts`. Filters go through the API's own parameter parsers (query-params.ts), so
 * the CLI accepts exactly what GET /alerts accepts and refuses it with the same explanation.
 */

export const FORMATS = ['table', 'csv', 'json'] as const;
export type Format = (typeof FORMATS)[number];

export type CliCommand =
  | { readonly kind: 'help' }
  | { readonly kind: 'alerts'; readonly filter: AlertFilter; readonly ordering: Ordering; readonly limit: number | 'all'; readonly format: Format }
  | { readonly kind: 'stats'; readonly since: string; readonly until?: string; readonly window: string | null; readonly pairs: readonly string[]; readonly format: Format }
  | { readonly kind: 'fleet'; readonly format: Format }
  | { readonly kind: 'fleet-remove'; readonly botId: string };

/** Connection settings given as flags; they override DATABASE_URL / REDIS_URL / REDIS_KEY_PREFIX. */
export interface CliConnectionFlags {
  readonly DATABASE_URL?: string;
  readonly REDIS_URL?: string;
  readonly REDIS_KEY_PREFIX?: string;
}

/** A bad command line: main prints the message and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const USAGE = `Usage:
  npm run alerts -- [filters] [--format table|csv|json] [--limit N|all] [--ordering O]
  npm run alerts -- stats [--window 20m | --since T [--until T]] [--pair P] [--format table|json]
  npm run alerts -- fleet [--format table|json]
  npm run alerts -- fleet remove <bot_id>    forget a bot now (one still running reappears with its next heartbeat)

Filters (the same as GET /alerts):
  --pair P            a pair such as BTC-USD; repeat it or give a comma list
  --direction D       up or down
  --since T           ISO-8601 (2026-11-29, 2026-11-29T19:45:00Z) or relative (20m, 1h, 7d ago)
  --until T           same forms; exclusive
  --min-change X      absolute change percent at least X (e.g. 0.5)
  --ordering=O        -observed_at (default), observed_at, -change_percent, change_percent
                      (write it with "=": a value starting with "-" would read as a flag)
  --limit N|all       rows to print [default: 50 for table, all for csv and json]

Connection (or the environment variables DATABASE_URL, REDIS_URL, REDIS_KEY_PREFIX):
  --database-url URL  --redis-url URL  --redis-key-prefix P

Stopped bots, and bots whose heartbeat expired, leave the fleet once their last heartbeat is older than FLEET_RETENTION
(default 24h).

Exit codes: 0 done, 1 the database or Redis failed (or fleet remove names an unknown bot), 2 bad command line or configuration.`;

const FLAG_OF: Record<string, string> = { min_change: '--min-change' };
const flagName = (parameter: string) => FLAG_OF[parameter] ?? `--${parameter}`;

/** Re-words the API's 400 as a command-line error naming the flag. */
function usageFrom(err: unknown): never {
  if (err instanceof BadRequestError) {
    const allowed = Array.isArray(err.allowed) ? `one of ${err.allowed.join(', ')}` : err.allowed;
    throw new UsageError(`${flagName(err.parameter)} ${JSON.stringify(err.value)} is invalid: expected ${allowed}`);
  }
  throw err;
}

function pickFormat(value: string | undefined, allowed: readonly Format[]): Format {
  const format = (value ?? 'table') as Format;
  if (!allowed.includes(format)) throw new UsageError(`--format ${JSON.stringify(value)} is invalid: expected one of ${allowed.join(', ')}`);
  return format;
}

/** Parses argv (after `npm run alerts --`) into a command and connection overrides. Throws UsageError. */
export function parseCommandLine(argv: readonly string[], now: number): { command: CliCommand; connection: CliConnectionFlags } {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]}\n\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  const connection: CliConnectionFlags = { DATABASE_URL: values['database-url'], REDIS_URL: values['redis-url'], REDIS_KEY_PREFIX: values['redis-key-prefix'] };
  if (values.help) return { command: { kind: 'help' }, connection };
  const sub = positionals[0] ?? 'alerts';
  if (sub === 'fleet' && positionals[1] === 'remove') {
    const botId = positionals[2];
    if (positionals.length !== 3 || botId === undefined) throw new UsageError(`fleet remove takes one bot id, got: ${positionals.slice(2).join(' ') || 'none'}\n\n${USAGE}`);
    if (!BOT_ID_RE.test(botId)) throw new UsageError(`bot id ${JSON.stringify(botId)} is invalid: expected 1-64 characters: letters, digits, ".", "_", ":", "-"`);
    const extra = Object.entries(values).filter(([k, v]) => v !== undefined && !['database-url', 'redis-url', 'redis-key-prefix'].includes(k));
    if (extra.length) throw new UsageError(`${extra.map(([k]) => `--${k}`).join(', ')} cannot be used with fleet remove`);
    return { command: { kind: 'fleet-remove', botId }, connection };
  }
  if (positionals.length > 1) throw new UsageError(`expected at most one command (stats, fleet or fleet remove <bot_id>), got: ${positionals.join(' ')}\n\n${USAGE}`);

  const used = (names: readonly (keyof typeof values)[]) => names.filter((n) => values[n] !== undefined);
  const refuse = (names: readonly (keyof typeof values)[], command: string) => {
    const extra = used(names);
    if (extra.length) throw new UsageError(`${extra.map((n) => `--${n}`).join(', ')} cannot be used with ${command}`);
  };

  if (sub === 'fleet') {
    refuse(['pair', 'direction', 'since', 'until', 'min-change', 'ordering', 'limit', 'window'], 'fleet');
    return { command: { kind: 'fleet', format: pickFormat(values.format, ['table', 'json']) }, connection };
  }

  if (sub === 'stats') {
    refuse(['direction', 'min-change', 'ordering', 'limit'], 'stats');
    const query = strip({ window: values.window, since: values.since, until: values.until, pair: values.pair });
    try {
      const p = parseParams(STATS_PARAMS, query, now);
      const { since, until, window } = resolveStatsRange(p, query, now);
      return { command: { kind: 'stats', since, until, window, pairs: p.pair ?? [], format: pickFormat(values.format, ['table', 'json']) }, connection };
    } catch (err) {
      return usageFrom(err);
    }
  }

  if (sub !== 'alerts') throw new UsageError(`unknown command ${JSON.stringify(sub)}: expected stats, fleet, or none (to list alerts)\n\n${USAGE}`);
  refuse(['window'], 'the alert list (did you mean `stats --window`?)');
  const format = pickFormat(values.format, FORMATS);
  const query = strip({ pair: values.pair, direction: values.direction, since: values.since, until: values.until, min_change: values['min-change'], ordering: values.ordering });
  let limit: number | 'all' = format === 'table' ? 50 : 'all';
  if (values.limit !== undefined) {
    if (values.limit === 'all') limit = 'all';
    else if (/^\d{1,9}$/.test(values.limit) && Number(values.limit) >= 1) limit = Number(values.limit);
    else throw new UsageError(`--limit ${JSON.stringify(values.limit)} is invalid: expected a positive integer or "all" (pages of ${MAX_PAGE_LIMIT} are fetched as needed)`);
  }
  try {
    const p = parseParams(ALERT_CSV_PARAMS, query, now);
    return { command: { kind: 'alerts', filter: toAlertFilter(p, query), ordering: p.ordering ?? '-observed_at', limit, format }, connection };
  } catch (err) {
    return usageFrom(err);
  }
}

const OPTIONS = {
  pair: { type: 'string', multiple: true },
  direction: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  'min-change': { type: 'string' },
  ordering: { type: 'string' },
  limit: { type: 'string' },
  window: { type: 'string' },
  format: { type: 'string' },
  'database-url': { type: 'string' },
  'redis-url': { type: 'string' },
  'redis-key-prefix': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function strip(query: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  return Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined)) as Record<string, string | string[]>;
}
