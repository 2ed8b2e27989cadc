import Redis from 'ioredis';
import { Client } from 'pg';
import { createLogger } from '../../shared/platform/logger';
import { loadMasterConfig } from '../../shared/config/master-config';
import { createRedisKeys } from '../../shared/contract/redis-keys';
import { makeAlert, publishAlert } from '../../test/helpers/alerts';
import { createTestDatabase, TEST_PG_SERVER, type TestDatabase } from '../../test/helpers/db';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { waitFor } from '../../test/helpers/wait';
import { startOwnRedis, type OwnRedisServer } from '../../test/helpers/redis-server';
import { createMaster, type Master } from '../app';
import { masterTestEnv } from '../../test/helpers/master-env';

const silent = () => createLogger({ name: 'master', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

describe('master through outages', () => {
  let t: TestDatabase;
  let master: Master | undefined;
  const count = async (ids: string[]) => Number((await t.db('alerts').whereIn('id', ids).count<{ n: string }[]>('* as n'))[0]!.n);

  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterEach(async () => {
    await master?.close();
    master = undefined;
  });
  afterAll(() => t?.drop());

  describe('when Postgres refuses connections for a while', () => {
    let r: TestRedis;
    beforeAll(async () => {
      r = await createTestRedis();
    });
    afterAll(() => r?.cleanup());

    async function setConnectable(allowed: boolean): Promise<void> {
      const admin = new Client({ connectionString: `${TEST_PG_SERVER}/postgres` });
      await admin.connect();
      try {
        await admin.query(`ALTER DATABASE "${t.name}" WITH ALLOW_CONNECTIONS ${allowed ? 'true' : 'false'}`);
        if (!allowed) await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [t.name]);
      } finally {
        await admin.end();
      }
    }

    it('keeps running, holds the alerts pending, and stores each once when Postgres is back', async () => {
      const config = loadMasterConfig(masterTestEnv(t.url, r));
      master = await createMaster({ config, logger: silent(), tuning: { streamBlockMs: 300, pairsRefreshMs: 200 } });
      const before = makeAlert();
      await publishAlert(r.redis, r.keys, before);
      await waitFor('the first alert', async () => (await count([before.id])) === 1);

      await setConnectable(false);
      const during = Array.from({ length: 50 }, () => makeAlert());
      try {
        for (const a of during) await publishAlert(r.redis, r.keys, a);
        // The master read the first of them and cannot commit it: it stays pending (not acknowledged), the rest wait.
        await waitFor('an entry read and pending', async () => ((await r.redis.xpending(r.keys.alertStream('BTC-USD'), 'tickwatch-master')) as [number])[0] >= 1);
        const ready = await fetch(`${master.url}/ready`);
        expect(ready.status).toBe(503);
        // The master retries the batch with backoff while Postgres refuses: each failed try is counted in /metrics.
        const failures = async () => Number(/^tickwatch_ingest_failures_total (\d+)$/m.exec(await (await fetch(`${master!.url}/metrics`)).text())?.[1] ?? 0);
        await waitFor('three failed ingest attempts (two retries)', async () => (await failures()) >= 3);
        expect((await fetch(`${master.url}/health`)).status).toBe(200);
        // Still retrying, not given up: the count goes on rising while Postgres is down.
        const seen = await failures();
        await waitFor('another retry', async () => (await failures()) > seen);
      } finally {
        await setConnectable(true);
      }
      await waitFor('the alerts published during the outage', async () => (await count(during.map((a) => a.id))) === 50, { timeoutMs: 15_000 });
      await waitFor('all acknowledged', async () => ((await r.redis.xpending(r.keys.alertStream('BTC-USD'), 'tickwatch-master')) as [number])[0] === 0);
      expect(Number((await t.db('alerts').count<{ n: string }[]>('* as n'))[0]!.n)).toBe(51);
      // Retrying while Postgres was down did not count as deliveries: nothing was dead-lettered.
      expect(await r.redis.xlen(r.keys.deadLetterStream)).toBe(0);
    });
  });

  describe('when Redis restarts and loses every key', () => {
    let server: OwnRedisServer | undefined;
    beforeAll(async () => {
      server = await startOwnRedis();
    });
    afterAll(async () => {
      await server?.destroy();
    });

    it('reconnects, recreates its consumer groups, and goes on storing alerts', async () => {
      const url = server!.url;
      const keys = createRedisKeys('');
      const config = loadMasterConfig({ DATABASE_URL: t.url, REDIS_URL: url, API_HOST: '127.0.0.1', API_PORT: '0', MASTER_PAIRS: 'ETH-USD' });
      master = await createMaster({ config, logger: silent(), tuning: { streamBlockMs: 300, pairsRefreshMs: 200 } });
      const client = new Redis(url, { maxRetriesPerRequest: null });
      try {
        const first = makeAlert({ pair: 'ETH-USD' });
        await publishAlert(client, keys, first);
        await waitFor('the first alert', async () => (await count([first.id])) === 1);

        await server!.stop('SIGKILL');
        await server!.start();
        const second = makeAlert({ pair: 'ETH-USD' });
        await publishAlert(client, keys, second);
        await waitFor('the alert published after the restart', async () => (await count([second.id])) === 1, { timeoutMs: 15_000 });
      } finally {
        client.disconnect();
      }
    });
  });
});
