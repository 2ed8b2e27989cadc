import { PairSchema, PRICE_FIELDS, REFERENCE_MODES, BOT_ID_RE, type BotConfigSnapshot, type PriceField, type ReferenceMode } from '../contract/alert';
import { COMMON_VARIABLES, enumVar, integerVar, loadVariables, percentVar, stringVar, urlVar, type VariableSpecs } from '../platform/config';
import os from 'node:os';
import { z } from 'zod';
import { ConfigError } from '../platform/errors';
import type { DesiredBot } from '../contract/bots';
import { maskUrlPasswords } from '../platform/secrets';

export const DEFAULT_TICKER_BASE_URL = 'https://api.uphold.com/v0/ticker';

/** How a worker gets its price: its pair's own endpoint, or the shared list of its quote currency (see worker/README.md). */
export const TICKER_FETCH_MODES = ['auto', 'pair', 'currency'] as const;
export type TickerFetchMode = (typeof TICKER_FETCH_MODES)[number];

/** Every variable the worker reads. Each is also a flag: `--pair`, `--fetch-interval-ms` (alias `--interval-ms`), ... */
export const WORKER_VARIABLES = {
  PAIR: {
    schema: z
      .string()
      .transform((s) => s.trim().toUpperCase())
      .pipe(PairSchema) as unknown as z.ZodType<string, string>,
    optional: true,
    doc: 'currency pair as Uphold names it, e.g. BTC-USD; unset: a generic worker that claims a runtime bot from the master (the bot settings below then come from that bot)',
  },
  FETCH_INTERVAL_MS: { schema: integerVar(100, 86_400_000), default: '5000', aliases: ['interval-ms'], doc: 'time between polls, in milliseconds' },
  OSCILLATION_PERCENT: {
    schema: percentVar(1000),
    default: '0.01',
    aliases: ['threshold'],
    doc: 'alert when the price moves at least this percent from the reference (0.01 means 0.01 %)',
  },
  PRICE_FIELD: { schema: enumVar(PRICE_FIELDS), default: 'ask', doc: 'which price to watch: ask, bid or mid ((ask+bid)/2)' },
  REFERENCE_MODE: {
    schema: enumVar(REFERENCE_MODES),
    default: 'last-alert',
    doc: 'first: the first price stays the reference; last-alert: each alert moves the reference to the alerted price',
  },
  TICKER_BASE_URL: {
    schema: urlVar(['http:', 'https:']).transform((s) => s.replace(/\/+$/, '')),
    default: DEFAULT_TICKER_BASE_URL,
    doc: 'ticker endpoint; the worker requests ${TICKER_BASE_URL}/${PAIR}',
  },
  TICKER_FETCH: {
    schema: enumVar(TICKER_FETCH_MODES),
    default: 'auto',
    doc: 'how prices are fetched: pair (GET ${TICKER_BASE_URL}/${PAIR} per bot), currency (one shared GET ${TICKER_BASE_URL}/<QUOTE> per quote currency and interval, read by every bot on this Redis quoted in it), auto (currency while at least 2 bots on this Redis share the quote currency, pair otherwise)',
  },
  TICKER_TIMEOUT_MS: { schema: integerVar(100, 60_000), default: '3000', doc: 'deadline of each ticker request as a whole, from connecting to the last byte of the answer, in milliseconds' },
  BOT_ID: {
    schema: stringVar(BOT_ID_RE, '1-64 characters: letters, digits, ".", "_", ":", "-"'),
    optional: true,
    doc: 'names this bot in alerts and fleet status [default: the pair]',
  },
  WORKER_ID: {
    schema: stringVar(BOT_ID_RE, '1-64 characters: letters, digits, ".", "_", ":", "-"'),
    optional: true,
    doc: 'names this worker process in heartbeats and bot leases; unique per fleet [default: <hostname>-<pid>]',
  },
  COMPOSE_SERVICE: {
    schema: stringVar(BOT_ID_RE, '1-64 characters: letters, digits, ".", "_", ":", "-"'),
    optional: true,
    doc: 'the compose service that declares this worker, shown in the fleet table (set by docker-compose.yml and npm start)',
  },
  ALERT_STREAM_MAXLEN: {
    schema: integerVar(1000, 100_000_000),
    default: '1000000',
    doc: 'approximate cap on the durable alert stream per pair (oldest entries are trimmed beyond it)',
  },
  ALERT_QUEUE_MAX: {
    schema: integerVar(1, 1_000_000),
    default: '10000',
    doc: 'alerts held in memory while Redis is unreachable; beyond it the oldest are dropped, logged and counted',
  },
  TICKER_RATE_LIMIT_PER_MIN: {
    schema: integerVar(0, 100_000),
    default: '250',
    doc: 'ticker requests per minute shared by every worker on this Redis (Uphold allows 250 per IP); 0 turns the budget off',
  },
  ...COMMON_VARIABLES,
} satisfies VariableSpecs;

