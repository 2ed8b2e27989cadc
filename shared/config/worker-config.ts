import { PairSchema, PRICE_FIELDS, REFERENCE_MODES, RULES, BOT_ID_RE, type Rule, type BotConfigSnapshot, type PriceField, type ReferenceMode } from '../contract/alert';
import { COMMON_VARIABLES, crossCheck, enumVar, integerVar, loadVariables, percentVar, stringVar, urlVar, type VariableSpecs } from '../platform/config';
import os from 'node:os';
import { z } from 'zod';
import { ConfigError } from '../platform/errors';
import type { DesiredBot } from '../contract/bots';
import { DEFAULT_RATE_GROUP, RATE_GROUP_RE } from '../contract/redis-keys';
import { maskUrlPasswords } from '../platform/secrets';

export const DEFAULT_TICKER_BASE_URL = 'https://api.uphold.com/v0/ticker';

/** How a worker gets its price: its pair's own endpoint, or the shared list of its quote currency (see worker/README.md). */
export const TICKER_FETCH_MODES = ['auto', 'pair', 'currency'] as const;
export type TickerFetchMode = (typeof TICKER_FETCH_MODES)[number];

/** Longest WINDOW_MS: a day (the window holds at most the prices of one window). */
export const MAX_WINDOW_MS = 86_400_000;
/** Longest COOLDOWN_MS: 30 days. */
export const MAX_COOLDOWN_MS = 2_592_000_000;

/** An ISO-8601 time with its zone (`Z` or `+01:00`), normalised to UTC (`toISOString`). */
export function expiryVar(): z.ZodType<string, string> {
  const allowed = 'an ISO-8601 time with a zone, such as 2026-12-31T23:00:00Z or 2027-01-01T00:00:00+01:00';
  return z
    .string()
    .transform((s) => s.trim())
    .refine((s) => z.string().datetime({ offset: true }).safeParse(s).success && Number.isFinite(Date.parse(s)), allowed)
    .transform((s) => new Date(s).toISOString());
}

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
  RULE: {
    schema: enumVar(RULES),
    default: 'reference',
    doc: 'reference: alert on a move of OSCILLATION_PERCENT from the reference (REFERENCE_MODE); window: alert on a move of OSCILLATION_PERCENT from the lowest (up) or highest (down) price of the last WINDOW_MS',
  },
  WINDOW_MS: { schema: integerVar(1, MAX_WINDOW_MS), optional: true, doc: 'length of the window of RULE=window, in milliseconds (required by it)' },
  PENDING_POLLS: { schema: integerVar(1, 1000), default: '1', doc: 'alert only when the move holds on this many consecutive valid polls (the alert carries the last one)' },
  COOLDOWN_MS: { schema: integerVar(0, MAX_COOLDOWN_MS), default: '0', doc: 'after an alert in a direction, suppress (count, do not publish) alerts in that direction for this many milliseconds' },
  MAX_ALERTS: { schema: integerVar(1, 1_000_000_000), optional: true, doc: 'the bot stops alerting (status exhausted) after this many published alerts, restarts included; 1 means only once [default: unlimited]' },
  EXPIRES_AT: { schema: expiryVar(), optional: true, doc: 'ISO-8601 time with a zone (e.g. 2026-12-31T23:00:00Z) from which the bot stops alerting (status expired) [default: never]' },
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
    doc: 'ticker requests per minute shared by every worker on this Redis in the same TICKER_RATE_GROUP (Uphold allows 250 per IP); 0 turns the budget off',
  },
  TICKER_RATE_GROUP: {
    schema: stringVar(RATE_GROUP_RE, '1-64 characters: letters, digits, ".", "_", "-"'),
    default: DEFAULT_RATE_GROUP,
    doc: 'the egress IP this worker polls from: workers in one group (behind one NAT or node address) share one TICKER_RATE_LIMIT_PER_MIN budget and pause together after a 429; give workers that leave through different IPs different groups',
  },
  REDIS_WAIT_REPLICAS: {
    schema: integerVar(0, 16),
    default: '1',
    doc: 'Redis Cluster only: replicas that must acknowledge an alert (WAIT) before it counts as published; until then it stays queued and is retried. 0 skips WAIT (an alert only a primary held can be lost in a failover)',
  },
  REDIS_WAIT_MS: { schema: integerVar(1, 60_000), default: '500', doc: 'Redis Cluster only: how long each WAIT for REDIS_WAIT_REPLICAS waits, in milliseconds, before the alert is retried' },
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
  /** Which shared budget (one per egress IP) this worker's requests count against. @defaultValue "default" */
  readonly tickerRateGroup: string;
  /** @defaultValue "redis://127.0.0.1:6379" */
  readonly redisUrl: string;
  /** Redis Cluster seed nodes (`host:port`); empty: REDIS_URL is one Redis. @defaultValue [] */
  readonly redisClusterNodes: readonly string[];
  /** Cluster only: replicas that must hold an alert before it counts as published. @defaultValue 1 */
  readonly redisWaitReplicas: number;
  /** Cluster only: bound of each WAIT, in milliseconds. @defaultValue 500 */
  readonly redisWaitMs: number;
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
  /** @defaultValue "reference" */
  readonly rule: Rule;
  /** Required by the window rule. @defaultValue null */
  readonly windowMs: number | null;
  /** @defaultValue 1 */
  readonly pendingPolls: number;
  /** @defaultValue 0 */
  readonly cooldownMs: number;
  /** @defaultValue null (unlimited) */
  readonly maxAlerts: number | null;
  /** ISO-8601 UTC. @defaultValue null (never) */
  readonly expiresAt: string | null;
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
    tickerRateGroup: v.TICKER_RATE_GROUP,
    redisUrl: v.REDIS_URL,
    redisClusterNodes: Object.freeze(v.REDIS_CLUSTER_NODES ?? []),
    redisWaitReplicas: v.REDIS_WAIT_REPLICAS,
    redisWaitMs: v.REDIS_WAIT_MS,
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
    rule: v.RULE,
    windowMs: v.WINDOW_MS ?? null,
    pendingPolls: v.PENDING_POLLS,
    cooldownMs: v.COOLDOWN_MS,
    maxAlerts: v.MAX_ALERTS ?? null,
    expiresAt: v.EXPIRES_AT ?? null,
  });
  if (pinned.rule === 'window' && pinned.windowMs === null) crossCheck(['WINDOW_MS is required with RULE=window: the length of the window in milliseconds, e.g. 60000']);
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
    rule: bot.rule ?? 'reference',
    windowMs: bot.windowMs ?? null,
    pendingPolls: bot.pendingPolls ?? 1,
    cooldownMs: bot.cooldownMs ?? 0,
    maxAlerts: bot.maxAlerts ?? null,
    expiresAt: bot.expiresAt ?? null,
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
    // The rule settings only when they differ from today's behaviour: a default bot's snapshot is what it always was.
    ...(config.rule !== 'reference' ? { rule: config.rule } : {}),
    ...(config.windowMs !== null ? { windowMs: config.windowMs } : {}),
    ...(config.pendingPolls !== 1 ? { pendingPolls: config.pendingPolls } : {}),
    ...(config.cooldownMs !== 0 ? { cooldownMs: config.cooldownMs } : {}),
    ...(config.maxAlerts !== null ? { maxAlerts: config.maxAlerts } : {}),
    ...(config.expiresAt !== null ? { expiresAt: config.expiresAt } : {}),
  };
}
