import path from 'node:path';
import { parseArgs } from 'node:util';
import { describeError } from '../shared/platform/errors';
import { createLogger, type Logger } from '../shared/platform/logger';
import { LOG_LEVELS } from '../shared/platform/config';
import { displayValue, HIDDEN, maskUrlPasswords } from '../shared/platform/secrets';
import { MASTER_VARIABLES } from '../shared/config/master-config';
import { WORKER_VARIABLES } from '../shared/config/worker-config';
import { ComposeFileError } from './compose-file';
import { ensureCompiled, FleetRunError, isCompiledEntry, parseRunFrom, withCompiledWorkers } from './compiled';
import { InterpolationError } from './interpolate';
import { interpolationVariables, loadFleetPlan, type LoadedPlan } from './load-plan';
import { createFleetOutput, loadPrettyFormatter } from './output';
import { PlanError, type FleetPlan, type ServicePlan } from './plan';
import { preflight } from './preflight';
import { createSupervisor, FleetStartError, passthroughEnv } from './supervisor';
import { createWorkerPool, type WorkerPool } from './worker-pool';
import { closeRedis, createRedis, type Redis } from '../shared/platform/redis';
import { createRedisKeys } from '../shared/contract/redis-keys';

const REPO_ROOT = path.resolve(__dirname, '..');
const USAGE = `usage: npm start [-- --file <compose file>] [-- --dry-run] [-- --from-source]
       npm run demo            (adds the ticker simulator; works offline)
Runs the fleet declared in docker-compose.yml as local processes. Redis and PostgreSQL must already run on this machine.
Workers run compiled (node dist/worker/main.js, built with tsc first when dist/ is missing or older than the sources);
--from-source (or FLEET_RUN=source) runs them through tsx instead.`;

/** The variables the services' specs mark secret (API_TOKEN, SMTP_URL, WEBHOOK_URL, WEBHOOK_SECRET, ...). */
const SECRET_VARIABLES = new Set(Object.entries({ ...MASTER_VARIABLES, ...WORKER_VARIABLES }).filter(([, spec]) => 'secret' in spec && spec.secret).map(([name]) => name));

/**
 * Values in --dry-run output: secrets (marked in the specs, or named like one) show at most a URL's scheme and host;
 * every other value shows with URL passwords masked.
 */
function redact(name: string, value: string): string {
  if (value === '') return value;
  return displayValue(value, SECRET_VARIABLES.has(name) || /SECRET|TOKEN|PASSWORD/.test(name));
}

/** The flags of those variables (`--api-token`, `--smtp-url`, ...): their values in a command line are hidden too. */
const SECRET_FLAGS = new Set([...SECRET_VARIABLES].map((name) => `--${name.toLowerCase().replace(/_/g, '-')}`));

/** A service's arguments for --dry-run output: the value of a secret flag hidden, URL passwords masked. */
function redactArgs(args: readonly string[]): string[] {
  return args.map((arg, i) => {
    const eq = arg.indexOf('=');
    if (eq > 0 && SECRET_FLAGS.has(arg.slice(0, eq))) return `${arg.slice(0, eq)}=${HIDDEN}`;
    if (i > 0 && SECRET_FLAGS.has(args[i - 1]!)) return HIDDEN;
    return maskUrlPasswords(arg);
  });
}

function describeService(s: ServicePlan) {
  return {
    service: s.name,
    role: s.role,
    command: `node ${isCompiledEntry(s.entry) ? '' : '--import tsx '}${[...s.nodeFlags, s.entry, ...redactArgs(s.args)].join(' ')}`,
    restart: s.restart,
    listenPort: s.listenPort,
    env: Object.fromEntries(Object.entries(s.env).map(([k, v]) => [k, redact(k, v)])),
  };
}

function describePlan(plan: FleetPlan, spareWorkers: number): string {
  return JSON.stringify(
    {
      profiles: plan.profiles,
      external: plan.external.map((e) => ({ service: e.name, address: e.ports.map((p) => `${e.host}:${p}`), usedBy: e.usedBy })),
      services: plan.services.map(describeService),
      ...(plan.pool
        ? { pool: { ...describeService(plan.pool), copies: `one per enabled runtime bot + ${spareWorkers} spare(s) (FLEET_SPARE_WORKERS), named pool-1, pool-2, ... (their WORKER_ID)` } }
        : {}),
    },
    null,
    2,
  );
}

