import { isIPv4 } from 'node:net';
import { hostname } from 'node:os';
import { z } from 'zod';
import { PairSchema } from '../contract/alert';
import {
  booleanVar,
  COMMON_VARIABLES,
  crossCheck,
  enumVar,
  integerVar,
  listVar,
  loadVariables,
  stringVar,
  urlVar,
  type VariableSpecs,
} from '../platform/config';
import { parseDuration } from '../platform/duration';

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/tickwatch';
export const DELIVERY_MODES = ['stream', 'pubsub'] as const;
export type DeliveryMode = (typeof DELIVERY_MODES)[number];
export const NOTIFY_CHANNELS = ['log', 'email', 'webhook'] as const;
export type NotifyChannel = (typeof NOTIFY_CHANNELS)[number];

const EMAIL_RE = /^[^\s@,<>]+@[^\s@,<>]+$/;

/** What an API token may do: analysts read everything, operators also change bots (and the fleet). */
export const API_SCOPES = ['analyst', 'operator'] as const;
export type ApiScope = (typeof API_SCOPES)[number];

/** One API token. `token` is not enumerable and `toJSON` leaves it out, so logging a config never prints it. */
export interface ApiTokenEntry {
  /** Shown as the actor in the audit and in logs. */
  readonly name: string;
  readonly scope: ApiScope;
  readonly token: string;
}

const TOKEN_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
const TOKEN_VALUE_RE = /^[^\s,]{16,512}$/;

function tokenEntry(name: string, scope: ApiScope, token: string): ApiTokenEntry {
  const entry = { name, scope, toJSON: () => ({ name, scope }) };
  Object.defineProperty(entry, 'token', { value: token, enumerable: false });
  return Object.freeze(entry) as unknown as ApiTokenEntry;
}

/**
 * Parses API_TOKENS (`name:scope:token,...`). A refusal names the entry by position and name, never its token (the
 * loader shows the variable's value as hidden).
 */
function apiTokensVar(): z.ZodType<ApiTokenEntry[], string> {
  return z.string().transform((s, ctx) => {
    const fail = (message: string) => {
      ctx.addIssue({ code: 'custom', message });
      return z.NEVER;
    };
    const entries: ApiTokenEntry[] = [];
    const parts = s.split(',').map((x) => x.trim()).filter(Boolean);
    if (parts.length === 0) return fail('a comma-separated list of name:scope:token');
    for (const [i, part] of parts.entries()) {
      const at = `entry ${i + 1}`;
      const first = part.indexOf(':');
      const second = first < 0 ? -1 : part.indexOf(':', first + 1);
      if (second < 0) return fail(`name:scope:token in ${at} (it has no two ":" separators)`);
      const name = part.slice(0, first);
      const scope = part.slice(first + 1, second);
      const token = part.slice(second + 1);
      if (!TOKEN_NAME_RE.test(name)) return fail(`a name of 1-64 letters, digits, ".", "_", "-" in ${at}`);
      if (!(API_SCOPES as readonly string[]).includes(scope)) return fail(`scope analyst or operator in ${at} (name ${name})`);
      if (!TOKEN_VALUE_RE.test(token)) return fail(`a token of at least 16 characters, no spaces or commas, in ${at} (name ${name})`);
      if (entries.some((e) => e.name === name)) return fail(`unique names: ${at} repeats the name ${name}`);
      if (entries.some((e) => e.token === token)) return fail(`a different token for each name: ${at} (name ${name}) repeats another entry's token`);
      entries.push(tokenEntry(name, scope as ApiScope, token));
    }
    return entries;
  }) as unknown as z.ZodType<ApiTokenEntry[], string>;
}

/** The variables the database tools (migrate, CLI) need. */
export const DATABASE_VARIABLES = {
  DATABASE_URL: { schema: urlVar(['postgres:', 'postgresql:']), default: DEFAULT_DATABASE_URL, doc: 'PostgreSQL connection URL' },
} satisfies VariableSpecs;

