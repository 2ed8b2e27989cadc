import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeAlert, publishAlert } from './helpers/alerts';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { startService, type ServiceProcess } from './helpers/process';
import { createTestRedis, type TestRedis } from './helpers/redis';
import { startSmtpServer, type TestSmtpServer } from './helpers/smtp';
import { waitFor } from './helpers/wait';
import { startWebhookReceiver, type TestWebhookReceiver } from './helpers/webhook';
import { createTickerSimulator, type TickerSimulator } from '../sim/simulator';

/**
 * Every secret the services are given, run through the real services (a working master, a master with bad values, a
 * master whose Postgres and Redis are down, workers, the fleet's dry run): none may appear in anything they print.
 * Each value is distinctive, so finding it anywhere in the output can only mean it leaked.
 */
const SECRETS = {
  databasePassword: 'pg-pass-4Hk9Tz',
  redisPassword: 'redis-pass-8Wq2Lm',
  apiToken: 'api-token-3Nd7Rc5Vb1Xs',
  webhookSecret: 'hook-secret-6Jp0Yf',
  webhookPathToken: 'T0KEN-in-path-2Gs5',
  smtpPassword: 'smtp-pass-9Ue4Ka',
  tickerProxyPassword: 'proxy-pass-5Rb3Nw',
} as const;
const SMTP_USER = 'tickwatch-mailer';

/** Replaces the userinfo of `url` with `user:password`. */
const withPassword = (url: string, user: string, password: string) => {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  return u.toString().replace(/\/$/, '');
};

