import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { assertSchemaCurrent, createDb, SchemaBehindError, type Knex } from '../shared/platform/db';
import { describeError } from '../shared/platform/errors';
import { createLifecycle, type Lifecycle } from '../shared/platform/lifecycle';
import type { Logger } from '../shared/platform/logger';
import { isLoopbackHost, type MasterConfig } from '../shared/config/master-config';
import { closeRedis, createRedis, type Redis } from '../shared/platform/redis';
import { createRedisKeys, type RedisKeys } from '../shared/contract/redis-keys';
import { createAlertRepository } from './ingest/alert-repository';
import { createAlertStore } from './ingest/alert-store';
import { createApiServer } from './http/server';
import { backoffDelay, createSleeper } from '../shared/platform/retry';
import { createDeadLetters } from './ingest/dead-letter';
import { createEmailSender } from './notify/email-notifier';
import { createMetrics, type MasterMetrics } from './metrics';
import { createNotificationDelivery } from './notify/notification-delivery';
import type { ChannelSender } from './notify/notifier';
import { createOutbox } from './notify/outbox';
import { configReceivers } from './notify/config-receivers';
import { createDiscordSender } from './notify/discord-sender';
import { createSlackSender } from './notify/slack-sender';
import { createTelegramSender } from './notify/telegram-sender';
import { createReceiversRepository } from '../shared/read-model/receivers-repository';
import { createPubSubConsumer } from './ingest/pubsub-consumer';
import { createStreamConsumer } from './ingest/stream-consumer';
import { createWebhookSender } from './notify/webhook-notifier';
import { createBotsReconciler } from './bots/bots-reconciler';
import { createBotsRepository } from '../shared/read-model/bots-repository';
import { adoptLegacyLastSeen } from '../shared/read-model/fleet-view';
import { createReplicaReads, type ReplicaReads } from '../shared/read-model/replica-reads';

/** Knobs tests turn to make time pass faster; production uses the defaults. */
export interface MasterTuning {
  /** @defaultValue 2000 */
  readonly streamBlockMs?: number;
  /** @defaultValue 3000 */
  readonly pairsRefreshMs?: number;
  /** @defaultValue 1000 */
  readonly notifyPollMs?: number;
  /** @defaultValue 2000 */
  readonly notifyRetryBaseMs?: number;
  /** The clock receivers' quiet hours are judged by. @defaultValue () => new Date() */
  readonly notifyNow?: () => Date;
}

export interface MasterDeps {
  readonly config: MasterConfig;
  readonly logger: Logger;
  /** Closers are registered here; closing it stops the master. Created when absent. */
  readonly lifecycle?: Lifecycle;
  readonly tuning?: MasterTuning;
}

export interface Master {
  /** Ingest and notification delivery's pool. */
  readonly db: Knex;
  /** The HTTP API's own pool (API_DB_POOL_MAX connections, API_STATEMENT_TIMEOUT_MS per statement). */
  readonly apiDb: Knex;
  /** The API's pool on the read replica (DATABASE_READ_URL, same limits), when one is configured. */
  readonly replicaDb?: Knex;
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly metrics: MasterMetrics;
  readonly api: FastifyInstance;
  /** The API's base URL, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  /** Stops consuming, commits the open batch, finishes deliveries in flight, closes everything (reverse order). */
  close(): Promise<void>;
}

/** Postgres error codes that no amount of waiting fixes at startup. */
const FATAL_AT_START = new Set(['3D000' /* database does not exist */, '28P01' /* bad password */, '28000']);

/** Waits for Postgres (logging once) and checks the schema; a missing database or pending migrations stop the start. */
async function waitForSchema(db: Knex, logger: Logger, lifecycle: Lifecycle): Promise<void> {
  const sleeper = createSleeper();
  lifecycle.add('schema check', () => sleeper.wakeAll());
  for (let attempt = 1; ; attempt++) {
    try {
      await assertSchemaCurrent(db);
      if (attempt > 1) logger.info('postgres available');
      return;
    } catch (err) {
      if (err instanceof SchemaBehindError) throw err;
      const code = (err as { code?: string }).code ?? '';
      if (code === '3D000') throw new SchemaBehindError(`the database does not exist (${describeError(err)}). Run \`npm run db:migrate\` first.`);
      if (FATAL_AT_START.has(code)) throw err;
      if (lifecycle.closing) throw err;
      if (attempt === 1) logger.warn({ err: describeError(err) }, 'postgres unavailable at start; waiting for it');
      await sleeper.sleep(backoffDelay(attempt, 250, 5000));
    }
  }
}

