import { PairSchema, PRICE_FIELDS, REFERENCE_MODES, BOT_ID_RE, type BotConfigSnapshot, type PriceField, type ReferenceMode } from '../contract/alert';
import { COMMON_VARIABLES, enumVar, integerVar, loadVariables, percentVar, stringVar, urlVar, type VariableSpecs } from '../platform/config';
import { z } from 'zod';
import { maskUrlPasswords } from '../platform/secrets';

export const DEFAULT_TICKER_BASE_URL = 'https://api.uphold.com/v0/ticker';

/** Every variable the worker reads. Each is also a flag: `--pair`, `--fetch-interval-ms` (alias `--interval-ms`), ... */
export const WORKER_VARIABLES = {
  PAIR: {
    schema: z
      .string()
      .transform((s) => s.trim().toUpperCase())
      .pipe(PairSchema) as unknown as z.ZodType<string, string>,
    doc: 'currency pair as Uphold names it, e.g. BTC-USD',
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
  TICKER_TIMEOUT_MS: { schema: integerVar(100, 60_000), default: '3000', doc: 'deadline of each ticker request as a whole, from connecting to the last byte of the answer, in milliseconds' },
  BOT_ID: {
    schema: stringVar(BOT_ID_RE, '1-64 characters: letters, digits, ".", "_", ":", "-"'),
    optional: true,
    doc: 'names this bot in alerts and fleet status [default: the pair]',
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

/** The worker's validated, frozen configuration. */
export interface WorkerConfig {
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
  /** @defaultValue "https://api.uphold.com/v0/ticker" */
  readonly tickerBaseUrl: string;
  /** @defaultValue 3000 */
  readonly tickerTimeoutMs: number;
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

export function loadWorkerConfig(env: Readonly<Record<string, string | undefined>>, argv: readonly string[] = []): WorkerConfig {
  const v = loadVariables(WORKER_VARIABLES, env, argv);
  return Object.freeze({
    pair: v.PAIR,
    botId: v.BOT_ID ?? v.PAIR,
    intervalMs: v.FETCH_INTERVAL_MS,
    thresholdPercent: v.OSCILLATION_PERCENT,
    priceField: v.PRICE_FIELD,
    referenceMode: v.REFERENCE_MODE,
    tickerBaseUrl: v.TICKER_BASE_URL,
    tickerTimeoutMs: v.TICKER_TIMEOUT_MS,
    alertStreamMaxLen: v.ALERT_STREAM_MAXLEN,
    alertQueueMax: v.ALERT_QUEUE_MAX,
    tickerRateLimitPerMin: v.TICKER_RATE_LIMIT_PER_MIN,
    redisUrl: v.REDIS_URL,
    redisKeyPrefix: v.REDIS_KEY_PREFIX ?? '',
    logLevel: v.LOG_LEVEL,
  });
}

/** The settings snapshot carried in every alert. */
export function botConfigSnapshot(config: WorkerConfig): BotConfigSnapshot {
  return {
    botId: config.botId,
    pair: config.pair,
    intervalMs: config.intervalMs,
    thresholdPercent: config.thresholdPercent,
    priceField: config.priceField,
    referenceMode: config.referenceMode,
    // A password in the ticker URL (an authenticating proxy) is not a setting: alerts carry the URL without it.
    tickerBaseUrl: maskUrlPasswords(config.tickerBaseUrl),
  };
}
