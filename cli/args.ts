import { parseArgs } from 'node:util';
import { BOT_ID_RE } from '../shared/contract/alert';
import { BadRequestError } from '../shared/read-model/bad-request';
import { parseBotPatch, parseNewBot, type BotPatch, type NewBot } from '../shared/read-model/bot-settings';
import { parseNewSilence, parseSilenceState, type NewSilence, type SilenceState } from '../shared/read-model/silences';
import { SILENCE_PAGE_MAX } from '../shared/read-model/silences-repository';
import { parseReceiversCommand, RECEIVER_OPTIONS, RECEIVERS_HELP, RECEIVERS_USAGE, type ReceiversCommand } from './receivers-args';
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
  | { readonly kind: 'fleet-remove'; readonly botId: string }
  | { readonly kind: 'bots-list'; readonly format: Format }
  | { readonly kind: 'bots-add'; readonly bot: NewBot }
  | { readonly kind: 'bots-set'; readonly botId: string; readonly patch: BotPatch }
  | { readonly kind: 'bots-remove'; readonly botId: string }
  | { readonly kind: 'silences-list'; readonly state?: SilenceState; readonly limit: number; readonly format: Format }
  | { readonly kind: 'silences-add'; readonly silence: NewSilence; readonly format: Format }
  | { readonly kind: 'silences-expire'; readonly id: string; readonly format: Format }
  | ReceiversCommand;

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
  npm run alerts -- bots list [--format table|json]
  npm run alerts -- bots add <pair> [--bot-id ID] [--interval-ms N] [--threshold P] [--price-field F] [--reference-mode M] [rule flags]
  npm run alerts -- bots set <bot_id> [--pair P] [--interval-ms N] [--threshold P] [--price-field F] [--reference-mode M] [rule flags]
  npm run alerts -- bots pause|resume|remove <bot_id>
  npm run alerts -- silences list [--state active|pending|expired] [--limit N] [--format table|json]
  npm run alerts -- silences add [--pair P] [--bot-id ID] [--direction D] (--duration D | --ends-at T) [--starts-at T] --comment TEXT
  npm run alerts -- silences expire <silence_id>
${RECEIVERS_USAGE}

Bots (runtime bots, the same checks as POST/PATCH /bots; changes are recorded in the audit as cli:<your user name>):
  --bot-id ID          the new bot's id [default: the pair]
  --interval-ms N      time between polls, 100 to 86400000 ms [default: 5000]
  --threshold P        alert at this percent move, e.g. 0.5 (also --threshold-percent) [default: 0.01]
  --price-field F      ask, bid or mid [default: ask]
  --reference-mode M   first or last-alert [default: last-alert]
  rule flags (see README "Rules"):
  --rule R             reference or window [default: reference]
  --window-ms N        the window of --rule window, in ms (required by it; none: unset)
  --pending-polls K    alert only when the move holds on K consecutive valid polls [default: 1]
  --cooldown-ms N      no second alert in one direction within N ms (suppressed ones are counted) [default: 0]
  --max-alerts N       disabled after N published alerts (1: only once; none: unlimited) [default: unlimited]
  --expires-at T       disabled from this ISO-8601 time, e.g. 2026-12-31T23:00:00Z (none: never) [default: never]

Silences (the same checks as POST /silences; who created or expired one is recorded as cli:<your user name>):
  --pair P, --bot-id ID, --direction D   equality matchers: at least one (a silence must match something specific)
  --duration D         how long from the start: 30m, 1h, 8h, 7d (at most 366d); or --ends-at T (ISO-8601 with offset)
  --starts-at T        ISO-8601 with offset [default: now]
  --comment TEXT       why (required)
  A silence mutes the notifications of the alerts it matches observed while it is active; they are stored as always.

${RECEIVERS_HELP}

Filters (the same as GET /alerts):
  --pair P            a pair such as BTC-USD; repeat it or give a comma list
  --direction D       up or down
  --since T           ISO-8601 (2026-11-29, 2026-11-29T19:45:00Z) or relative (20m, 1h, 7d ago)
  --until T           same forms; exclusive
  --min-change X      absolute change percent at least X (e.g. 0.5)
  --silenced B        true: only alerts a silence muted; false: only the others
  --ordering=O        -observed_at (default), observed_at, -change_percent, change_percent
                      (write it with "=": a value starting with "-" would read as a flag)
  --limit N|all       rows to print [default: 50 for table, all for csv and json]

Connection (or the environment variables DATABASE_URL, REDIS_URL, REDIS_KEY_PREFIX):
  --database-url URL  --redis-url URL  --redis-key-prefix P