async function run(loaded: LoadedPlan, logger: Logger, output: ReturnType<typeof createFleetOutput>): Promise<never> {
  const { plan } = loaded;
  const problems = await preflight(plan);
  if (problems.length > 0) {
    process.stderr.write(`Cannot start the fleet:\n${problems.map((p) => `  - ${p.message}`).join('\n')}\n`);
    process.exit(1);
  }
  if (loaded.unsetVariables.length > 0) {
    logger.warn({ variables: loaded.unsetVariables }, 'variables used in the compose file are not set; using ""');
  }
  logger.info(
    {
      compose: path.relative(process.cwd(), loaded.composeFile) || loaded.composeFile,
      profiles: plan.profiles,
      services: plan.services.map((s) => s.name),
      external: plan.external.map((e) => `${e.name}@${e.ports.map((p) => `${e.host}:${p}`).join(',')}`),
    },
    'starting the fleet',
  );

  const compiled = [...new Set([...plan.services, ...(plan.pool ? [plan.pool] : [])].map((s) => s.entry).filter(isCompiledEntry))];
  if (compiled.length > 0) {
    try {
      await ensureCompiled(REPO_ROOT, compiled, { info: (line) => logger.info(line), warn: (line) => logger.warn(line) });
    } catch (err) {
      logger.error({ err: describeError(err) }, 'could not build the compiled workers');
      process.exit(1);
    }
  }

  const supervisor = createSupervisor({ plan, root: REPO_ROOT, output, logger, baseEnv: passthroughEnv(process.env) });
  let pool: { pool: WorkerPool; redis: Redis } | undefined;
  let firstSignalAt: number | undefined;
  const shutdown = async (code: number, reason: string): Promise<never> => {
    logger.info({ reason }, 'stopping the fleet: workers, then the master, then the simulator');
    await pool?.pool.stop();
    await closeRedis(pool?.redis);
    const { clean } = await supervisor.stop();
    logger.info({ clean }, 'fleet stopped');
    process.exit(clean ? code : 1);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    const now = Date.now();
    if (firstSignalAt === undefined) {
      firstSignalAt = now;
      void shutdown(0, signal);
    } else if (now - firstSignalAt > 1000) {
      // npm forwards the terminal's Ctrl-C too, so a second signal within a second is the same keypress.
      logger.warn({ signal }, 'second signal: killing every service now');
      supervisor.kill();
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('unhandledRejection', (err) => {
    logger.error({ err: describeError(err) }, 'unhandled rejection in the runner');
    void shutdown(1, 'unhandledRejection');
  });

  // After a signal, the shutdown it started ends the process; nothing else may exit first.
  const awaitSignalShutdown = () => new Promise<never>(() => undefined);
  try {
    await supervisor.start();
  } catch (err) {
    if (firstSignalAt !== undefined) return awaitSignalShutdown();
    logger.error({ err: describeError(err) }, err instanceof FleetStartError ? err.message : 'could not start the fleet');
    return shutdown(1, 'start failed');
  }
  if (plan.pool && firstSignalAt === undefined) {
    const template = plan.pool;
    const clusterNodes = (template.env.REDIS_CLUSTER_NODES ?? '').split(',').map((n) => n.trim()).filter(Boolean);
    const redis = createRedis({ url: template.env.REDIS_URL ?? 'redis://127.0.0.1:6379', clusterNodes }, logger, { name: 'fleet-pool', failFast: true });
    pool = { pool: createWorkerPool({ template, supervisor, redis, keys: createRedisKeys(template.env.REDIS_KEY_PREFIX ?? ''), spares: loaded.spareWorkers, logger }), redis };
    pool.pool.start();
  }
  logger.info({ pids: supervisor.pids().length }, 'fleet running; Ctrl-C or SIGTERM stops it');
  await supervisor.allEnded;
  if (firstSignalAt !== undefined) return awaitSignalShutdown();
  logger.error('every service has ended and none will be restarted; exiting');
  return shutdown(1, 'all services ended');
}

async function main(argv: readonly string[]): Promise<void> {
  let args: { demo?: boolean; 'dry-run'?: boolean; 'from-source'?: boolean; file?: string; help?: boolean };
  try {
    args = parseArgs({
      args: [...argv],
      options: { demo: { type: 'boolean' }, 'dry-run': { type: 'boolean' }, 'from-source': { type: 'boolean' }, file: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    process.stderr.write(`fleet: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }

  let loaded: LoadedPlan;
  try {
    // Like FLEET_SPARE_WORKERS: from the shell, then (--demo) fleet/demo.env, then .env.
    const runFrom = parseRunFrom(args['from-source'] === true, interpolationVariables({ root: REPO_ROOT, demo: args.demo === true, env: process.env })('FLEET_RUN'));
    loaded = loadFleetPlan({ root: REPO_ROOT, composeFile: args.file && path.resolve(args.file), demo: args.demo === true, env: process.env });
    if (runFrom === 'compiled') loaded = { ...loaded, plan: withCompiledWorkers(loaded.plan) };
  } catch (err) {
    if (err instanceof ComposeFileError || err instanceof PlanError || err instanceof InterpolationError || err instanceof FleetRunError) {
      process.stderr.write(`fleet: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (args['dry-run']) {
    process.stdout.write(`${describePlan(loaded.plan, loaded.spareWorkers)}\n`);
    return;
  }

  const tty = process.stdout.isTTY === true;
  const output = createFleetOutput({
    stdout: process.stdout,
    stderr: process.stderr,
    names: ['fleet', ...loaded.plan.services.map((s) => s.name), ...(loaded.plan.pool ? ['pool-10'] : [])],
    colour: tty,
    formatJson: tty ? loadPrettyFormatter() : undefined,
  });
  const level = (LOG_LEVELS as readonly string[]).includes(process.env.LOG_LEVEL ?? '') ? process.env.LOG_LEVEL : 'info';
  const logger = createLogger({ name: 'fleet', level, pretty: false, destination: output.writable('fleet', 'stdout') });
  await run(loaded, logger, output);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`fleet: ${describeError(err)}\n`);
  process.exit(1);
});
