import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { readBotStatus } from '../shared/contract/fleet-status';
import { TEST_PG_SERVER } from '../test/helpers/db';
import { isAlive, startService, type ServiceProcess } from '../test/helpers/process';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { waitFor } from '../test/helpers/wait';
import { freePort } from '../test/helpers/net';

/**
 * `npm run demo` for real: the runner reads docker-compose.yml, migrates a database, starts the simulator, the master and
 * one worker per pair as processes, and stops them all on SIGTERM. Isolated from other tests through the variables the
 * compose file interpolates (POSTGRES_DB, REDIS_KEY_PREFIX, API_PORT, SIM_PORT).
 */

async function withAdmin<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: `${TEST_PG_SERVER}/postgres` });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The fleet runner's JSON log lines (prefixed "fleet | "). */
function runnerLog(output: string): { service?: string; childPid?: number; msg: string }[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('fleet '))
    .map((l) => l.slice(l.indexOf('| ') + 2))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as { service?: string; childPid?: number; msg: string }];
      } catch {
        return [];
      }
    });
}

describe('npm run demo', () => {
  const PAIRS = ['BTC-USD', 'ETH-USD', 'XRP-USD'];
  const database = `tw_test_fleet_${randomBytes(5).toString('hex')}`;
  let redis: TestRedis;
  let fleet: ServiceProcess | undefined;
  let apiPort: number;

  beforeAll(async () => {
    redis = await createTestRedis();
    apiPort = await freePort();
    let simPort = await freePort();
    while (simPort === apiPort) simPort = await freePort();
    const serverUrl = new URL(TEST_PG_SERVER);
    const redisUrl = new URL(redis.url);
    fleet = startService(
      'fleet/main.ts',
      {
        LOG_LEVEL: 'info',
        // From source: the compiled path's build (fleet/compiled.test.ts) would add tsc's 20 s to every run here.
        FLEET_RUN: 'source',
        POSTGRES_USER: decodeURIComponent(serverUrl.username) || 'postgres',
        POSTGRES_PASSWORD: decodeURIComponent(serverUrl.password) || 'unused-with-trust-auth',
        POSTGRES_DB: database,
        REDIS_KEY_PREFIX: redis.prefix,
        API_PORT: String(apiPort),
        SIM_PORT: String(simPort),
        // Wherever the test's Redis and Postgres are (localhost here; the redis/postgres hosts in docker-compose-tests.yml).
        FLEET_SERVICE_ADDRESSES: `redis=${redisUrl.hostname}:${redisUrl.port || 6379},postgres=${serverUrl.hostname}:${serverUrl.port || 5432}`,
      },
      ['--demo'],
    );
  });

  afterAll(async () => {
    if (fleet) {
      const code = await fleet.stop('SIGTERM', 20_000);
      // If the runner itself had to be killed, its children (each in its own process group) must not outlive the test.
      // Only then: after a clean stop they are gone, and their old pids may by now belong to another test's processes.
      if (code !== 0) {
        for (const { childPid } of runnerLog(fleet.output())) {
          if (childPid !== undefined && isAlive(childPid)) process.kill(-childPid, 'SIGKILL');
        }
      }
    }
    await redis?.cleanup();
    await withAdmin(async (admin) => {
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]);
      await admin.query(`DROP DATABASE IF EXISTS "${database}"`);
    });
  });

  it('runs the migration, the simulator, the master, a worker per pair and the generic workers, and stops them all on SIGTERM', async () => {
    const f = fleet as ServiceProcess;
    await f.waitForOutput('"msg":"completed"', 60_000);

    await waitFor(
      "the master's /ready",
      async () => (await fetch(`http://127.0.0.1:${apiPort}/ready`, { signal: AbortSignal.timeout(2000) })).status === 200,
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    // Each worker polls the simulator and reports a price in its heartbeat.
    for (const pair of PAIRS) {
      const status = await waitFor(`a heartbeat with a price from ${pair}`, async () => {
        const s = await readBotStatus(redis.redis, redis.keys, pair);
        return s?.lastPrice ? s : undefined;
      }, { timeoutMs: 60_000, intervalMs: 250 });
      expect(status).toMatchObject({ pair, status: 'ok', config: { tickerBaseUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/v0\/ticker$/) } });
    }
    // Alerts flow through Redis to the master and into the demo's database.
    const stored = await waitFor('an alert stored by the master', async () => {
      const client = new Client({ connectionString: `${TEST_PG_SERVER}/${database}` });
      await client.connect();
      try {
        const { rows } = await client.query<{ count: string }>('SELECT count(*) FROM alerts');
        return Number(rows[0]?.count) > 0 ? Number(rows[0]?.count) : undefined;
      } finally {
        await client.end();
      }
    }, { timeoutMs: 60_000, intervalMs: 500 });
    expect(stored).toBeGreaterThan(0);

    // Pinned workers name their compose service.
    expect(await readBotStatus(redis.redis, redis.keys, 'BTC-USD')).toMatchObject({ source: 'compose', service: 'worker-btc-usd' });

    // With no runtime bot, the pool is the one spare; a bot added through the API gets a worker of its own, and the
    // spare stays.
    await waitFor('the spare generic worker', () => runnerLog(f.output()).some((l) => l.service === 'pool-1' && l.childPid !== undefined), { timeoutMs: 30_000 });
    const created = await fetch(`http://127.0.0.1:${apiPort}/bots`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pair: 'BTC-EUR', interval_ms: 1000 }) });
    expect(created.status).toBe(201);
    const runtime = await waitFor('a heartbeat with a price from the runtime bot BTC-EUR', async () => {
      const s = await readBotStatus(redis.redis, redis.keys, 'BTC-EUR');
      return s?.lastPrice ? s : undefined;
    }, { timeoutMs: 60_000, intervalMs: 250 });
    expect(runtime).toMatchObject({ source: 'api', workerId: expect.stringMatching(/^pool-[12]$/), botVersion: 1 });
    await waitFor('a second generic worker', () => runnerLog(f.output()).some((l) => l.service === 'pool-2' && l.childPid !== undefined), { timeoutMs: 30_000 });

    const children = runnerLog(f.output()).filter((l) => l.childPid !== undefined);
    expect(children.map((c) => c.service)).toEqual(['migrate', 'sim', 'master', 'worker-btc-usd', 'worker-eth-usd', 'worker-xrp-usd', 'pool-1', 'pool-2']);
    // Every line a service prints carries its name.
    for (const name of ['sim', 'master', 'worker-btc-usd', 'worker-eth-usd', 'worker-xrp-usd']) expect(f.output()).toMatch(new RegExp(`^${name} +\\| \\{`, 'm'));

    expect(await f.stop('SIGTERM', 30_000)).toBe(0);
    const pids = children.map((c) => c.childPid as number);
    expect(pids.filter(isAlive)).toEqual([]);

    // Workers stopped before the master, the master before the simulator.
    const stopped = runnerLog(f.output()).filter((l) => l.msg === 'stopped').map((l) => l.service);
    expect(stopped.slice(0, 5).sort()).toEqual(['pool-1', 'pool-2', 'worker-btc-usd', 'worker-eth-usd', 'worker-xrp-usd']);
    expect(stopped.slice(5)).toEqual(['master', 'sim']);
    expect(f.output()).toContain('"clean":true,"msg":"fleet stopped"');
  }, 180_000);
});