Stopped bots, and bots whose heartbeat expired, leave the fleet once their last heartbeat is older than FLEET_RETENTION
(default 24h).

Exit codes: 0 done, 1 the database or Redis failed (or fleet remove names an unknown bot; or bots names an unknown bot,
a taken id or a compose bot), 2 bad command line or configuration.`;

const FLAG_OF: Record<string, string> = { min_change: '--min-change', silenced_by: '--silenced-by' };
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
  if (sub === 'bots') return { command: parseBotsCommand(values, positionals.slice(1)), connection };
  if (sub === 'silences') return { command: parseSilencesCommand(values, positionals.slice(1), now), connection };
  if (sub === 'receivers') {
    const given = Object.entries(values).filter(([k, v]) => v !== undefined && !CONNECTION_OPTIONS.includes(k)).map(([k]) => k);
    return { command: parseReceiversCommand(values, given, positionals.slice(1), (message) => new UsageError(`${message}\n\n${USAGE}`)), connection };
  }
  if (positionals.length > 1) throw new UsageError(`expected at most one command (stats, fleet or fleet remove <bot_id>), got: ${positionals.join(' ')}\n\n${USAGE}`);

  const used = (names: readonly (keyof typeof values)[]) => names.filter((n) => values[n] !== undefined);
  const refuse = (names: readonly (keyof typeof values)[], command: string) => {
    const extra = used(names);
    if (extra.length) throw new UsageError(`${extra.map((n) => `--${n}`).join(', ')} cannot be used with ${command}`);
  };

  if (sub === 'fleet') {
    refuse(['pair', 'direction', 'since', 'until', 'min-change', 'silenced', 'ordering', 'limit', 'window'], 'fleet');
    return { command: { kind: 'fleet', format: pickFormat(values.format, ['table', 'json']) }, connection };
  }

  if (sub === 'stats') {
    refuse(['direction', 'min-change', 'silenced', 'ordering', 'limit'], 'stats');
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
  refuse(['state', 'duration', 'ends-at', 'starts-at', 'comment'], 'the alert list (they belong to `silences`)');
  refuse(Object.keys(RECEIVER_OPTIONS) as (keyof typeof values)[], 'the alert list (they belong to `receivers`)');
  const query = strip({ pair: values.pair, direction: values.direction, since: values.since, until: values.until, min_change: values['min-change'], silenced: values.silenced, ordering: values.ordering });
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

/** The flag of each bot setting, for refusals. */
const BOT_FLAGS: Record<string, string> = {
  pair: '--pair',
  bot_id: '--bot-id',
  interval_ms: '--interval-ms',
  threshold_percent: '--threshold',
  price_field: '--price-field',
  reference_mode: '--reference-mode',
  rule: '--rule',
  window_ms: '--window-ms',
  pending_polls: '--pending-polls',
  cooldown_ms: '--cooldown-ms',
  max_alerts: '--max-alerts',
  expires_at: '--expires-at',
};
const RULE_OPTIONS = ['rule', 'window-ms', 'pending-polls', 'cooldown-ms', 'max-alerts', 'expires-at'] as const;
const BOT_SETTING_OPTIONS = ['bot-id', 'interval-ms', 'threshold', 'threshold-percent', 'price-field', 'reference-mode', ...RULE_OPTIONS] as const;

/** The rule flags as the API body would carry them: integers as numbers, `none` as null (no window, unlimited, never). */
function ruleSettingsFrom(values: Values): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (values.rule !== undefined) out.rule = values.rule;
  const integer = (text: string) => (/^\d{1,15}$/.test(text) ? Number(text) : text);
  for (const [flag, field, nullable] of [['window-ms', 'window_ms', true], ['pending-polls', 'pending_polls', false], ['cooldown-ms', 'cooldown_ms', false], ['max-alerts', 'max_alerts', true]] as const) {
    const text = values[flag];
    if (text !== undefined) out[field] = nullable && text === 'none' ? null : integer(text);
  }
  const expires = values['expires-at'];
  if (expires !== undefined) out.expires_at = expires === 'none' ? null : expires;
  return out;
}
const CONNECTION_OPTIONS = ['database-url', 'redis-url', 'redis-key-prefix'];
const BOTS_SUBCOMMANDS = ['list', 'add', 'set', 'pause', 'resume', 'remove'];

/** A bot check's 400 reworded for the command line, naming the flag (the words are the worker's). */
function botUsage(err: unknown, positional: 'pair' | 'bot id'): never {
  if (err instanceof BadRequestError) {
    const allowed = Array.isArray(err.allowed) ? `one of ${err.allowed.join(', ')}` : err.allowed;
    // `bots add <pair>` takes the pair as its argument, not as --pair.
    const flag = positional === 'pair' && err.parameter === 'pair' ? 'pair' : (BOT_FLAGS[err.parameter] ?? err.parameter);
    throw new UsageError(`${flag} ${JSON.stringify(err.value)} is invalid: expected ${allowed}`);
  }
  throw err;
}

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>['values'];

function parseBotsCommand(values: Values, args: readonly string[]): CliCommand {
  const [action, target, ...rest] = args;
  if (action === undefined || !BOTS_SUBCOMMANDS.includes(action)) {
    throw new UsageError(`bots takes one of ${BOTS_SUBCOMMANDS.join(', ')}, got: ${action ?? 'none'}\n\n${USAGE}`);
  }
  const given = Object.entries(values).filter(([k, v]) => v !== undefined && !CONNECTION_OPTIONS.includes(k)).map(([k]) => k);
  const allow = (names: readonly string[]) => {
    const extra = given.filter((k) => !names.includes(k));
    if (extra.length) throw new UsageError(`${extra.map((k) => `--${k}`).join(', ')} cannot be used with bots ${action}`);
  };
  if (action === 'list') {
    if (target !== undefined) throw new UsageError(`bots list takes no argument, got: ${args.slice(1).join(' ')}`);
    allow(['format']);
    return { kind: 'bots-list', format: pickFormat(values.format, ['table', 'json']) };
  }
  if (target === undefined || rest.length > 0) throw new UsageError(`bots ${action} takes one ${action === 'add' ? 'pair' : 'bot id'}, got: ${args.slice(1).join(' ') || 'none'}\n\n${USAGE}`);
  if (values.threshold !== undefined && values['threshold-percent'] !== undefined) throw new UsageError('give --threshold or --threshold-percent, not both');
  const threshold = values.threshold ?? values['threshold-percent'];
  // Flags are text; an all-digit interval goes to the check as the number the API would receive.
  const interval = values['interval-ms'] === undefined ? undefined : /^\d{1,15}$/.test(values['interval-ms']) ? Number(values['interval-ms']) : values['interval-ms'];
  const settings = { ...strip({ threshold_percent: threshold, price_field: values['price-field'], reference_mode: values['reference-mode'] }), ...ruleSettingsFrom(values) } as Record<string, unknown>;
  if (interval !== undefined) settings.interval_ms = interval;
  if ((values.pair?.length ?? 0) > 1) throw new UsageError('--pair is given more than once: a bot watches one pair');
  try {
    if (action === 'add') {
      allow(BOT_SETTING_OPTIONS);
      const body: Record<string, unknown> = { pair: target, ...settings };
      if (values['bot-id'] !== undefined) body.bot_id = values['bot-id'];
      return { kind: 'bots-add', bot: parseNewBot(body) };
    }
    if (!BOT_ID_RE.test(target)) throw new UsageError(`bot id ${JSON.stringify(target)} is invalid: expected 1-64 characters: letters, digits, ".", "_", ":", "-"`);
    if (action === 'set') {
      allow(['pair', ...BOT_SETTING_OPTIONS.filter((o) => o !== 'bot-id')]);
      const body: Record<string, unknown> = { ...settings };
      if (values.pair?.[0] !== undefined) body.pair = values.pair[0];
      if (Object.keys(body).length === 0) throw new UsageError(`bots set needs at least one of --pair, --interval-ms, --threshold, --price-field, --reference-mode, --${RULE_OPTIONS.join(', --')}`);
      return { kind: 'bots-set', botId: target, patch: parseBotPatch(body) };
    }
    allow([]);
    if (action === 'remove') return { kind: 'bots-remove', botId: target };
    return { kind: 'bots-set', botId: target, patch: parseBotPatch({ enabled: action === 'resume' }) };
  } catch (err) {
    return botUsage(err, action === 'add' ? 'pair' : 'bot id');
  }
}

/** The flag of each field of a new silence, for refusals. */
const SILENCE_FLAGS: Record<string, string> = {
  matchers: '--pair, --bot-id or --direction',
  'matchers.pair': '--pair',
  'matchers.bot_id': '--bot-id',
  'matchers.direction': '--direction',
  starts_at: '--starts-at',
  ends_at: '--ends-at',
  duration: '--duration',
  comment: '--comment',
  state: '--state',
};
const SILENCES_SUBCOMMANDS = ['list', 'add', 'expire'];
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `silences list|add|expire`, through the API's own checks (silences.ts), refusals naming the flag. */
function parseSilencesCommand(values: Values, args: readonly string[], now: number): CliCommand {
  const [action, target, ...rest] = args;
  if (action === undefined || !SILENCES_SUBCOMMANDS.includes(action)) {
    throw new UsageError(`silences takes one of ${SILENCES_SUBCOMMANDS.join(', ')}, got: ${action ?? 'none'}\n\n${USAGE}`);
  }
  const given = Object.entries(values).filter(([k, v]) => v !== undefined && !CONNECTION_OPTIONS.includes(k)).map(([k]) => k);
  const allow = (names: readonly string[]) => {
    const extra = given.filter((k) => !names.includes(k));
    if (extra.length) throw new UsageError(`${extra.map((k) => `--${k}`).join(', ')} cannot be used with silences ${action}`);
  };
  const format = pickFormat(values.format, ['table', 'json']);
  try {
    if (action === 'list') {
      if (target !== undefined) throw new UsageError(`silences list takes no argument, got: ${args.slice(1).join(' ')}`);
      allow(['state', 'limit', 'format']);
      let limit = 100;
      if (values.limit !== undefined) {
        limit = /^\d{1,4}$/.test(values.limit) ? Number(values.limit) : 0;
        if (limit < 1 || limit > SILENCE_PAGE_MAX) throw new UsageError(`--limit ${JSON.stringify(values.limit)} is invalid: expected an integer from 1 to ${SILENCE_PAGE_MAX}`);
      }
      return { kind: 'silences-list', state: values.state === undefined ? undefined : parseSilenceState(values.state), limit, format };
    }
    if (action === 'expire') {
      if (target === undefined || rest.length > 0) throw new UsageError(`silences expire takes one silence id, got: ${args.slice(1).join(' ') || 'none'}`);
      allow(['format']);
      if (!UUID_RE.test(target)) throw new UsageError(`silence id ${JSON.stringify(target)} is invalid: expected a UUID such as 0b6f2f4e-3c1a-4d5e-9f00-1a2b3c4d5e6f (from silences list)`);
      return { kind: 'silences-expire', id: target.toLowerCase(), format };
    }
    if (target !== undefined) throw new UsageError(`silences add takes flags only, got: ${args.slice(1).join(' ')}`);
    allow(['pair', 'bot-id', 'direction', 'duration', 'ends-at', 'starts-at', 'comment', 'format']);
    if ((values.pair?.length ?? 0) > 1) throw new UsageError('--pair is given more than once: a silence matches one pair (add one silence per pair)');
    const matchers = strip({ pair: values.pair?.[0], bot_id: values['bot-id'], direction: values.direction });
    const body = strip({ starts_at: values['starts-at'], ends_at: values['ends-at'], duration: values.duration, comment: values.comment }) as Record<string, unknown>;
    return { kind: 'silences-add', silence: parseNewSilence({ matchers, ...body }, now), format };
  } catch (err) {
    if (err instanceof BadRequestError) {
      const allowed = Array.isArray(err.allowed) ? `one of ${err.allowed.join(', ')}` : err.allowed;
      if (err.parameter === 'matchers') throw new UsageError('a silence needs at least one matcher: --pair, --bot-id or --direction (an empty one would mute everything)');
      const flag = SILENCE_FLAGS[err.parameter] ?? err.parameter;
      if (err.value === undefined) throw new UsageError(`${flag} is required: expected ${allowed}`);
      throw new UsageError(`${flag} ${JSON.stringify(err.value)} is invalid: expected ${allowed}`);
    }
    throw err;
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
  'bot-id': { type: 'string' },
  'interval-ms': { type: 'string' },
  threshold: { type: 'string' },
  'threshold-percent': { type: 'string' },
  'price-field': { type: 'string' },
  'reference-mode': { type: 'string' },
  rule: { type: 'string' },
  'window-ms': { type: 'string' },
  'pending-polls': { type: 'string' },
  'cooldown-ms': { type: 'string' },
  'max-alerts': { type: 'string' },
  'expires-at': { type: 'string' },
  silenced: { type: 'string' },
  state: { type: 'string' },
  duration: { type: 'string' },
  'ends-at': { type: 'string' },
  'starts-at': { type: 'string' },
  comment: { type: 'string' },
  'database-url': { type: 'string' },
  'redis-url': { type: 'string' },
  'redis-key-prefix': { type: 'string' },
  ...RECEIVER_OPTIONS,
  help: { type: 'boolean', short: 'h' },
} as const;

function strip(query: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  return Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined)) as Record<string, string | string[]>;
}