/** A duration variable in the one grammar (`500ms`, `30s`, `5m`), parsed to milliseconds within [minMs, maxMs]. */
function durationMsVar(minMs: number, maxMs: number, example: string): z.ZodType<number, string> {
  return z.string().transform((s, ctx) => {
    const ms = parseDuration(s);
    if (ms === null || ms < minMs || ms > maxMs) {
      ctx.addIssue({ code: 'custom', message: `a duration from ${minMs} ms to ${maxMs / 1000} s such as ${example}` });
      return z.NEVER;
    }
    return ms;
  }) as z.ZodType<number, string>;
}

/** The analysts' read replica: the master's API and the CLI read alerts there when DATABASE_READ_URL is set. */
export const READ_REPLICA_VARIABLES = {
  DATABASE_READ_URL: {
    schema: urlVar(['postgres:', 'postgresql:']),
    optional: true,
    secret: true,
    doc: 'a streaming replica of DATABASE_URL: alert lists, details, stats and CSV exports (API and CLI) read from it; every write and ingest stay on DATABASE_URL',
  },
  DATABASE_READ_MAX_LAG: {
    schema: durationMsVar(100, 86_400_000, '30s'),
    optional: true,
    doc: 'when set, reads go to DATABASE_URL while the replica replays more than this far behind (a duration: 5s, 30s, 5m); unset, any lag is served',
  },
  DATABASE_READ_CONNECT_TIMEOUT_MS: {
    schema: integerVar(100, 60_000),
    default: '2000',
    doc: 'longest a connection to the replica may take to open, in milliseconds; past it (or a query unanswered for API_STATEMENT_TIMEOUT_MS plus 1 s) reads fall back to DATABASE_URL',
  },
} satisfies VariableSpecs;

/** The read replica's settings, or undefined when DATABASE_READ_URL is unset. */
export interface ReadReplicaConfig {
  readonly url: string;
  /** Reads go to the primary while the replica lags more than this (ms). @defaultValue none (any lag is served) */
  readonly maxLagMs?: number;
  /** @defaultValue 2000 */
  readonly connectTimeoutMs: number;
}

/** Builds the read replica's settings from loaded READ_REPLICA_VARIABLES (the master's and the CLI's). */
export function readReplicaConfig(v: { DATABASE_READ_URL?: string; DATABASE_READ_MAX_LAG?: number; DATABASE_READ_CONNECT_TIMEOUT_MS: number }): ReadReplicaConfig | undefined {
  if (!v.DATABASE_READ_URL) return undefined;
  return Object.freeze({ url: v.DATABASE_READ_URL, maxLagMs: v.DATABASE_READ_MAX_LAG, connectTimeoutMs: v.DATABASE_READ_CONNECT_TIMEOUT_MS });
}

