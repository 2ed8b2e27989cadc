import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializeAlert } from '../../shared/contract/alert';
import { loadMasterConfig } from '../../shared/config/master-config';
import { ConfigError } from '../../shared/platform/errors';
import { createLogger, type Logger } from '../../shared/platform/logger';
import { makeAlert } from '../../test/helpers/alerts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { masterTestEnv } from '../../test/helpers/master-env';
import { startService } from '../../test/helpers/process';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { waitFor } from '../../test/helpers/wait';
import { DASHBOARD_PUBLIC_DIR, dashboardPlugin } from '../dashboard/plugin';
import { createMetrics } from '../metrics';
import { createApiServer, type ApiDeps } from './server';

/** Secure by default: headers, the token and its failed-attempt limit, live-feed tickets, the feed's cap and back-pressure. */

const TOKEN = 'security-test-token-0123456789';
let tdb: TestDatabase;
let tr: TestRedis;
const apps: FastifyInstance[] = [];

/** A logger whose JSON lines the test can read. */
function capturedLogger(): { logger: Logger; text: () => string } {
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { logger: createLogger({ name: 'security-test', level: 'debug', destination }), text: () => text };
}

async function makeApp(overrides: Partial<ApiDeps> = {}): Promise<FastifyInstance> {
  const app = await createApiServer({
    db: tdb.db,
    redis: tr.redis,
    keys: tr.keys,
    metrics: createMetrics({ defaultMetrics: false }),
    logger: createLogger({ name: 'security-test', level: 'silent' }),
    ...overrides,
  });
  apps.push(app);
  return app;
}

/** An open `/events` response read as it arrives. */
interface EventClient {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  text(): string;
  close(): void;
}