describe('npm start without the services it needs', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tw-fleet-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names what is missing and exits non-zero before starting anything', async () => {
    const closedPort = await freePort();
    const file = path.join(dir, 'docker-compose.yml');
    writeFileSync(
      file,
      `services:
  redis:
    image: redis:7-alpine
  worker-btc-usd:
    image: tickwatch:local
    command: ["node", "dist/worker/main.js"]
    environment:
      PAIR: BTC-USD
      REDIS_URL: redis://redis:${closedPort}
`,
    );
    const run = startService('fleet/main.ts', {}, ['--file', file]);
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain(`Cannot start the fleet:\n  - Redis (compose service "redis") is not reachable at 127.0.0.1:${closedPort} (ECONNREFUSED); worker-btc-usd needs it.`);
    expect(run.output()).not.toContain('"msg":"started"');
  });

  it('refuses a compose file it cannot understand with one clear line and exit code 2', async () => {
    const file = path.join(dir, 'bad.yml');
    writeFileSync(file, 'services:\n  w:\n    image: t\n    command: ["node", "dist/nothing.js"]\n');
    const run = startService('fleet/main.ts', {}, ['--file', file]);
    expect(await run.exited).toBe(2);
    expect(run.output().trim()).toBe('fleet: service w: command ["node","dist/nothing.js"] is not a Tickwatch entry point (expected ["node", "dist/<service>/main.js"], see fleet/roles.ts)');
  });
});