/** Client-side margin past the statement timeout before a replica query that got no answer at all is given up. */
const REPLICA_READ_MARGIN_MS = 1000;

/**
 * The API's pool on the read replica and the routing of alert reads over it, when DATABASE_READ_URL is set. The pool
 * has the API's limits (API_DB_POOL_MAX, API_STATEMENT_TIMEOUT_MS) plus a connect timeout and a client-side read
 * timeout, so a replica that is down or silent costs a read a bounded wait before the primary serves it.
 */
function createApiReplica(config: MasterConfig, logger: Logger, metrics: MasterMetrics, apiDb: Knex, lifecycle: Lifecycle): { replicaDb?: Knex; replicaReads?: ReplicaReads } {
  const settings = config.readReplica;
  if (!settings) return {};
  const replicaDb = createDb(settings.url, {
    poolMax: config.api.dbPoolMax,
    statementTimeoutMs: config.api.statementTimeoutMs,
    connectTimeoutMs: settings.connectTimeoutMs,
    queryTimeoutMs: config.api.statementTimeoutMs + REPLICA_READ_MARGIN_MS,
    applicationName: 'tickwatch-master-api-replica',
    logger,
  });
  lifecycle.add('api replica postgres', () => replicaDb.destroy());
  const replicaReads = createReplicaReads({
    primary: apiDb,
    replica: replicaDb,
    logger,
    maxLagMs: settings.maxLagMs,
    probeTimeoutMs: settings.connectTimeoutMs + REPLICA_READ_MARGIN_MS,
    onFallback: (reason) => metrics.replicaFallbacks.inc({ reason }),
    onReport: (report) => {
      metrics.replicaLagSeconds.set(report.lag_ms === null ? -1 : report.lag_ms / 1000);
      metrics.replicaLagBytes.set(report.lag_bytes ?? -1);
    },
  });
  return { replicaDb, replicaReads };
}

/**
 * Builds and starts the master: ingest (stream or pub/sub) into Postgres, the notification outbox loop and the HTTP API.
 * Every resource registers its closer as it is created, so shutdown releases them newest first: the HTTP server, then
 * API's pool, then ingest (stop consuming, commit the batch in hand, ack), then the delivery loop (finish the send in
 * flight), then the notifier pools, knex and Redis. The API has a Postgres pool of its own, so no query a client sends
 * can take the connections ingest and delivery need.
 */