describe('secrets in what the services print', () => {
  let t: TestDatabase;
  let r: TestRedis;
  let smtp: TestSmtpServer;
  let hook: TestWebhookReceiver;
  let sim: TickerSimulator;
  const processes: { name: string; proc: ServiceProcess }[] = [];
  const run = (name: string, entry: string, env: Record<string, string>, args: string[] = []) => {
    const proc = startService(entry, { LOG_LEVEL: 'debug', ...env }, args);
    processes.push({ name, proc });
    return proc;
  };

  beforeAll(async () => {
    [t, r, smtp, hook, sim] = await Promise.all([
      createTestDatabase(),
      createTestRedis(),
      startSmtpServer({ auth: { user: SMTP_USER, pass: SECRETS.smtpPassword } }),
      startWebhookReceiver(),
      createTickerSimulator({ pairs: { 'BTC-USD': '100' }, volatilityPercent: '0', rateLimit: 0 }),
    ]);
  });
  afterAll(async () => {
    await Promise.all(processes.map(({ proc }) => proc.stop('SIGKILL')));
    await Promise.all([smtp?.stop(), hook?.stop(), sim?.close()]);
    await r?.cleanup();
    await t?.drop();
  });

  // The Postgres under test trusts local connections and the shared Redis has no password, so both URLs carry a
  // password and still work: the path where a service runs normally with its secrets.
  const databaseUrl = () => withPassword(t.url, 'postgres', SECRETS.databasePassword);
  const redisUrl = () => withPassword(r.url, '', SECRETS.redisPassword);
  const webhookUrl = () => `${hook.url}/${SECRETS.webhookPathToken}`;
  const smtpUrl = () => `smtp://${SMTP_USER}:${SECRETS.smtpPassword}@127.0.0.1:${smtp.port}`;

  it('a master that runs, mails, calls the webhook and answers the API', async () => {
    // The first webhook call fails, so the retry path logs too.
    hook.respond(({ index }) => (index === 0 ? 500 : 200));
    const master = run('master', 'master/main.ts', {
      DATABASE_URL: databaseUrl(),
      REDIS_URL: redisUrl(),
      REDIS_KEY_PREFIX: r.prefix,
      API_HOST: '127.0.0.1',
      API_PORT: '0',
      API_TOKEN: SECRETS.apiToken,
      NOTIFY: 'email,webhook',
      SMTP_URL: smtpUrl(),
      MAIL_TO: 'desk@example.com',
      EMAIL_DIGEST_SECONDS: '0',
      WEBHOOK_URL: webhookUrl(),
      WEBHOOK_SECRET: SECRETS.webhookSecret,
    });
    await master.waitForOutput('master started', 30_000);
    const api = /API on (http:\/\/[^\s"]+)/.exec(master.output())![1]!;

    await publishAlert(r.redis, r.keys, makeAlert({ pair: 'BTC-USD' }));
    await smtp.waitForMails(1, 15_000);
    expect(smtp.logins).toEqual([SMTP_USER]);
    const calls = await hook.waitForRequests(2, 15_000);
    expect(calls.map((c) => [c.path, c.status])).toEqual([
      [`/hook/${SECRETS.webhookPathToken}`, 500],
      [`/hook/${SECRETS.webhookPathToken}`, 200],
    ]);

    expect((await fetch(`${api}/alerts`, { headers: { authorization: `Bearer ${SECRETS.apiToken}x` } })).status).toBe(401);
    expect((await fetch(`${api}/alerts`, { headers: { authorization: `Bearer ${SECRETS.apiToken}` } })).status).toBe(200);
    await master.waitForOutput('webhook notification sent');
    expect(await master.stop('SIGTERM')).toBe(0);
  });

  it('a master started with bad values', async () => {
    const master = run('master (bad config)', 'master/main.ts', {
      DATABASE_URL: `postgres://postgres:${SECRETS.databasePassword}@127.0.0.1:99999/x`,
      REDIS_URL: `http://:${SECRETS.redisPassword}@127.0.0.1:6379`,
      API_TOKEN: `${SECRETS.apiToken} with a space`,
      WEBHOOK_SECRET: SECRETS.webhookSecret.slice(0, 5),
      NOTIFY: 'email,webhook',
      WEBHOOK_URL: `ftp://127.0.0.1/${SECRETS.webhookPathToken}`,
      SMTP_URL: `http://${SMTP_USER}:${SECRETS.smtpPassword}@127.0.0.1:25`,
      MAIL_TO: 'desk@example.com',
    });
    expect(await master.exited).toBe(2);
    for (const name of ['DATABASE_URL', 'REDIS_URL', 'API_TOKEN', 'WEBHOOK_SECRET', 'WEBHOOK_URL', 'SMTP_URL']) {
      expect(master.output()).toMatch(new RegExp(`${name}=\\S+ is invalid`));
    }
  });

  it('a master whose Postgres and Redis are unreachable', async () => {
    const master = run('master (outage)', 'master/main.ts', {
      DATABASE_URL: `postgres://postgres:${SECRETS.databasePassword}@127.0.0.1:1/tickwatch`,
      REDIS_URL: `redis://:${SECRETS.redisPassword}@127.0.0.1:1`,
      API_HOST: '127.0.0.1',
      API_PORT: '0',
    });
    await master.waitForOutput('postgres unavailable at start', 30_000);
    await master.waitForOutput('redis unavailable');
    await master.stop('SIGTERM');
  });

  it('workers, with Redis up and with Redis down', async () => {
    const worker = run('worker', 'worker/main.ts', {
      PAIR: 'BTC-USD',
      REDIS_URL: redisUrl(),
      REDIS_KEY_PREFIX: r.prefix,
      // The simulator ignores the credentials an authenticating proxy in front of the ticker would need.
      TICKER_BASE_URL: withPassword(sim.url, 'proxy', SECRETS.tickerProxyPassword),
      FETCH_INTERVAL_MS: '200',
    });
    const orphan = run('worker (redis down)', 'worker/main.ts', {
      PAIR: 'ETH-USD',
      REDIS_URL: `redis://:${SECRETS.redisPassword}@127.0.0.1:1`,
      TICKER_BASE_URL: sim.url,
    });
    await worker.waitForOutput('worker started', 30_000);
    await orphan.waitForOutput('redis unavailable', 30_000);
    await Promise.all([worker.stop('SIGTERM'), orphan.stop('SIGTERM')]);
  });

  it('the fleet dry run', async () => {
    const fleet = run('fleet --dry-run', 'fleet/main.ts', {
      API_TOKEN: SECRETS.apiToken,
      WEBHOOK_SECRET: SECRETS.webhookSecret,
      WEBHOOK_URL: webhookUrl(),
      SMTP_URL: smtpUrl(),
      POSTGRES_PASSWORD: SECRETS.databasePassword,
    }, ['--dry-run']);
    expect(await fleet.exited).toBe(0);
    // The plan was printed, secrets in their place: the webhook's host stays visible, its path does not.
    const plan = fleet.output();
    expect(plan).toContain('"API_TOKEN": "(hidden)"');
    expect(plan).toContain(`"WEBHOOK_URL": "http://127.0.0.1:${new URL(hook.url).port}/(hidden)"`);
    expect(plan).toMatch(/"DATABASE_URL": "postgres:\/\/postgres:\*\*\*@/);
  });

  it('the fleet dry run of a compose file that passes secrets as command-line flags', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tw-secrets-'));
    try {
      const file = path.join(dir, 'docker-compose.yml');
      writeFileSync(
        file,
        `services:
  master:
    image: tickwatch:local
    command: ["node", "dist/master/main.js", "--api-token", "\${API_TOKEN}", "--webhook-secret=\${WEBHOOK_SECRET}", "--database-url", "postgres://app:\${POSTGRES_PASSWORD}@db:5432/x"]
`,
      );
      const fleet = run('fleet --dry-run (flags)', 'fleet/main.ts', { API_TOKEN: SECRETS.apiToken, WEBHOOK_SECRET: SECRETS.webhookSecret, POSTGRES_PASSWORD: SECRETS.databasePassword }, ['--file', file, '--dry-run']);
      expect(await fleet.exited).toBe(0);
      expect(fleet.output()).toContain('master/main.ts --api-token (hidden) --webhook-secret=(hidden) --database-url postgres://app:***@db:5432/x');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('none of the secrets appears in anything those processes printed', async () => {
    await waitFor('every process to exit', () => processes.every(({ proc }) => proc.child.exitCode !== null || proc.child.signalCode !== null));
    expect(processes.map(({ name }) => name)).toEqual(['master', 'master (bad config)', 'master (outage)', 'worker', 'worker (redis down)', 'fleet --dry-run', 'fleet --dry-run (flags)']);
    // Each printed something (a process that printed nothing would pass any leak check).
    expect(processes.filter(({ proc }) => proc.output().trim() === '').map(({ name }) => name)).toEqual([]);
    const leaks: string[] = [];
    for (const { name, proc } of processes) {
      for (const [what, value] of Object.entries(SECRETS)) if (proc.output().includes(value)) leaks.push(`${what} in the output of ${name}`);
    }
    if (process.env.SECRETS_TEST_DUMP) for (const { name, proc } of processes) process.stderr.write(`===== ${name}\n${proc.output()}\n`);
    expect(leaks).toEqual([]);
  });
});
