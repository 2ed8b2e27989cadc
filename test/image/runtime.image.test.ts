import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { normaliseCompose, parseComposeYaml, type ComposeService } from '../../fleet/compose-file';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { freePort } from '../helpers/net';
import { REPO_ROOT } from '../helpers/process';
import { createTestRedis, type TestRedis } from '../helpers/redis';
import { waitFor } from '../helpers/wait';
import { BASE_IMAGE, containerState, envArgs, IMAGE, podman, podmanOk } from './podman';

/**
 * The runtime image, run for real: migrate, simulator, master and two workers as podman containers on the host network
 * against this file's own database (created empty: the migrate container builds it) and Redis key prefix. Commands,
 * environment, health commands and stop grace periods come from docker-compose.yml itself (with its defaults), so the
 * test runs what `docker compose up` would; only what the host network and the test need is changed (addresses and
 * ports, a faster poll). `npm run test:image` builds the image first (test/image/prepare.sh).
 *
 * Every container runs with a read-only root filesystem (podman adds tmpfs /tmp, /run, /var/tmp), as a Kubernetes
 * securityContext would have it. The master and the ETH worker run without an init process (node is pid 1, as in a pod);
 * the BTC worker and the simulator with `--init`, as compose's `init: true` runs them.
 */

const COMPOSE = normaliseCompose(parseComposeYaml(readFileSync(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8')), () => undefined).project.services;
const service = (serviceName: string): ComposeService => {
  const found = COMPOSE[serviceName];
  if (!found?.command) throw new Error(`docker-compose.yml has no service ${serviceName} with a command: the image test runs it`);
  return found;
};
const SERVICES = { migrate: service('migrate'), sim: service('sim'), master: service('master'), btc: service('worker-btc-usd'), eth: service('worker-eth-usd') };
const graceS = (s: ComposeService) => s.stopGracePeriodMs / 1000;

const run = randomBytes(4).toString('hex');
const name = (role: string) => `tw-image-${run}-${role}`;
const NAMES = { migrate: name('migrate'), sim: name('sim'), master: name('master'), btc: name('worker-btc'), eth: name('worker-eth'), probe: name('probe') };

let db: TestDatabase;
let redis: TestRedis;
let apiPort: number;
let simPort: number;
/** How long each `podman stop` took, printed once at the end beside the image size. */
const stopMs: Record<string, number> = {};

/**
 * A service's compose environment on this machine: compose's `redis` and `postgres` hosts become this file's Redis and
 * database, variables compose takes from the host (`null`) are left out, `overrides` win.
 */
function environmentOf(s: ComposeService, overrides: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(s.environment)) {
    if (value === null) continue;
    if (/^redis:\/\/redis:6379\/?$/.test(value)) env[key] = redis.url;
    else if (/^postgres(ql)?:\/\/[^@/]*@postgres:5432\//.test(value)) env[key] = db.url;
    else env[key] = value;
  }
  if (env.REDIS_URL !== undefined) env.REDIS_KEY_PREFIX = redis.prefix;
  return { ...env, ...overrides };
}

/**
 * The compose health command of a service, as `podman exec` runs it. `port`: the port compose's command uses inside the
 * container, replaced by the test's (the test's containers share the host network).
 */
function healthCommand(s: ComposeService, port?: { readonly compose: string | null | undefined; readonly test: number }): string[] {
  const test = s.healthcheck?.test;
  if (!Array.isArray(test) || test.length < 2) throw new Error(`docker-compose.yml: ${s.name} has no exec-form health check`);
  const [kind, ...rest] = test as string[];
  const command = kind === 'CMD-SHELL' ? ['sh', '-c', rest.join(' ')] : rest;
  return port ? command.map((arg) => arg.replace(`:${port.compose}/`, `:${port.test}/`)) : command;
}

/** `podman run -d` of a long-running role on the host network with a read-only root filesystem. */
async function startContainer(containerName: string, s: ComposeService, env: Record<string, string>, flags: readonly string[] = []): Promise<void> {
  await podmanOk(['run', '-d', '--name', containerName, '--network=host', '--read-only', ...flags, ...envArgs(env), IMAGE, ...s.command!]);
}

async function logsOf(containerName: string): Promise<string> {
  const r = await podman(['logs', containerName]);
  return r.stdout + r.stderr;
}

const alertCount = async (pair: string) => Number((await db.db('alerts').where({ pair }).count<{ count: string }[]>('* as count'))[0]!.count);

const workerEnv = (s: ComposeService) =>
  environmentOf(s, {
    TICKER_BASE_URL: `http://127.0.0.1:${simPort}/v0/ticker`,
    // Faster than compose's 5 s so the test sees alerts within seconds; the simulator moves prices every 100 ms.
    FETCH_INTERVAL_MS: '500',
  });

beforeAll(async () => {
  if ((await podman(['image', 'exists', IMAGE])).code !== 0) {
    throw new Error(`image ${IMAGE} is not built: run \`npm run test:image\` (it runs test/image/prepare.sh first)`);
  }
  // An empty database: the migrate container is what creates the schema.
  db = await createTestDatabase({ migrate: false });
  redis = await createTestRedis({ label: 'img' });
  [apiPort, simPort] = [await freePort(), await freePort()];

  const migrate = await podman(['run', '--name', NAMES.migrate, '--network=host', '--read-only', ...envArgs(environmentOf(SERVICES.migrate)), IMAGE, ...SERVICES.migrate.command!], 120_000);
  if (migrate.code !== 0) throw new Error(`the migrate container exited ${migrate.code}:\n${migrate.stdout}${migrate.stderr}`);

  await startContainer(
    NAMES.sim,
    SERVICES.sim,
    environmentOf(SERVICES.sim, { SIM_PORT: String(simPort), SIM_HOST: '127.0.0.1', SIM_PAIRS: 'BTC-USD=67000,ETH-USD=3500', SIM_STEP_MS: '100', SIM_VOLATILITY_PERCENT: '0.05', SIM_RATE_LIMIT_PER_MIN: '0' }),
    ['--init'],
  );
  // On the host network the image's API_HOST=0.0.0.0 would serve the API on every interface of this machine.
  await startContainer(NAMES.master, SERVICES.master, environmentOf(SERVICES.master, { API_HOST: '127.0.0.1', API_PORT: String(apiPort) }));
  await startContainer(NAMES.btc, SERVICES.btc, workerEnv(SERVICES.btc), ['--init']);
  // A terminal on stdout: the logger switches to pino-pretty (a worker thread) and must keep working.
  await startContainer(NAMES.eth, SERVICES.eth, workerEnv(SERVICES.eth), ['-t']);
}, 180_000);

afterAll(async () => {
  if (Object.keys(stopMs).length > 0) process.stdout.write(`IMAGE stop_ms ${Object.entries(stopMs).map(([k, v]) => `${k}=${v}`).join(' ')}\n`);
  // Only this file's containers, by name (a container that never started is simply not there).
  await podman(['rm', '--force', '--ignore', '--time', '0', ...Object.values(NAMES)], 60_000);
  await redis?.cleanup();
  await db?.drop();
}, 90_000);

describe('the runtime image', () => {
  it('migrates an empty database and exits 0', async () => {
    expect((await containerState(NAMES.migrate)).exitCode).toBe(0);
    const tables = await db.db.raw<{ rows: { tablename: string }[] }>(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`);
    expect(tables.rows.map((r) => r.tablename)).toEqual(expect.arrayContaining(['alerts', 'notifications', 'bots']));
  });

  it('serves /ready with 200 from the master, and the compose health commands of the master and the simulator exit 0', async () => {
    const ready = await waitFor(
      'the master to be ready',
      async () => {
        const res = await fetch(`http://127.0.0.1:${apiPort}/ready`);
        return res.status === 200 ? ((await res.json()) as Record<string, string>) : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(ready).toEqual({ status: 'ready', postgres: 'ok', redis: 'ok' });
    const probe = await podman(['exec', NAMES.master, ...healthCommand(SERVICES.master, { compose: SERVICES.master.environment.API_PORT, test: apiPort })]);
    expect({ code: probe.code, out: probe.stdout.trim() }).toEqual({ code: 0, out: expect.stringContaining('/ready answered 200') });
    const simProbe = await podman(['exec', NAMES.sim, ...healthCommand(SERVICES.sim, { compose: SERVICES.sim.environment.SIM_PORT, test: simPort })]);
    expect({ code: simProbe.code, out: simProbe.stdout.trim() }).toEqual({ code: 0, out: expect.stringContaining('answered 200') });
  }, 90_000);

  it('stores the alerts the workers publish, for both pairs', async () => {
    await waitFor('alerts of both pairs in Postgres', async () => (await alertCount('BTC-USD')) > 0 && (await alertCount('ETH-USD')) > 0, { timeoutMs: 90_000, intervalMs: 500 });
    const rows = await db.db('alerts').select('bot_id', 'pair').distinct();
    expect(rows).toEqual(expect.arrayContaining([{ bot_id: 'BTC-USD', pair: 'BTC-USD' }, { bot_id: 'ETH-USD', pair: 'ETH-USD' }]));
  }, 120_000);

  it("exits 0 from each worker's compose health command (node dist/worker/health.js)", async () => {
    for (const [worker, s] of [[NAMES.btc, SERVICES.btc], [NAMES.eth, SERVICES.eth]] as const) {
      const health = await waitFor(`${worker} healthy`, async () => {
        const r = await podman(['exec', worker, ...healthCommand(s)]);
        return r.code === 0 ? r : undefined;
      }, { timeoutMs: 30_000, intervalMs: 500 });
      expect(health.stdout).toMatch(/^healthy: bot (BTC|ETH)-USD is (ok|degraded)/);
    }
  }, 90_000);

  it('runs every process as a non-root user (uid 1000, node)', async () => {
    for (const container of [NAMES.sim, NAMES.master, NAMES.btc, NAMES.eth]) {
      expect({ container, uid: (await podmanOk(['exec', container, 'id', '-u'])).trim() }).toEqual({ container, uid: '1000' });
      // The main process as the host's kernel sees it (rootful podman, no user namespace: the same uid).
      const { pid } = await containerState(container);
      const uids = /^Uid:\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      expect({ container, real: uids?.[1], effective: uids?.[2] }).toEqual({ container, real: '1000', effective: '1000' });
    }
  });

  it('keeps working with a terminal on stdout (podman run -t): pretty logs, no crash', async () => {
    expect((await containerState(NAMES.eth)).running).toBe(true);
    const logs = await logsOf(NAMES.eth);
    expect(logs).toContain('worker started');
    expect(logs).not.toMatch(/unhandled|uncaught|Error: Cannot find module/i);
    // pino-pretty's line, not a JSON object: the TTY was seen and the transport loaded from the read-only image.
    expect(logs).not.toMatch(/^\{"level"/m);
  });

  it('holds neither tests, the bench, fault cases nor dev dependencies', async () => {
    const found = await podmanOk([
      'run', '--rm', '--name', NAMES.probe, '--network=none', IMAGE,
      'find', '/app', '-path', '/app/node_modules', '-prune', '-o',
      '(', '-name', '*.test.js', '-o', '-name', '*.test.ts', '-o', '-path', '/app/dist/test', '-o', '-path', '/app/dist/bench', '-o', '-path', '/app/dist/faults', '-o', '-name', '*.fault.*', ')', '-print',
    ]);
    expect(found.trim().split('\n').filter(Boolean)).toEqual([]);
    // The dev toolchain (some dev dependencies, ajv for one, are also production dependencies of fastify: not those).
    const toolchain = ['jest', 'ts-jest', 'typescript', 'fast-check', 'playwright-core', '@sparticuz/chromium', 'autocannon', 'dclint', 'smtp-server', 'mailparser', '@types/node'];
    const present = await podmanOk(['run', '--rm', '--name', NAMES.probe, '--network=none', IMAGE, 'sh', '-c', 'for p in "$@"; do [ -e "node_modules/$p" ] && echo "$p"; done; true', 'sh', ...toolchain]);
    expect(present.trim().split('\n').filter(Boolean)).toEqual([]);
  });

  it('reports its size', async () => {
    const [bytes, baseBytes] = (await podmanOk(['image', 'inspect', '--format', '{{.Size}}', IMAGE, BASE_IMAGE])).trim().split('\n').map(Number);
    expect(bytes).toBeGreaterThan(baseBytes!);
    const mb = (n: number) => (n / 1e6).toFixed(0);
    process.stdout.write(`IMAGE size_mb=${mb(bytes!)} base_mb=${mb(baseBytes!)} ours_mb=${mb(bytes! - baseBytes!)} image=${IMAGE}\n`);
  });

  describe('podman stop, in reverse order of start (workers, master, simulator)', () => {
    it.each([
      ['the TTY worker', NAMES.eth, graceS(SERVICES.eth)],
      ['the worker', NAMES.btc, graceS(SERVICES.btc)],
      ['the master', NAMES.master, graceS(SERVICES.master)],
      ['the simulator', NAMES.sim, graceS(SERVICES.sim)],
    ])('stops %s (%s) on SIGTERM with exit code 0 within its compose grace period of %s s', async (_what, container, graceS) => {
      const started = Date.now();
      await podmanOk(['stop', '--time', String(graceS), container], (graceS + 30) * 1000);
      const tookMs = Date.now() - started;
      stopMs[container.replace(`tw-image-${run}-`, '')] = tookMs;
      const state = await containerState(container);
      // 137 would be podman's SIGKILL after the grace period: the process did not handle SIGTERM in time.
      expect({ container, exitCode: state.exitCode, withinGrace: tookMs < graceS * 1000 }).toEqual({ container, exitCode: 0, withinGrace: true });
      // The process's own shutdown ran to its end (every closer, in reverse order of creation), not a kill.
      const logs = await logsOf(container);
      const [signalled, stopped] = [logs.indexOf('shutting down'), logs.lastIndexOf('stopped')];
      expect({ container, signalled: signalled >= 0, stoppedAfter: stopped > signalled }).toEqual({ container, signalled: true, stoppedAfter: true });
    }, 90_000);
  });
});
