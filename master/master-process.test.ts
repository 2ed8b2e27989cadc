import { makeAlert, publishAlert } from '../test/helpers/alerts';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db';
import { startService, type ServiceProcess } from '../test/helpers/process';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { waitFor } from '../test/helpers/wait';
import { startWebhookReceiver, type TestWebhookReceiver } from '../test/helpers/webhook';
import { masterTestEnv } from '../test/helpers/master-env';

describe('the master as a process', () => {
  let t: TestDatabase;
  let r: TestRedis;
  let hook: TestWebhookReceiver;
  const running: ServiceProcess[] = [];

  const baseEnv = () => ({
    ...masterTestEnv(t.url, r),
    LOG_LEVEL: 'info',
  });
  function master(env: Record<string, string>): ServiceProcess {
    const p = startService('master/main.ts', env);
    running.push(p);
    return p;
  }
  const count = async (table: string) => Number((await t.db(table).count<{ n: string }[]>('* as n'))[0]!.n);

  beforeAll(async () => {
    [t, r, hook] = await Promise.all([createTestDatabase(), createTestRedis(), startWebhookReceiver()]);
  });
  afterAll(async () => {
    await Promise.all(running.map((p) => p.stop('SIGKILL')));
    await hook?.stop();
    await r?.cleanup();
    await t?.drop();
  });

  describe('when the configuration is invalid', () => {
    it.each([
      [{ INGEST_BATCH_MAX: '0' }, /INGEST_BATCH_MAX="0" is invalid: expected an integer from 1 to 10000/],
      [{ NOTIFY: 'email' }, /SMTP_URL is required when NOTIFY includes email/],
    ])('exits 2 with one line naming the variable (%o)', async (env, message) => {
      const p = master({ ...baseEnv(), ...env });
      expect(await p.exited).toBe(2);
      expect(p.output()).toMatch(message);
      expect(p.output().trim().split('\n')).toHaveLength(1);
    });
  });

  it('npm run db:migrate creates a missing database and applies every migration; a bad DATABASE_URL exits 2 naming it', async () => {
    const url = `${t.url}_migrate`;
    try {
      const migrate = startService('master/migrate.ts', { DATABASE_URL: url });
      running.push(migrate);
      expect(await migrate.exited).toBe(0);
      expect(migrate.output()).toMatch(/created database \w+_migrate/);
      expect(migrate.output()).toMatch(/applied \d+ migration\(s\):\n {2}20261129000001_create_alerts\.ts\n {2}20261129000002_create_notifications\.ts/);
      const bad = startService('master/migrate.ts', { DATABASE_URL: 'mysql://127.0.0.1/tickwatch' });
      running.push(bad);
      expect(await bad.exited).toBe(2);
      expect(bad.output()).toMatch(/DATABASE_URL="mysql:\/\/127.0.0.1\/tickwatch" is invalid/);
    } finally {
      await t.db.raw(`DROP DATABASE IF EXISTS "${t.name}_migrate" WITH (FORCE)`);
    }
  });

  it('refuses to start on a database whose migrations are pending, telling to run db:migrate', async () => {
    const empty = await createTestDatabase({ migrate: false });
    try {
      const p = master({ ...baseEnv(), DATABASE_URL: empty.url });
      expect(await p.exited).toBe(1);
      expect(p.output()).toMatch(/master cannot start: the database schema is behind: .*pending.*npm run db:migrate/);
    } finally {
      await empty.drop();
    }
  });

  it('stores every alert of a burst exactly once when killed with SIGKILL in the middle and restarted', async () => {
    const env = { ...baseEnv(), CONSUMER_NAME: 'kill-test', INGEST_BATCH_MAX: '200', NOTIFY: 'webhook', WEBHOOK_URL: hook.url, WEBHOOK_SECRET: 'kill-test-secret', LOG_LEVEL: 'warn' };
    const first = master(env);

    const publish = async (n: number) => {
      const alerts = Array.from({ length: n }, (_, i) => makeAlert({ pair: i % 3 === 0 ? 'BTC-USD' : i % 3 === 1 ? 'ETH-USD' : 'XRP-USD' }));
      // A burst as workers make it: one MULTI per alert (PUBLISH + XADD + SADD), 500 in flight at a time.
      for (let i = 0; i < alerts.length; i += 500) await Promise.all(alerts.slice(i, i + 500).map((a) => publishAlert(r.redis, r.keys, a)));
      return alerts;
    };
    const wave1 = publish(3000);
    await waitFor('the first rows', async () => (await count('alerts')) >= 200, { intervalMs: 5, timeoutMs: 30_000 });
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    const storedAtKill = await count('alerts');
    const burst = await wave1;
    // Killed in the middle of the burst: some of its alerts were stored, not all of them.
    expect(storedAtKill).toBeGreaterThan(0);
    expect(storedAtKill).toBeLessThan(burst.length);
    const alerts = [...burst, ...(await publish(2000))];

    const second = master(env);
    await waitFor('all 5000 alerts', async () => (await count('alerts')) >= alerts.length, { timeoutMs: 30_000 });
    await second.stop('SIGTERM');
    expect(await count('alerts')).toBe(alerts.length);
    const ids = (await t.db('alerts').select('id')).map((row: { id: string }) => row.id);
    // Exactly once: as many rows as alerts, no id twice, every alert there.
    const distinct = new Set(ids);
    expect(distinct.size).toBe(alerts.length);
    expect(alerts.every((a) => distinct.has(a.id))).toBe(true);
    // Outbox rows were written with their alerts, atomically: every alert is in exactly one webhook notification.
    const perAlert = await t.db.raw<{ rows: { id: string; n: number }[] }>("SELECT u.alert_id AS id, count(*)::int AS n FROM notifications n, unnest(n.alert_ids) AS u(alert_id) WHERE n.channel = 'webhook' GROUP BY u.alert_id");
    expect(perAlert.rows).toHaveLength(alerts.length);
    expect(perAlert.rows.every((row) => row.n === 1)).toBe(true);
  });

  it('on SIGTERM stops consuming, closes everything and exits 0', async () => {
    const p = master({ ...baseEnv(), LOG_LEVEL: 'debug' });
    await p.waitForOutput('master started');
    expect(await p.stop('SIGTERM')).toBe(0);
    const out = p.output();
    // Closers run newest first: the HTTP server, then ingest, ..., then Postgres and Redis; `stopped` is the last line.
    const order = ['"resource":"http server"', '"resource":"stream ingest"', '"resource":"postgres"', '"resource":"redis"', '"msg":"stopped"'].map((s) => out.indexOf(s));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });
});