/** Every variable the master reads (ingest, notifications, API). */
export const MASTER_VARIABLES = {
  ...DATABASE_VARIABLES,
  ...READ_REPLICA_VARIABLES,
  MASTER_PAIRS: {
    schema: z
      .string()
      .transform((s) => s.split(',').map((x) => x.trim().toUpperCase()).filter(Boolean))
      .refine((items) => (items.length === 1 && items[0] === '*') || items.every((i) => PairSchema.safeParse(i).success), '* or a comma-separated list of pairs such as BTC-USD,ETH-USD')
      .transform((items) => (items.length === 0 || items[0] === '*' ? ('*' as const) : [...new Set(items)])) as z.ZodType<'*' | string[], string>,
    default: '*',
    doc: 'pairs this master consumes: a comma list, or * (or empty) for every pair',
  },
  DELIVERY: { schema: enumVar(DELIVERY_MODES), default: 'stream', doc: 'stream (durable, exactly-once storage) or pubsub (the original at-most-once channels)' },
  CONSUMER_NAME: {
    schema: stringVar(/^[A-Za-z0-9._:-]{1,64}$/, '1-64 characters: letters, digits, ".", "_", ":", "-"'),
    optional: true,
    doc: 'this replica\'s name in the stream consumer group [default: hostname-pid]',
  },
  INGEST_BATCH_MAX: { schema: integerVar(1, 10_000), default: '1000', doc: 'most alerts committed in one database transaction' },
  STREAM_CLAIM_IDLE_MS: {
    schema: integerVar(1000, 3_600_000),
    default: '30000',
    doc: 'a pending stream entry idle this long (its consumer died) is reclaimed by another replica',
  },
  STREAM_MAX_ATTEMPTS: {
    schema: integerVar(1, 100),
    default: '5',
    doc: 'deliveries of one stream entry before it goes to the dead-letter stream',
  },
  NOTIFY: {
    schema: listVar(NOTIFY_CHANNELS).transform((l) => [...new Set(['log' as const, ...l])]),
    default: 'log',
    doc: 'notification channels: comma list of log, email, webhook (log is always on)',
  },
  SMTP_URL: { schema: urlVar(['smtp:', 'smtps:']), optional: true, secret: true, doc: 'SMTP server, e.g. smtp://user:pass@mail.example.com:587 (needed for email)' },
  SMTP_REQUIRE_TLS: {
    schema: booleanVar(),
    default: 'false',
    doc: 'when true, email is only sent after STARTTLS: a server that does not offer it fails the notification, never a cleartext login (no effect on smtps://)',
  },
  MAIL_FROM: { schema: stringVar(/^.{1,200}$/, 'a sender such as "Tickwatch <alerts@example.com>"'), default: 'Tickwatch <tickwatch@localhost>', doc: 'sender of alert emails' },
  MAIL_TO: {
    schema: z
      .string()
      .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
      .refine((l) => l.length > 0 && l.every((x) => EMAIL_RE.test(x)), 'a comma-separated list of email addresses'),
    optional: true,
    doc: 'recipients of alert emails, comma-separated (needed for email)',
  },
  EMAIL_DIGEST_SECONDS: { schema: integerVar(0, 86_400), default: '60', doc: 'alerts arriving within this many seconds go out as one digest per recipient' },
  EMAIL_MAX_PER_HOUR: { schema: integerVar(1, 10_000), default: '20', doc: 'most emails per recipient per hour; beyond it one summary says how many alerts were held back' },
  WEBHOOK_URL: { schema: urlVar(['http:', 'https:']), optional: true, secret: true, doc: 'URL that receives a JSON POST per alert batch (needed for webhook)' },
  WEBHOOK_SECRET: { schema: stringVar(/^.{8,512}$/, 'at least 8 characters'), optional: true, secret: true, doc: 'key for the X-Tickwatch-Signature HMAC-SHA256 header' },
  WEBHOOK_TIMEOUT_MS: { schema: integerVar(100, 120_000), default: '5000', doc: 'webhook request timeout, in milliseconds' },
  TELEGRAM_API_BASE: {
    schema: urlVar(['http:', 'https:']),
    default: 'https://api.telegram.org',
    doc: 'Telegram Bot API base URL (telegram receivers POST to <base>/bot<token>/sendMessage); change it only for a local stand-in or a Bot API server of your own',
  },
  NOTIFY_MAX_ATTEMPTS: { schema: integerVar(1, 1000), default: '20', doc: 'delivery attempts of a notification before it is marked failed' },
  API_HOST: {
    schema: stringVar(/^[A-Za-z0-9.:-]{1,255}$/, 'a host name or IP address'),
    default: '127.0.0.1',
    doc: 'address the HTTP API and dashboard listen on; beyond loopback (e.g. 0.0.0.0) the master needs API_TOKEN or API_ALLOW_ANONYMOUS=true',
  },
  API_ALLOW_ANONYMOUS: {
    schema: booleanVar(),
    default: 'false',
    doc: 'true lets the master serve the API without API_TOKEN on an address beyond loopback (anyone who reaches it reads everything)',
  },
  EVENTS_MAX_CLIENTS: { schema: integerVar(1, 100_000), default: '100', doc: 'open /events live-feed connections one master serves; beyond it a new one gets 503' },
  API_PORT: { schema: integerVar(0, 65_535), default: '8080', doc: 'port of the HTTP API and dashboard (0 picks a free port)' },
  API_TOKEN: {
    schema: stringVar(/^\S{16,512}$/, 'at least 16 characters, no spaces'),
    optional: true,
    secret: true,
    doc: 'when set, every endpoint but /health, /ready and the dashboard page needs Authorization: Bearer <token>; it is an operator token named operator',
  },
  API_TOKENS: {
    schema: apiTokensVar(),
    optional: true,
    secret: true,
    doc: 'named tokens with scopes, name:scope:token,... (scope analyst: read everything; operator: also add, change and remove bots); each token 16+ characters, names unique',
  },
  BOTS_RECONCILE_MS: {
    schema: integerVar(100, 600_000),
    default: '2000',
    doc: "how often the master rewrites the Redis mirror of the bots table and records compose bots from their heartbeats, in milliseconds (every change also rewrites it at once)",
  },
  API_DB_POOL_MAX: { schema: integerVar(1, 100), default: '5', doc: 'Postgres connections of the HTTP API and dashboard (a pool of their own: ingest and notifications never wait behind queries)' },
  API_STATEMENT_TIMEOUT_MS: {
    schema: integerVar(1, 600_000),
    default: '5000',
    doc: 'longest one API query may run before Postgres cancels it and the request gets 503 query_timeout, in milliseconds',
  },
  CSV_MAX_CONCURRENT: { schema: integerVar(1, 100), default: '2', doc: 'CSV exports one master streams at once; beyond it the request gets 503 with Retry-After' },
  CSV_TIMEOUT_MS: { schema: integerVar(1000, 86_400_000), default: '300000', doc: 'longest one CSV export may stream before it is cut off, in milliseconds' },
  FLEET_RETENTION: {
    schema: z.string().transform((s, ctx) => {
      const ms = parseDuration(s);
      if (ms === null) {
        ctx.addIssue({ code: 'custom', message: 'a duration such as 30m, 24h, 7d' });
        return z.NEVER;
      }
      return ms;
    }) as z.ZodType<number, string>,
    default: '24h',
    doc: 'a stopped bot, or one whose heartbeat expired, leaves /fleet once its last heartbeat is this old (a duration: 30m, 24h, 7d)',
  },
  SHUTDOWN_TIMEOUT_MS: { schema: integerVar(100, 600_000), default: '15000', doc: 'longest a graceful shutdown may take before the process exits anyway' },
  ...COMMON_VARIABLES,
} satisfies VariableSpecs;

