import { hostname } from 'node:os';
import { z } from 'zod';
import { PairSchema } from '../contract/alert';
import {
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

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/tickwatch';
export const DELIVERY_MODES = ['stream', 'pubsub'] as const;
export type DeliveryMode = (typeof DELIVERY_MODES)[number];
export const NOTIFY_CHANNELS = ['log', 'email', 'webhook'] as const;
export type NotifyChannel = (typeof NOTIFY_CHANNELS)[number];

const EMAIL_RE = /^[^\s@,<>]+@[^\s@,<>]+$/;

/** The variables the database tools (migrate, CLI) need. */
export const DATABASE_VARIABLES = {
  DATABASE_URL: { schema: urlVar(['postgres:', 'postgresql:']), default: DEFAULT_DATABASE_URL, doc: 'PostgreSQL connection URL' },
} satisfies VariableSpecs;

/** Every variable the master reads (ingest, notifications, API). */
export const MASTER_VARIABLES = {
  ...DATABASE_VARIABLES,
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
  NOTIFY_MAX_ATTEMPTS: { schema: integerVar(1, 1000), default: '20', doc: 'delivery attempts of a notification before it is marked failed' },
  API_HOST: { schema: stringVar(/^[A-Za-z0-9.:-]{1,255}$/, 'a host name or IP address'), default: '0.0.0.0', doc: 'address the HTTP API and dashboard listen on' },
  API_PORT: { schema: integerVar(0, 65_535), default: '8080', doc: 'port of the HTTP API and dashboard (0 picks a free port)' },
  API_TOKEN: { schema: stringVar(/^\S{16,512}$/, 'at least 16 characters, no spaces'), optional: true, secret: true, doc: 'when set, every endpoint but /health and /ready needs Authorization: Bearer <token>' },
  SHUTDOWN_TIMEOUT_MS: { schema: integerVar(100, 600_000), default: '15000', doc: 'longest a graceful shutdown may take before the process exits anyway' },
  ...COMMON_VARIABLES,
} satisfies VariableSpecs;

export interface MasterConfig {
  /** @defaultValue "postgres://postgres@127.0.0.1:5432/tickwatch" */
  readonly databaseUrl: string;
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
  /** @defaultValue 20 */
  readonly notifyMaxAttempts: number;
  readonly api: {
    /** @defaultValue "0.0.0.0" */
    readonly host: string;
    /** @defaultValue 8080 */
    readonly port: number;
    readonly token?: string;
  };
  /** @defaultValue 15000 */
  readonly shutdownTimeoutMs: number;
  readonly redisUrl: string;
  readonly redisKeyPrefix: string;
  readonly logLevel: string;
}

export function loadMasterConfig(env: Readonly<Record<string, string | undefined>>, argv: readonly string[] = []): MasterConfig {
  const v = loadVariables(MASTER_VARIABLES, env, argv);
  const problems: string[] = [];
  const wantsEmail = v.NOTIFY.includes('email');
  const wantsWebhook = v.NOTIFY.includes('webhook');
  if (wantsEmail && !v.SMTP_URL) problems.push('SMTP_URL is required when NOTIFY includes email');
  if (wantsEmail && !v.MAIL_TO) problems.push('MAIL_TO is required when NOTIFY includes email');
  if (wantsWebhook && !v.WEBHOOK_URL) problems.push('WEBHOOK_URL is required when NOTIFY includes webhook');
  crossCheck(problems);
  return Object.freeze({
    databaseUrl: v.DATABASE_URL,
    pairs: v.MASTER_PAIRS,
    delivery: v.DELIVERY,
    consumerName: v.CONSUMER_NAME ?? `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, 64),
    ingestBatchMax: v.INGEST_BATCH_MAX,
    streamClaimIdleMs: v.STREAM_CLAIM_IDLE_MS,
    streamMaxAttempts: v.STREAM_MAX_ATTEMPTS,
    notify: v.NOTIFY,
    email:
      wantsEmail && v.SMTP_URL && v.MAIL_TO
        ? { smtpUrl: v.SMTP_URL, from: v.MAIL_FROM, to: v.MAIL_TO, digestSeconds: v.EMAIL_DIGEST_SECONDS, maxPerHour: v.EMAIL_MAX_PER_HOUR }
        : undefined,
    webhook: wantsWebhook && v.WEBHOOK_URL ? { url: v.WEBHOOK_URL, secret: v.WEBHOOK_SECRET, timeoutMs: v.WEBHOOK_TIMEOUT_MS } : undefined,
    notifyMaxAttempts: v.NOTIFY_MAX_ATTEMPTS,
    api: { host: v.API_HOST, port: v.API_PORT, token: v.API_TOKEN },
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    redisUrl: v.REDIS_URL,
    redisKeyPrefix: v.REDIS_KEY_PREFIX ?? '',
    logLevel: v.LOG_LEVEL,
  });
}
