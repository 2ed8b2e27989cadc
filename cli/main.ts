import pino from 'pino';
import { COMMON_VARIABLES, loadVariables } from '../shared/platform/config';
import { createDb } from '../shared/platform/db';
import { ConfigError, describeError } from '../shared/platform/errors';
import { createLogger } from '../shared/platform/logger';
import { DATABASE_VARIABLES, MASTER_VARIABLES, READ_REPLICA_VARIABLES, readReplicaConfig } from '../shared/config/master-config';
import { closeRedis, createRedis, type Redis } from '../shared/platform/redis';
import { createRedisKeys } from '../shared/contract/redis-keys';
import { userInfo } from 'node:os';
import { createAlertQueries } from '../shared/read-model/alert-queries';
import { createReplicaReads } from '../shared/read-model/replica-reads';
import { createBotsRepository } from '../shared/read-model/bots-repository';
import { createSilencesRepository } from '../shared/read-model/silences-repository';
import { createReceiversRepository } from '../shared/read-model/receivers-repository';
import { parseCommandLine, UsageError, USAGE } from './args';
import { runCommand } from './commands';

/** Longest the CLI waits for an answer to one query on the read replica before reading the primary instead. */
const CLI_REPLICA_QUERY_TIMEOUT_MS = 60_000;

/** `npm run alerts`: alert history, statistics and fleet status from a terminal, through the API's query modules. */
async function main(): Promise<number> {
  const now = Date.now();
  let parsed: ReturnType<typeof parseCommandLine>;
  let config;
  try {
    parsed = parseCommandLine(process.argv.slice(2), now);
    const env = { ...process.env, ...Object.fromEntries(Object.entries(parsed.connection).filter(([, v]) => v !== undefined)) };
    config = loadVariables(
      { ...DATABASE_VARIABLES, ...READ_REPLICA_VARIABLES, REDIS_URL: COMMON_VARIABLES.REDIS_URL, REDIS_CLUSTER_NODES: COMMON_VARIABLES.REDIS_CLUSTER_NODES, REDIS_KEY_PREFIX: COMMON_VARIABLES.REDIS_KEY_PREFIX, FLEET_RETENTION: MASTER_VARIABLES.FLEET_RETENTION },
      env,
    );
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`alerts: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (parsed.command.kind === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  // Logs (Redis reconnects and the like) go to stderr: stdout carries the CSV or JSON.
  const logger = createLogger({ name: 'alerts-cli', level: 'warn', pretty: false, destination: pino.destination(2) });
  // With a logger knex's own warnings go to stderr through it, never onto stdout between CSV rows.
  const db = createDb(config.DATABASE_URL, { poolMax: 2, applicationName: 'tickwatch-cli', logger });
  // Alert reads go to the read replica when one is configured, the primary serving them (with a warning on stderr) when
  // it cannot; the bots commands write, and read what they wrote, on DATABASE_URL.
  const replicaSettings = readReplicaConfig(config);
  const replicaDb = replicaSettings
    ? createDb(replicaSettings.url, {
        poolMax: 2,
        applicationName: 'tickwatch-cli-replica',
        logger,
        connectTimeoutMs: replicaSettings.connectTimeoutMs,
        // One keyset batch takes milliseconds: a replica silent this long has stopped answering.
        queryTimeoutMs: CLI_REPLICA_QUERY_TIMEOUT_MS,
      })
    : undefined;
  const queries =
    replicaSettings && replicaDb
      ? createReplicaReads({ primary: db, replica: replicaDb, logger, maxLagMs: replicaSettings.maxLagMs, probeTimeoutMs: replicaSettings.connectTimeoutMs + 1000 }).queries
      : createAlertQueries(db);
  let redis: Redis | undefined;
  // `| head` closes stdout early: that is the reader's choice, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
  });
  try {
    await runCommand(parsed.command, {
      queries,
      now,
      out: process.stdout,
      fleetRetentionMs: config.FLEET_RETENTION,
      bots: { db, repository: createBotsRepository(db), actor: `cli:${osUser()}` },
      silences: { repository: createSilencesRepository(db), actor: `cli:${osUser()}` },
      receivers: { repository: createReceiversRepository(db), actor: `cli:${osUser()}` },
      warn: (message) => process.stderr.write(`alerts: ${message}\n`),
      redis: () => {
        redis ??= createRedis({ url: config.REDIS_URL, clusterNodes: config.REDIS_CLUSTER_NODES }, logger, {
          name: 'cli',
          // Give up after a few tries: a person is waiting for an answer, not for a reconnect.
          extra: { maxRetriesPerRequest: 2, retryStrategy: (times) => (times > 3 ? null : 200 * times) },
        });
        return { redis, keys: createRedisKeys(config.REDIS_KEY_PREFIX ?? '') };
      },
    });
    return 0;
  } catch (err) {
    // `receivers set` checks a new target against the receiver's stored kind, so that refusal comes from here.
    if (err instanceof UsageError) {
      process.stderr.write(`alerts: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`alerts: ${describeError(err)}\n`);
    return 1;
  } finally {
    if (redis) await closeRedis(redis);
    await replicaDb?.destroy();
    await db.destroy();
  }
}

/** Who runs the CLI, for the audit: the OS user name (USER when the account has no name entry). */
function osUser(): string {
  try {
    return userInfo().username || process.env.USER || 'unknown';
  } catch {
    return process.env.USER || 'unknown';
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`alerts: ${describeError(err)}\n`);
    process.exitCode = 1;
  },
);