export interface MasterConfig {
  /** @defaultValue "postgres://postgres@127.0.0.1:5432/tickwatch" */
  readonly databaseUrl: string;
  /** Where the API reads alerts (DATABASE_READ_URL); undefined: from `databaseUrl`. @defaultValue undefined */
  readonly readReplica?: ReadReplicaConfig;
  /** @defaultValue "*" (every pair) */
  readonly pairs: '*' | readonly string[];
  /** @defaultValue "stream" */
  readonly delivery: DeliveryMode;
  /** @defaultValue hostname-pid */
  readonly consumerName: string;
  /** @defaultValue 1000 */
  readonly ingestBatchMax: number;
  /** @defaultValue 30000 */
  readonly streamClaimIdleMs: number;
  /** @defaultValue 5 */
  readonly streamMaxAttempts: number;
  /** Always contains "log". @defaultValue ["log"] */
  readonly notify: readonly NotifyChannel[];
  readonly email?: {
    readonly smtpUrl: string;
    /** Refuse to send without STARTTLS. @defaultValue false */
    readonly requireTls: boolean;
    readonly from: string;
    readonly to: readonly string[];
    /** @defaultValue 60 */
    readonly digestSeconds: number;
    /** @defaultValue 20 */
    readonly maxPerHour: number;
  };
  readonly webhook?: {
    readonly url: string;
    readonly secret?: string;
    /** @defaultValue 5000 */
    readonly timeoutMs: number;
  };
  /**
   * The SMTP transport of every email receiver (the `default` one from MAIL_TO and those added through the API): set
   * whenever SMTP_URL is, with or without email in NOTIFY.
   */
  readonly smtp?: {
    readonly smtpUrl: string;
    readonly requireTls: boolean;
    readonly from: string;
  };
  /** Request timeout of every webhook receiver (WEBHOOK_TIMEOUT_MS). @defaultValue 5000 */
  readonly webhookTimeoutMs: number;
  /** @defaultValue 20 */
  readonly notifyMaxAttempts: number;
  /** Bot API base URL of telegram receivers, without `/bot<token>`. @defaultValue "https://api.telegram.org" */
  readonly telegramApiBase: string;
  readonly api: {
    /** Beyond loopback it needs `token` or `allowAnonymous` (checked at load). @defaultValue "127.0.0.1" */
    readonly host: string;
    /** @defaultValue 8080 */
    readonly port: number;
    readonly token?: string;
    /**
     * Every accepted token: API_TOKENS, plus API_TOKEN as the operator token named `operator`. Empty: no token is
     * configured and callers act as `anonymous` (operator from loopback only). @defaultValue []
     */
    readonly tokens: readonly ApiTokenEntry[];
    /** Serve without a token beyond loopback (an explicit choice; the master logs a warning). @defaultValue false */
    readonly allowAnonymous: boolean;
    /** Open /events connections one master serves. @defaultValue 100 */
    readonly eventsMaxClients: number;
    /** Connections of the API's own Postgres pool. @defaultValue 5 */
    readonly dbPoolMax: number;
    /** Postgres statement_timeout on the API's connections (ms). @defaultValue 5000 */
    readonly statementTimeoutMs: number;
    /** CSV exports streamed at once. @defaultValue 2 */
    readonly csvMaxConcurrent: number;
    /** Longest one CSV export may stream (ms). @defaultValue 300000 */
    readonly csvTimeoutMs: number;
    /** A stopped or expired bot leaves the fleet once its last heartbeat is this old (ms). @defaultValue 86400000 (24h) */
    readonly fleetRetentionMs: number;
  };
  /** Period of the bots mirror's reconcile loop (ms). @defaultValue 2000 */
  readonly botsReconcileMs: number;
  /** @defaultValue 15000 */
  readonly shutdownTimeoutMs: number;
  readonly redisUrl: string;
  /** Redis Cluster seed nodes (`host:port`); empty: REDIS_URL is one Redis. @defaultValue [] */
  readonly redisClusterNodes: readonly string[];
  readonly redisKeyPrefix: string;
  readonly logLevel: string;
}