function openEvents(url: string): Promise<EventClient> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      resolve({ status: res.statusCode ?? 0, headers: res.headers, text: () => body, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

async function buyTicket(url: string): Promise<string> {
  const res = await fetch(`${url}/events/ticket`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { ticket: string }).ticket;
}

beforeAll(async () => {
  [tdb, tr] = await Promise.all([createTestDatabase({ migrate: true }), createTestRedis()]);
});

afterAll(async () => {
  for (const app of apps) await app.close();
  await tr?.cleanup();
  await tdb?.drop();
});

function expectSecurityHeaders(what: string, headers: Record<string, unknown>): void {
  const csp = String(headers['content-security-policy'] ?? '');
  expect({ what, csp: csp.split(';').map((d) => d.trim()) }).toEqual({
    what,
    csp: expect.arrayContaining(["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'"]),
  });
  expect({ what, inline: /unsafe-inline|unsafe-eval/.test(csp) }).toEqual({ what, inline: false });
  expect({ what, nosniff: headers['x-content-type-options'], referrer: headers['referrer-policy'], frame: headers['x-frame-options'] }).toEqual({
    what,
    nosniff: 'nosniff',
    referrer: 'no-referrer',
    frame: 'DENY',
  });
}

describe('security headers', () => {
  it('are on API answers, the dashboard page and assets, and every kind of error', async () => {
    const open = await makeApp();
    const locked = await makeApp({ apiToken: TOKEN });
    const cases: [string, FastifyInstance, string, number][] = [
      ['API data', open, '/alerts?limit=1', 200],
      ['dashboard page', open, '/', 200],
      ['dashboard script', open, '/dashboard/main.js', 200],
      ['uPlot', open, '/dashboard/vendor/uplot/uPlot.iife.min.js', 200],
      ['bad request', open, '/alerts?limit=0', 400],
      ['malformed URL (refused before any hook)', open, '/alerts/%zz', 400],
      ['unknown path', open, '/no-such-path', 404],
      ['missing token', locked, '/alerts', 401],
    ];
    for (const [what, app, url, status] of cases) {
      const res = await app.inject({ url });
      expect({ what, status: res.statusCode }).toEqual({ what, status });
      expectSecurityHeaders(what, res.headers);
    }
  });

  it('allow inline styles on the API docs page alone (Swagger UI sets them), never inline scripts', async () => {
    const app = await makeApp();
    const docs = await app.inject({ url: '/docs/static/swagger-initializer.js' });
    expect(docs.statusCode).toBe(200);
    const csp = String(docs.headers['content-security-policy']).split(';');
    expect(csp).toEqual(expect.arrayContaining(["style-src 'self' 'unsafe-inline'", "script-src 'self'", "frame-ancestors 'none'"]));
    expect(docs.headers['x-content-type-options']).toBe('nosniff');
  });

  it('are on the live event stream too', async () => {
    const app = await makeApp();
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const client = await openEvents(`${url}/events`);
    expect(client.status).toBe(200);
    expectSecurityHeaders('/events', client.headers);
    client.close();
  });

  it('leave the dashboard page working: it has no inline script, style or event handler for the policy to refuse', () => {
    const html = readFileSync(path.join(DASHBOARD_PUBLIC_DIR, 'index.html'), 'utf8');
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) expect({ attrs, src: /\bsrc=/.test(attrs ?? ''), body: (body ?? '').trim() }).toEqual({ attrs, src: true, body: '' });
    expect(html).not.toMatch(/<style\b|\sstyle=|\son[a-z]+=/i);
  });
});

describe('when API_TOKEN is set, a wrong token', () => {
  const WRONG = `${TOKEN}-wrong-guess-7391`;

  it('answers 401 until the limit, then 429 with Retry-After for any credential from that address, even the right one', async () => {
    const log = capturedLogger();
    const app = await makeApp({ apiToken: TOKEN, authMaxFailures: 3, logger: log.logger });
    const from = (remoteAddress: string, authorization?: string) =>
      app.inject({ url: '/alerts?limit=1', remoteAddress, headers: authorization ? { authorization } : {} });

    for (let i = 0; i < 3; i++) expect((await from('10.0.0.1', `Bearer ${WRONG}`)).statusCode).toBe(401);
    const limited = await from('10.0.0.1', `Bearer ${TOKEN}`);
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.json()).toMatchObject({ error: 'too_many_requests', message: expect.stringMatching(/failed authentication attempts/) });
    expectSecurityHeaders('429', limited.headers);
    expect((await from('10.0.0.1', `Bearer ${WRONG}`)).statusCode).toBe(429);

    // Another address is not affected.
    expect((await from('10.0.0.2', `Bearer ${TOKEN}`)).statusCode).toBe(200);

    const failures = log.text().split('\n').filter((l) => l.includes('"authentication failed"'));
    expect(failures).toHaveLength(3);
    expect(failures.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ ip: '10.0.0.1', route: '/alerts', reason: 'invalid token', failures: 1 }),
      expect.objectContaining({ failures: 2 }),
      expect.objectContaining({ failures: 3 }),
    ]);
    expect(log.text()).toContain('too many failed authentication attempts');
    expect(log.text()).not.toContain('wrong-guess-7391');
    expect(log.text()).not.toContain(TOKEN);
  });

  it('is counted, but a request with no credential is not (a page that has not asked for the token yet)', async () => {
    const app = await makeApp({ apiToken: TOKEN, authMaxFailures: 2 });
    for (let i = 0; i < 5; i++) expect((await app.inject({ url: '/alerts', remoteAddress: '10.0.0.3' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/alerts?limit=1', remoteAddress: '10.0.0.3', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(200);
  });
});

describe('listening beyond loopback', () => {
  const base = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/tickwatch' };

  it.each(['0.0.0.0', '::', '192.168.1.10', 'tickwatch.example'])('refuses API_HOST=%s without API_TOKEN, naming what to set', (host) => {
    const load = () => loadMasterConfig({ ...base, API_HOST: host });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(`API_HOST=${host} serves the API beyond this machine without API_TOKEN: set API_TOKEN (16+ characters), or API_HOST=127.0.0.1, or API_ALLOW_ANONYMOUS=true`);
  });

  it.each(['127.0.0.1', '127.0.0.2', 'localhost', '::1'])('starts on the loopback address %s without a token', (host) => {
    expect(loadMasterConfig({ ...base, API_HOST: host }).api.host).toBe(host);
  });

  it('listens on 127.0.0.1 by default', () => {
    expect(loadMasterConfig(base).api).toMatchObject({ host: '127.0.0.1', allowAnonymous: false, eventsMaxClients: 100 });
  });

  it('accepts 0.0.0.0 with a token, or with API_ALLOW_ANONYMOUS=true said explicitly', () => {
    expect(loadMasterConfig({ ...base, API_HOST: '0.0.0.0', API_TOKEN: TOKEN }).api.token).toBe(TOKEN);
    expect(loadMasterConfig({ ...base, API_HOST: '0.0.0.0', API_ALLOW_ANONYMOUS: 'true' }).api.allowAnonymous).toBe(true);
  });

  it('the master process exits 2 with one line on stderr, and with API_ALLOW_ANONYMOUS=true starts with a warning', async () => {
    const env = { ...masterTestEnv(tdb.url, tr), API_HOST: '0.0.0.0' };
    const refused = startService('master/main.ts', env);
    expect(await refused.exited).toBe(2);
    expect(refused.output().trim().split('\n')).toEqual([
      'Invalid configuration: API_HOST=0.0.0.0 serves the API beyond this machine without API_TOKEN: set API_TOKEN (16+ characters), or API_HOST=127.0.0.1, or API_ALLOW_ANONYMOUS=true to let anyone who reaches it in (named tokens in API_TOKENS count as well)',
    ]);

    const anonymous = startService('master/main.ts', { ...env, API_ALLOW_ANONYMOUS: 'true' });
    try {
      await anonymous.waitForOutput('master started', 30_000);
      const warning = anonymous
        .output()
        .split('\n')
        .find((l) => l.includes('API_ALLOW_ANONYMOUS=true: the API and dashboard'));
      expect(warning && (JSON.parse(warning) as { level: number }).level).toBe(40);
    } finally {
      await anonymous.stop();
    }
  });
});

describe('the live feed /events with API_TOKEN set', () => {
  let app: FastifyInstance;
  let url: string;
  beforeAll(async () => {
    app = await makeApp({ apiToken: TOKEN });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  it('sells a ticket only for the token, keeping only its hash in Redis', async () => {
    expect((await fetch(`${url}/events/ticket`, { method: 'POST' })).status).toBe(401);
    const res = await fetch(`${url}/events/ticket`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { ticket: string; expires_at: string };
    expect(body.ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const lifetime = Date.parse(body.expires_at) - Date.now();
    expect(lifetime).toBeGreaterThan(0);
    expect(lifetime).toBeLessThanOrEqual(60_000);
    const stored = await tr.redis.keys(`${tr.keys.prefix}events:ticket:*`);
    expect(stored).toContain(tr.keys.eventsTicket(createHash('sha256').update(body.ticket).digest('hex')));
    expect(stored.join(' ')).not.toContain(body.ticket);
  });

  it('opens one stream per ticket: the same ticket again is refused', async () => {
    const ticket = await buyTicket(url);
    const first = await openEvents(`${url}/events?ticket=${ticket}`);
    expect(first.status).toBe(200);
    await waitFor('the stream to be ready', () => first.text().includes('event: ready'));
    const again = await openEvents(`${url}/events?ticket=${ticket}`);
    expect(again.status).toBe(401);
    await waitFor('the refusal body', () => again.text().length > 0);
    expect(JSON.parse(again.text())).toMatchObject({ error: 'unauthorized', message: expect.stringMatching(/invalid, used or expired ticket/) });
    first.close();
  });

  it('refuses a ticket once it has expired', async () => {
    const shortLived = await makeApp({ apiToken: TOKEN, eventsTicketTtlMs: 50 });
    const shortUrl = await shortLived.listen({ host: '127.0.0.1', port: 0 });
    const ticket = await buyTicket(shortUrl);
    const key = tr.keys.eventsTicket(createHash('sha256').update(ticket).digest('hex'));
    await waitFor('Redis to expire the ticket', async () => (await tr.redis.exists(key)) === 0);
    expect((await openEvents(`${shortUrl}/events?ticket=${ticket}`)).status).toBe(401);
  });

  it('no longer takes the token in the URL, and says what to do instead', async () => {
    const res = await fetch(`${url}/events?token=${TOKEN}`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { message: string }).message).toContain('POST /events/ticket');
    expect((await fetch(`${url}/events`)).status).toBe(401);
    expect((await fetch(`${url}/events?ticket=made-up`)).status).toBe(401);
  });
});

describe('the live feed connection cap', () => {
  it('answers 503 with a clear body beyond EVENTS_MAX_CLIENTS, and takes a new client once one leaves', async () => {
    const app = await makeApp({ eventsMaxClients: 2 });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const a = await openEvents(`${url}/events`);
    const b = await openEvents(`${url}/events`);
    expect([a.status, b.status]).toEqual([200, 200]);
    const refused = await fetch(`${url}/events`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('10');
    expect(await refused.json()).toEqual({
      error: 'unavailable',
      message: 'the live feed already serves 2 connections on this master (EVENTS_MAX_CLIENTS); retry shortly',
    });
    a.close();
    const c = await waitFor('a place to free up', async () => {
      const attempt = await openEvents(`${url}/events`);
      if (attempt.status === 200) return attempt;
      attempt.close();
      return undefined;
    });
    c.close();
    b.close();
  });
});

describe('a live feed client that stops reading', () => {
  it('is dropped once its unread frames pass the bound, while a reading client receives every alert', async () => {
    const log = capturedLogger();
    const app = Fastify();
    apps.push(app);
    // The default bound (1 MiB): a reader on loopback never gets near it, even in bursts of 200 alerts.
    await app.register(dashboardPlugin, { redis: tr.redis, keys: tr.keys, logger: log.logger });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = new URL(url);

    // A raw socket that reads the stream's start, then never again.
    const stalled = net.connect(Number(port), '127.0.0.1');
    let stalledText = '';
    let stalledReady = false;
    const stalledClosed = new Promise<void>((resolve) => stalled.once('close', () => resolve()));
    stalled.on('error', () => undefined);
    stalled.on('data', (chunk: Buffer) => {
      if (stalledReady) return;
      stalledText += chunk.toString();
      stalledReady = stalledText.includes('event: ready');
      if (stalledReady) stalled.pause();
    });
    stalled.write('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    // A reader that counts alert frames as they arrive (the text grows to megabytes: it is not kept).
    const FRAME = 'event: alert\n';
    let received = 0;
    let readerReady = false;
    let tail = '';
    let readerEnded = false;
    const readerReq = http.get(`${url}/events`, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const text = tail + chunk;
        readerReady ||= text.includes('event: ready');
        for (let at = text.indexOf(FRAME); at >= 0; at = text.indexOf(FRAME, at + FRAME.length)) received += 1;
        tail = text.slice(-(FRAME.length - 1));
      });
      res.once('close', () => (readerEnded = true));
    });
    await waitFor('both streams to be ready', () => stalledReady && readerReady);
    const connections = () => new Promise<number>((resolve, reject) => app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    expect(await connections()).toBe(2);

    const dropped = () => log.text().includes('dropped a live feed client that stopped reading');
    let published = 0;
    // Kernel socket buffers on loopback hold several MB before Node buffers anything: keep publishing until the drop.
    for (let batch = 0; batch < 400 && !dropped(); batch++) {
      const alerts = Array.from({ length: 200 }, () => makeAlert());
      await tr.redis.publish(tr.keys.storedAlertsChannel, `[${alerts.map(serializeAlert).join(',')}]`);
      published += alerts.length;
      await waitFor(`the reader to receive ${published} alerts`, () => received >= published || dropped());
    }
    expect(dropped()).toBe(true);
    await waitFor(`the reader to receive all ${published} alerts`, () => received === published);

    // The server closed its end, and the client, once it reads again, finds the end of the stream.
    expect(await connections()).toBe(1);
    stalled.resume();
    await stalledClosed;
    expect(readerEnded).toBe(false);
    readerReq.destroy();
  }, 120_000);
});
