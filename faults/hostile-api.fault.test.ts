import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../shared/platform/logger';
import { createApiServer } from '../master/http/server';
import { createMetrics } from '../master/metrics';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db';
import { insertFixtureAlerts } from '../test/helpers/fixtures';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { printFigures } from './figures';

/**
 * 10,000 hostile requests over real HTTP against the real API (fixture rows in a real Postgres): generated query
 * strings with every parameter name the API knows and random ones, values that are garbage, huge, SQL, broken
 * percent-encoding, raw Latin-1 bytes, repeated parameters and random Accept headers. A client error is fine; a 5xx is a bug.
 */
const REQUESTS = 10_000;

const PATHS = ['/alerts', '/alerts.csv', '/alerts/', '/stats', '/stats/timeseries', '/fleet', '/health', '/ready', '/openapi.json', '/metrics', '/ticks', '/'];
const NAMES = ['pair', 'direction', 'since', 'until', 'min_change', 'ordering', 'limit', 'cursor', 'window', 'bucket', 'format', 'id', 'pairs', 'page'];
const NASTY = [
  "'; DROP TABLE alerts; --",
  '1 OR 1=1',
  '%',
  '%zz',
  '%00',
  '%C0%AF',
  '%FF%FE',
  '..%2F..%2Fetc%2Fpasswd',
  '1e309',
  '-1',
  '0',
  'NaN',
  'Infinity',
  '-0',
  '99999999999999999999999999999999',
  '0.000000000000000000000000001',
  '2026-13-45T99:99:99Z',
  '0000-01-01T00:00:00Z',
  '275760-09-13T00:00:00Z',
  '-271821-04-20T00:00:00Z',
  'BTC-USD,BTC-USD,,,',
  'btc-usd',
  '-observed_at,-id',
  '20m',
  '0m',
  '99999999w',
  '1ms',
  'eyJrIjoiMSJ9',
  'AAAA',
  '{"$gt":""}',
  '[]',
  'null',
  'true',
  '\u00ff\u00fe\u0080',
  'x'.repeat(5000),
];

const token = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }).map(encodeURIComponent) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }).map(encodeURIComponent) },
  { weight: 1, arbitrary: fc.integer().map(String) },
  { weight: 1, arbitrary: fc.double().map(String) },
  { weight: 1, arbitrary: fc.date({ noInvalidDate: false }).map((d) => (Number.isNaN(d.getTime()) ? 'Invalid Date' : d.toISOString())).map(encodeURIComponent) },
  { weight: 1, arbitrary: fc.uuid() },
  { weight: 1, arbitrary: fc.base64String({ maxLength: 80 }) },
);
// Everything outside the characters a request target may carry is percent-encoded, so every request is valid HTTP
// and reaches the API (Node's parser rightly refuses raw control or non-ASCII bytes before any route sees them), while
// what the API must cope with stays: broken escapes such as %zz, %, %FF%FE, quotes, SQL, absurd numbers and dates.
const raw = (s: string) => s.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]/g, (c) => encodeURIComponent(c).replace(/'/g, '%27'));

const request = fc.record({
  path: fc.constantFrom(...PATHS),
  suffix: fc.oneof(fc.constant(''), token),
  params: fc.array(fc.tuple(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...NAMES) }, { weight: 1, arbitrary: token }), token), { maxLength: 6 }),
  accept: fc.constantFrom(undefined, 'text/csv', 'application/json', 'text/csv;q=0', '*/*', 'text/event-stream', 'garbage/\u00ff'),
});

describe('when 10k hostile queries hit the API', () => {
  let database: TestDatabase;
  let redis: TestRedis;
  let app: FastifyInstance;
  let base: { host: string; port: number };
  /** Requests Node's HTTP parser refused before fastify saw them (it answers 400/414/431 and closes). */
  const clientErrors = new Map<string, number>();

  beforeAll(async () => {
    database = await createTestDatabase();
    redis = await createTestRedis();
    await insertFixtureAlerts(database.db, { count: 1000, seed: 3 });
    app = await createApiServer({
      db: database.db,
      redis: redis.redis,
      keys: redis.keys,
      metrics: createMetrics({ defaultMetrics: false }),
      logger: createLogger({ name: 'hostile-api', level: 'silent', pretty: false }),
      // As many exports as clients: every request is judged on its input here, never refused by the export cap (a
      // documented 503, tested in master/http/api-limits.test.ts and faults/hostile-clients).
      csvMaxConcurrent: 16,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = { host: '127.0.0.1', port: (app.server.address() as AddressInfo).port };
    app.server.on('clientError', (err: NodeJS.ErrnoException) => clientErrors.set(err.code ?? err.message, (clientErrors.get(err.code ?? err.message) ?? 0) + 1));
  });

  afterAll(async () => {
    await app?.close();
    await redis?.cleanup();
    await database?.drop();
  });

  it('answers every one without a 5xx', async () => {
    const samples = fc.sample(request, { numRuns: REQUESTS, seed: 20261129 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const statuses = new Map<number, number>();
    const fiveHundreds: string[] = [];
    let transportErrors = 0;
    const started = Date.now();
    let next = 0;
    const transportFailures: string[] = [];
    let keepAliveRetries = 0;
    const send = (path: string, accept: string | undefined, retry = true): Promise<number> =>
      new Promise<number>((resolve) => {
        const req = http.request({ ...base, agent, path, method: 'GET', headers: accept ? { accept } : {}, timeout: 30_000 }, (res) => {
          // Read (and drop) the whole body: a stream that fails midway must show up, not be cut short by us.
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', (err) => {
            transportFailures.push(`${err.message} (mid-body) GET ${path.slice(0, 200)} accept=${accept}`);
            resolve(-1);
          });
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', (err: NodeJS.ErrnoException) => {
          // A kept-alive socket the server closed just as we reused it (Node's documented race): send again, once.
          if (retry && req.reusedSocket && err.code === 'ECONNRESET') {
            keepAliveRetries += 1;
            resolve(send(path, accept, false));
            return;
          }
          transportFailures.push(`${err.message} GET ${path.slice(0, 200)} accept=${accept}`);
          resolve(-1);
        });
        req.end();
      });
    const worker = async () => {
      while (next < samples.length) {
        const s = samples[next++]!;
        const query = s.params.map(([k, v]) => `${raw(k)}=${raw(v)}`).join('&');
        const path = `${s.path}${s.path.endsWith('/') ? raw(s.suffix) : ''}${query ? `?${query}` : ''}`;
        const status = await send(path, s.accept);
        if (status === -1) transportErrors += 1;
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status >= 500) fiveHundreds.push(`${status} GET ${path.slice(0, 300)}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    agent.destroy();
    const seconds = (Date.now() - started) / 1000;
    const byStatus = [...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`).join(',');
    printFigures('hostile-api', { queries: samples.length, status_5xx: fiveHundreds.length, transport_errors: transportErrors, keepalive_retries: keepAliveRetries, seconds, rps: samples.length / seconds }, `statuses ${byStatus}; parser refusals ${JSON.stringify(Object.fromEntries(clientErrors))}`);
    expect(fiveHundreds.slice(0, 20)).toEqual([]);
    // A dropped connection hides the status the server meant: none are expected either.
    expect(transportFailures.slice(0, 10)).toEqual([]);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(1000);
  });
});