/** What every worker process has, whichever bot it watches: identity, ticker, Redis, limits. */
export interface WorkerBaseConfig {
  /** @defaultValue `<hostname>-<pid>` */
  readonly workerId: string;
  /** The compose service that declared this worker; absent outside compose. */
  readonly service?: string;
  /** @defaultValue "https://api.uphold.com/v0/ticker" */
  readonly tickerBaseUrl: string;
  /** @defaultValue 3000 */
  readonly tickerTimeoutMs: number;
  /** `pair`, `currency` or `auto` (TICKER_FETCH). @defaultValue "auto" */
  readonly tickerFetch: TickerFetchMode;
  /** @defaultValue 1000000 */
  readonly alertStreamMaxLen: number;
  /** @defaultValue 10000 */
  readonly alertQueueMax: number;
  /** @defaultValue 250 */
  readonly tickerRateLimitPerMin: number;
  /** @defaultValue "redis://127.0.0.1:6379" */
  readonly redisUrl: string;
  /** @defaultValue "" */
  readonly redisKeyPrefix: string;
  /** @defaultValue "info" */
  readonly logLevel: string;
}

/** One bot's validated, frozen configuration: the process settings plus the bot's own. */
export interface WorkerConfig extends WorkerBaseConfig {
  readonly pair: string;
  /** @defaultValue the pair */
  readonly botId: string;
  /** @defaultValue 5000 */
  readonly intervalMs: number;
  /** Exact decimal string. @defaultValue "0.01" */
  readonly thresholdPercent: string;
  /** @defaultValue "ask" */
  readonly priceField: PriceField;
  /** @defaultValue "last-alert" */
  readonly referenceMode: ReferenceMode;
}

/** How a worker process starts: pinned to the bot its variables describe (PAIR set), or generic (PAIR unset). */
export interface WorkerStartup {
  readonly base: WorkerBaseConfig;
  /** The bot of PAIR and its settings; null for a generic worker. */
  readonly pinned: WorkerConfig | null;
}

export function loadWorkerStartup(env: Readonly<Record<string, string | undefined>>, argv: readonly string[] = []): WorkerStartup {
  const v = loadVariables(WORKER_VARIABLES, env, argv);
  const base: WorkerBaseConfig = Object.freeze({
    workerId: v.WORKER_ID ?? defaultWorkerId(),
    ...(v.COMPOSE_SERVICE ? { service: v.COMPOSE_SERVICE } : {}),
    tickerBaseUrl: v.TICKER_BASE_URL,
    tickerTimeoutMs: v.TICKER_TIMEOUT_MS,
    tickerFetch: v.TICKER_FETCH,
    alertStreamMaxLen: v.ALERT_STREAM_MAXLEN,
    alertQueueMax: v.ALERT_QUEUE_MAX,
    tickerRateLimitPerMin: v.TICKER_RATE_LIMIT_PER_MIN,
    redisUrl: v.REDIS_URL,
    redisKeyPrefix: v.REDIS_KEY_PREFIX ?? '',
    logLevel: v.LOG_LEVEL,
  });
  if (v.PAIR === undefined) return Object.freeze({ base, pinned: null });
  const pinned: WorkerConfig = Object.freeze({
    ...base,
    pair: v.PAIR,
    botId: v.BOT_ID ?? v.PAIR,
    intervalMs: v.FETCH_INTERVAL_MS,
    thresholdPercent: v.OSCILLATION_PERCENT,
    priceField: v.PRICE_FIELD,
    referenceMode: v.REFERENCE_MODE,
  });
  return Object.freeze({ base, pinned });
}

/** The configuration of a pinned worker: PAIR is required here (a generic worker starts from `loadWorkerStartup`). */
export function loadWorkerConfig(env: Readonly<Record<string, string | undefined>>, argv: readonly string[] = []): WorkerConfig {
  const { pinned } = loadWorkerStartup(env, argv);
  if (!pinned) {
    const problem = `PAIR is required: ${WORKER_VARIABLES.PAIR.doc}`;
    throw new ConfigError(`Invalid configuration: ${problem}`, [problem]);
  }
  return pinned;
}

/** `<hostname>-<pid>`, cut to what a worker id allows. */
export function defaultWorkerId(): string {
  const host = os.hostname().replace(/[^A-Za-z0-9._:-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'worker';
  const suffix = `-${process.pid}`;
  return `${host.slice(0, 64 - suffix.length)}${suffix}`;
}

/** A runtime bot's settings from the master's desired state, on a worker process's base configuration. */
export function runtimeBotConfig(base: WorkerBaseConfig, bot: DesiredBot): WorkerConfig {
  return Object.freeze({
    ...base,
    pair: bot.pair,
    botId: bot.botId,
    intervalMs: bot.intervalMs,
    thresholdPercent: bot.thresholdPercent,
    priceField: bot.priceField,
    referenceMode: bot.referenceMode,
  });
}

/** The settings snapshot carried in every alert; `botVersion` for a runtime bot (the version the alert was evaluated with). */
export function botConfigSnapshot(config: WorkerConfig, botVersion?: number): BotConfigSnapshot {
  return {
    botId: config.botId,
    pair: config.pair,
    intervalMs: config.intervalMs,
    thresholdPercent: config.thresholdPercent,
    priceField: config.priceField,
    referenceMode: config.referenceMode,
    // A password in the ticker URL (an authenticating proxy) is not a setting: alerts carry the URL without it.
    tickerBaseUrl: maskUrlPasswords(config.tickerBaseUrl),
    ...(botVersion !== undefined ? { botVersion } : {}),
  };
}