export async function createMaster(deps: MasterDeps): Promise<Master> {
  const { config, tuning = {} } = deps;
  const logger = deps.logger;
  const lifecycle = deps.lifecycle ?? createLifecycle(logger);
  try {
    const keys = createRedisKeys(config.redisKeyPrefix);
    const metrics = createMetrics();

    const redis = createRedis({ url: config.redisUrl, clusterNodes: config.redisClusterNodes }, logger, { name: `master-${config.consumerName}` });
    lifecycle.add('redis', () => closeRedis(redis));
    // Once, in the background (a Redis still down at start must not hold the master): the fleet table keeps the bots
    // an older version recorded under the last-seen hash's name before hash tags.
    adoptLegacyLastSeen(redis, keys).then(
      (moved) => moved > 0 && logger.info({ moved }, 'moved last-seen bot statuses from the hash of the older name'),
      (err: unknown) => logger.warn({ err: describeError(err) }, 'last-seen bot statuses of the older name not moved; retried at the next start'),
    );

    const db = createDb(config.databaseUrl, { poolMax: 10, applicationName: 'tickwatch-master', logger });
    lifecycle.add('postgres', () => db.destroy());

    await waitForSchema(db, logger, lifecycle);

    const repository = createAlertRepository(db);
    // Receivers: MAIL_TO / WEBHOOK_URL are rewritten as the `default` receiver(s) on every start; the API adds the rest.
    const receivers = createReceiversRepository(db);
    await receivers.syncConfig(configReceivers(config));
    const outbox = createOutbox(db, receivers);

    // A sender per kind this master can deliver: email needs SMTP_URL; rows of a kind without a sender here wait for
    // a master that has one.
    const senders: ChannelSender[] = [
      createWebhookSender({ timeoutMs: config.webhookTimeoutMs }),
      createSlackSender({ timeoutMs: config.webhookTimeoutMs }),
      createDiscordSender({ timeoutMs: config.webhookTimeoutMs }),
      createTelegramSender({ apiBase: config.telegramApiBase, timeoutMs: config.webhookTimeoutMs }),
    ];
    if (config.smtp) senders.push(createEmailSender(config.smtp));
    for (const s of senders) lifecycle.add(`${s.kind} sender`, () => s.close());

    const delivery = createNotificationDelivery({
      db,
      outbox,
      repository,
      receivers,
      senders: senders as ChannelSender[],
      logger,
      metrics,
      maxAttempts: config.notifyMaxAttempts,
      emailMaxPerHour: config.email?.maxPerHour ?? Infinity,
      pollMs: tuning.notifyPollMs,
      retryBaseMs: tuning.notifyRetryBaseMs,
      now: tuning.notifyNow,
    });
    delivery.start();
    lifecycle.add('notification delivery', () => delivery.stop());

    const store = createAlertStore({ db, repository, outbox, redis, keys, logger, metrics, onNotificationsQueued: () => delivery.wake() });
    const deadLetters = createDeadLetters({ redis, keys, logger, metrics });
    if (config.delivery === 'stream') {
      const consumer = createStreamConsumer({
        redis,
        keys,
        store,
        deadLetters,
        logger,
        metrics,
        pairs: config.pairs,
        consumerName: config.consumerName,
        batchMax: config.ingestBatchMax,
        claimIdleMs: config.streamClaimIdleMs,
        maxAttempts: config.streamMaxAttempts,
        blockMs: tuning.streamBlockMs,
        pairsRefreshMs: tuning.pairsRefreshMs,
      });
      consumer.start();
      lifecycle.add('stream ingest', () => consumer.stop());
    } else {
      const consumer = createPubSubConsumer({ redis, keys, store, deadLetters, logger, pairs: config.pairs, batchMax: config.ingestBatchMax });
      lifecycle.add('pubsub ingest', () => consumer.stop());
      await consumer.start();
    }

    // Desired state of the runtime bots: the reconcile loop keeps the Redis mirror on the table and records compose bots
    // from their heartbeats. Stopped after the HTTP server (which calls it after each change), before Postgres and Redis.
    const botsRepository = createBotsRepository(db);
    const botsReconciler = createBotsReconciler({ db, redis, keys, repository: botsRepository, logger, periodMs: config.botsReconcileMs });
    botsReconciler.start();
    lifecycle.add('bots reconcile', () => botsReconciler.stop());

    // The API's own pool, with a statement timeout: however many heavy queries clients send, they wait for these
    // connections and are cancelled past the timeout, while ingest and delivery keep theirs.
    const apiDb = createDb(config.databaseUrl, {
      poolMax: config.api.dbPoolMax,
      statementTimeoutMs: config.api.statementTimeoutMs,
      applicationName: 'tickwatch-master-api',
      logger,
    });
    lifecycle.add('api postgres', () => apiDb.destroy());
    const { replicaDb, replicaReads } = createApiReplica(config, logger, metrics, apiDb, lifecycle);
    const api = await createApiServer({
      db: apiDb,
      replicaReads,
      redis,
      keys,
      metrics,
      logger,
      apiToken: config.api.token,
      apiTokens: config.api.tokens,
      botsRepository: createBotsRepository(apiDb),
      afterBotChange: (botId) => botsReconciler.afterChange(botId),
      eventsMaxClients: config.api.eventsMaxClients,
      csvMaxConcurrent: config.api.csvMaxConcurrent,
      csvTimeoutMs: config.api.csvTimeoutMs,
      fleetRetentionMs: config.api.fleetRetentionMs,
    });
    lifecycle.add('http server', () => api.close());
    await api.listen({ host: config.api.host, port: config.api.port });
    if (config.api.tokens.length === 0 && !isLoopbackHost(config.api.host)) {
      // Only reachable with API_ALLOW_ANONYMOUS=true (loadMasterConfig refuses it otherwise): say so on every start.
      logger.warn(
        { host: config.api.host, port: config.api.port },
        `API_ALLOW_ANONYMOUS=true: the API and dashboard on ${config.api.host}:${config.api.port} answer anyone who can reach them, with no token (reads only: a change needs a loopback peer or an operator token)`,
      );
    }
    const address = api.server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;

    logger.info(
      { api: url, delivery: config.delivery, pairs: config.pairs, consumer: config.consumerName, notify: config.notify, batchMax: config.ingestBatchMax },
      `master started; API on ${url}`,
    );
    return { db, apiDb, replicaDb, redis, keys, metrics, api, url, close: () => lifecycle.close() };
  } catch (err) {
    await lifecycle.close();
    throw err;
  }
}