/**
 * True when `host` only accepts connections from this machine: `localhost`, 127.0.0.0/8 or ::1 (also IPv4-mapped).
 * Anything else (0.0.0.0, ::, an interface address, another host name) counts as reachable from beyond it.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice('::ffff:'.length) : h;
  return isIPv4(v4) && v4.startsWith('127.');
}

export function loadMasterConfig(env: Readonly<Record<string, string | undefined>>, argv: readonly string[] = []): MasterConfig {
  const v = loadVariables(MASTER_VARIABLES, env, argv);
  const problems: string[] = [];
  const wantsEmail = v.NOTIFY.includes('email');
  const wantsWebhook = v.NOTIFY.includes('webhook');
  if (wantsEmail && !v.SMTP_URL) problems.push('SMTP_URL is required when NOTIFY includes email');
  if (wantsEmail && !v.MAIL_TO) problems.push('MAIL_TO is required when NOTIFY includes email');
  if (wantsWebhook && !v.WEBHOOK_URL) problems.push('WEBHOOK_URL is required when NOTIFY includes webhook');
  const tokens: ApiTokenEntry[] = [...(v.API_TOKENS ?? [])];
  if (v.API_TOKEN) {
    if (tokens.some((t) => t.name === 'operator')) problems.push('API_TOKENS names a token operator, the name API_TOKEN already has: rename that entry');
    else if (tokens.some((t) => t.token === v.API_TOKEN)) problems.push('API_TOKENS repeats the value of API_TOKEN: give each name its own token');
    else tokens.push(tokenEntry('operator', 'operator', v.API_TOKEN));
  }
  if (!isLoopbackHost(v.API_HOST) && tokens.length === 0 && !v.API_ALLOW_ANONYMOUS) {
    problems.push(
      `API_HOST=${v.API_HOST} serves the API beyond this machine without API_TOKEN: set API_TOKEN (16+ characters), or API_HOST=127.0.0.1, or API_ALLOW_ANONYMOUS=true to let anyone who reaches it in (named tokens in API_TOKENS count as well)`,
    );
  }
  crossCheck(problems);
  return Object.freeze({
    databaseUrl: v.DATABASE_URL,
    readReplica: readReplicaConfig(v),
    pairs: v.MASTER_PAIRS,
    delivery: v.DELIVERY,
    consumerName: v.CONSUMER_NAME ?? `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, 64),
    ingestBatchMax: v.INGEST_BATCH_MAX,
    streamClaimIdleMs: v.STREAM_CLAIM_IDLE_MS,
    streamMaxAttempts: v.STREAM_MAX_ATTEMPTS,
    notify: v.NOTIFY,
    email:
      wantsEmail && v.SMTP_URL && v.MAIL_TO
        ? { smtpUrl: v.SMTP_URL, requireTls: v.SMTP_REQUIRE_TLS, from: v.MAIL_FROM, to: v.MAIL_TO, digestSeconds: v.EMAIL_DIGEST_SECONDS, maxPerHour: v.EMAIL_MAX_PER_HOUR }
        : undefined,
    webhook: wantsWebhook && v.WEBHOOK_URL ? { url: v.WEBHOOK_URL, secret: v.WEBHOOK_SECRET, timeoutMs: v.WEBHOOK_TIMEOUT_MS } : undefined,
    smtp: v.SMTP_URL ? { smtpUrl: v.SMTP_URL, requireTls: v.SMTP_REQUIRE_TLS, from: v.MAIL_FROM } : undefined,
    webhookTimeoutMs: v.WEBHOOK_TIMEOUT_MS,
    notifyMaxAttempts: v.NOTIFY_MAX_ATTEMPTS,
    telegramApiBase: v.TELEGRAM_API_BASE,
    api: {
      host: v.API_HOST,
      port: v.API_PORT,
      token: v.API_TOKEN,
      tokens: Object.freeze(tokens),
      allowAnonymous: v.API_ALLOW_ANONYMOUS,
      eventsMaxClients: v.EVENTS_MAX_CLIENTS,
      dbPoolMax: v.API_DB_POOL_MAX,
      statementTimeoutMs: v.API_STATEMENT_TIMEOUT_MS,
      csvMaxConcurrent: v.CSV_MAX_CONCURRENT,
      csvTimeoutMs: v.CSV_TIMEOUT_MS,
      fleetRetentionMs: v.FLEET_RETENTION,
    },
    botsReconcileMs: v.BOTS_RECONCILE_MS,
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    redisUrl: v.REDIS_URL,
    redisClusterNodes: Object.freeze(v.REDIS_CLUSTER_NODES ?? []),
    redisKeyPrefix: v.REDIS_KEY_PREFIX ?? '',
    logLevel: v.LOG_LEVEL,
  });
}
