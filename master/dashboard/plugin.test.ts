import http from 'node:http';
import type { FastifyInstance } from 'fastify';
import { serializeAlert } from '../../shared/contract/alert';
import { createLogger } from '../../shared/platform/logger';
import { closeRedis, createRedis, type Redis } from '../../shared/platform/redis';
import { toWireAlert } from '../../shared/read-model/alert-wire';
import { makeAlert } from '../../test/helpers/alerts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { startOwnRedis } from '../../test/helpers/redis-server';
import { waitFor } from '../../test/helpers/wait';
import { createApiServer } from '../http/server';
import { createMetrics } from '../metrics';
import { dashboardPlugin } from './plugin';

/** An open `/events` response whose body we can read as it arrives. */
interface EventClient {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  text(): string;
  readonly ended: Promise<void>;
  close(): void;
}

function openEvents(url: string): Promise<EventClient> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      const ended = new Promise<void>((done) => res.once('close', () => done()));
      resolve({ status: res.statusCode ?? 0, headers: res.headers, text: () => body, ended, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

const TOKEN = 'dashboard-test-token-0123456789';

describe('dashboard routes', () => {
  let t: TestDatabase;
  let r: TestRedis;
  let redis: Redis;
  const logger = createLogger({ name: 'dashboard-test', level: 'silent' });

  async function server(options: { apiToken?: string; heartbeatMs?: number } = {}): Promise<{ app: FastifyInstance; url: string }> {
    const app = await createApiServer({ db: t.db, redis, keys: r.keys, metrics: createMetrics({ defaultMetrics: false }), logger, apiToken: options.apiToken });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    return { app, url };
  }

  const subscribers = async () => Number(((await r.redis.pubsub('NUMSUB', r.keys.storedAlertsChannel)) as [string, number])[1]);

  beforeAll(async () => {
    [t, r] = await Promise.all([createTestDatabase({ migrate: true }), createTestRedis()]);
    redis = createRedis(r.url, logger, { name: 'dashboard-test' });
  });
  afterAll(async () => {
    await closeRedis(redis);
    await r?.cleanup();
    await t?.drop();
  });

  describe('GET /events', () => {
    it('streams each stored alert to every open client from one shared Redis subscription, and tells the browser how soon to reconnect', async () => {
      const { app, url } = await server();
      try {
        const [a, b] = await Promise.all([openEvents(`${url}/events`), openEvents(`${url}/events`)]);
        expect(a.status).toBe(200);
        expect(a.headers['content-type']).toMatch(/^text\/event-stream/);
        await waitFor('both streams to be subscribed', () => a.text().includes('event: ready') && b.text().includes('event: ready'));
        expect(a.text()).toMatch(/^retry: \d+\n/);
        expect(await subscribers()).toBe(1);

        const alert = makeAlert({ pair: 'BTC-USD', direction: 'up' });
        await r.redis.publish(r.keys.storedAlertsChannel, serializeAlert(alert));
        // The wire alert of GET /alerts, not the internal message.
        const frame = `event: alert\nid: ${alert.id}\ndata: ${JSON.stringify(toWireAlert(alert))}\n\n`;
        await waitFor('the alert on both streams', () => a.text().includes(frame) && b.text().includes(frame));
        a.close();
        b.close();
      } finally {
        await app.close();
      }
    });

    it('drops a message that breaks the alert contract instead of passing it to browsers', async () => {
      const { app, url } = await server();
      try {
        const client = await openEvents(`${url}/events`);
        await waitFor('the stream to be subscribed', () => client.text().includes('event: ready'));
        await r.redis.publish(r.keys.storedAlertsChannel, '{"version":1,"id":"not-a-uuid"}');
        const good = makeAlert({ pair: 'ETH-USD' });
        await r.redis.publish(r.keys.storedAlertsChannel, serializeAlert(good));
        // A batch as the master announces it, with one bad element: the others still reach the browser, in order.
        const batch = [makeAlert({ pair: 'BTC-USD' }), makeAlert({ pair: 'XRP-USD' })];
        await r.redis.publish(r.keys.storedAlertsChannel, `[${serializeAlert(batch[0]!)},{"version":1,"id":"bad-in-batch"},${serializeAlert(batch[1]!)}]`);
        await waitFor('the batch', () => client.text().includes(`id: ${batch[1]!.id}`));
        expect(client.text()).not.toContain('not-a-uuid');
        expect(client.text()).not.toContain('bad-in-batch');
        const ids = [...client.text().matchAll(/^id: (.+)$/gm)].map((m) => m[1]);
        expect(ids).toEqual([good.id, batch[0]!.id, batch[1]!.id]);
        client.close();
      } finally {
        await app.close();
      }
    });

    it('sends heartbeat comments so idle proxies keep the stream open', async () => {
      const app = (await import('fastify')).default();
      await app.register(dashboardPlugin, { redis, keys: r.keys, logger, sseHeartbeatMs: 50 });
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      try {
        const client = await openEvents(`${url}/events`);
        await waitFor('two heartbeat comments', () => (client.text().match(/^: heartbeat /gm) ?? []).length >= 2);
        client.close();
      } finally {
        await app.close();
      }
    });

    it('after Redis comes back, tells open streams to reload recent alerts and goes on streaming new ones', async () => {
      const own = await startOwnRedis();
      const ownRedis = createRedis(own.url, logger, { name: 'dashboard-test-own' });
      const app = (await import('fastify')).default();
      await app.register(dashboardPlugin, { redis: ownRedis, keys: r.keys, logger });
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      try {
        const client = await openEvents(`${url}/events`);
        await waitFor('the stream to be subscribed', () => client.text().includes('event: ready'));
        await own.stop('SIGKILL');
        await own.start();
        await waitFor('a second ready (resync) after Redis restarted', () => (client.text().match(/event: ready/g) ?? []).length === 2, { timeoutMs: 15_000 });
        const alert = makeAlert({ pair: 'XRP-USD' });
        await waitFor('the alert after the restart', async () => {
          await ownRedis.publish(r.keys.storedAlertsChannel, serializeAlert(alert));
          return client.text().includes(`id: ${alert.id}`);
        });
        client.close();
      } finally {
        await app.close();
        await closeRedis(ownRedis);
        await own.destroy();
      }
    });

    it('ends open streams and releases the subscription when the server closes', async () => {
      const { app, url } = await server();
      const client = await openEvents(`${url}/events`);
      await waitFor('the stream to be subscribed', () => client.text().includes('event: ready'));
      await app.close();
      await client.ended;
      await waitFor('no subscriber left', async () => (await subscribers()) === 0);
    });
  });

  describe('GET /ticks', () => {
    let app: FastifyInstance;
    let url: string;
    const base = Date.parse('2026-11-29T12:00:00Z');
    beforeAll(async () => {
      ({ app, url } = await server());
      for (let i = 0; i < 10; i++) {
        const at = base + i * 1000;
        await r.redis.xadd(r.keys.ticks('BTC-USD'), `${at}-0`, 'price', `${50000 + i}.5`, 'ask', `${50000 + i}.5`, 'bid', `${49999 + i}.5`, 'at', new Date(at).toISOString(), 'botId', 'btc-1');
      }
    });
    afterAll(() => app?.close());

    const get = async (query: string) => {
      const res = await fetch(`${url}/ticks?${query}`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };

    it('answers the most recent ticks since the given time, oldest first, with exact prices', async () => {
      const { status, body } = await get(`pair=BTC-USD&since=${new Date(base + 5000).toISOString()}&limit=3`);
      expect(status).toBe(200);
      expect(body).toEqual({
        pair: 'BTC-USD',
        items: [7, 8, 9].map((i) => ({
          at: new Date(base + i * 1000).toISOString(),
          price: `${50000 + i}.5`,
          ask: `${50000 + i}.5`,
          bid: `${49999 + i}.5`,
          bot_id: 'btc-1',
        })),
      });
      const all = await get(`pair=btc-usd&since=${base}`);
      expect((all.body.items as unknown[]).length).toBe(10);
    });

    it('answers an empty list for a pair nobody watches', async () => {
      expect(await get('pair=DOGE-USD')).toEqual({ status: 200, body: { pair: 'DOGE-USD', items: [] } });
    });

    it.each([
      ['', 'pair'],
      ['pair=BTCUSD', 'pair'],
      ['pair=BTC-USD&since=yesterday', 'since'],
      ['pair=BTC-USD&limit=0', 'limit'],
      ['pair=BTC-USD&limit=5001', 'limit'],
      ['pair=BTC-USD&pair=ETH-USD', 'pair'],
    ])('answers 400 naming the parameter for %j', async (query, parameter) => {
      const { status, body } = await get(query);
      expect(status).toBe(400);
      expect(body).toMatchObject({ error: 'bad_request', parameter });
      expect(body.allowed).toEqual(expect.any(String));
    });
  });

  describe('with API_TOKEN set', () => {
    let app: FastifyInstance;
    let url: string;
    beforeAll(async () => {
      ({ app, url } = await server({ apiToken: TOKEN }));
    });
    afterAll(() => app?.close());

    it('serves the page, its scripts and uPlot without a token (they hold no data)', async () => {
      for (const path of ['/', '/dashboard/main.js', '/dashboard/dashboard.css', '/dashboard/vendor/uplot/uPlot.iife.min.js', '/dashboard/vendor/uplot/uPlot.min.css']) {
        const res = await fetch(`${url}${path}`);
        expect({ path, status: res.status }).toEqual({ path, status: 200 });
      }
    });

    it('needs the token for ticks, and a ticket bought with it for the live stream (EventSource cannot send headers)', async () => {
      expect((await fetch(`${url}/ticks?pair=BTC-USD`)).status).toBe(401);
      expect((await fetch(`${url}/ticks?pair=BTC-USD`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
      const refused = await openEvents(`${url}/events?token=${TOKEN}`);
      expect(refused.status).toBe(401);
      const issued = await fetch(`${url}/events/ticket`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
      const { ticket } = (await issued.json()) as { ticket: string };
      const client = await openEvents(`${url}/events?ticket=${ticket}`);
      expect(client.status).toBe(200);
      client.close();
    });
  });
});
