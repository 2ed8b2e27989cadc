import path from 'node:path';
import type { ServerResponse } from 'node:http';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../../shared/platform/logger';
import type { Redis } from '../../shared/platform/redis';
import type { RedisKeys } from '../../shared/contract/redis-keys';
import { describeError } from '../../shared/platform/errors';
import { createEventTickets, type EventTickets } from '../http/event-tickets';
import { createLiveFeed } from './live-feed';
import { parseTicksQuery, readTicks } from './ticks';

/** Where the page, its scripts and styles live (plain files: nothing is built for the viewer). */
export const DASHBOARD_PUBLIC_DIR = path.join(__dirname, 'public');
/** Scripts and styles, served under `/dashboard/`. */
export const DASHBOARD_ASSETS_DIR = path.join(DASHBOARD_PUBLIC_DIR, 'assets');
/** uPlot's browser build, served from the installed package (never a CDN). */
export const UPLOT_DIST_DIR = path.join(path.dirname(require.resolve('uplot/package.json')), 'dist');

/** What the dashboard needs from the master; a subset of the API's deps, so the API passes its own. */
export interface DashboardDeps {
  /** A regular connection: read for ticks, duplicated once for the live feed's subscription. */
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly logger: Logger;
  /**
   * Comment line sent to every `/events` client this often, so proxies and load balancers keep idle streams open.
   * @defaultValue 15000
   */
  readonly sseHeartbeatMs?: number;
  /**
   * The `retry:` the browser waits before reconnecting a dropped stream (e.g. while the master restarts).
   * @defaultValue 1000
   */
  readonly sseRetryMs?: number;
  /**
   * Open `/events` connections this server serves (EVENTS_MAX_CLIENTS); one more gets 503 until another closes.
   * @defaultValue 100
   */
  readonly sseMaxClients?: number;
  /**
   * Bytes a client may leave unread in its connection's buffer (after the kernel's own) before it is dropped: a browser
   * tab that stopped reading must not make the server hold every alert for it. A reading client never gets near it.
   * @defaultValue 1048576 (1 MiB)
   */
  readonly sseMaxBufferedBytes?: number;
  /** Where `POST /events/ticket` takes tickets from (the API passes the one its auth hook checks). @defaultValue in Redis */
  readonly eventTickets?: EventTickets;
}

/**
 * The live dashboard: the page and its assets at `/`, the server-sent event stream of stored alerts at `/events`, and
 * recent ticks of a pair at `/ticks`. Register it inside the API server: `await app.register(dashboardPlugin, deps)`.
 */
export async function dashboardPlugin(app: FastifyInstance, deps: DashboardDeps): Promise<void> {
  const log = deps.logger.child({ component: 'dashboard' });
  const heartbeatMs = deps.sseHeartbeatMs ?? 15_000;
  const retryMs = deps.sseRetryMs ?? 1000;
  const maxClients = deps.sseMaxClients ?? 100;
  const maxBufferedBytes = deps.sseMaxBufferedBytes ?? 1024 * 1024;
  const tickets = deps.eventTickets ?? createEventTickets({ redis: deps.redis, keys: deps.keys });
  const feed = createLiveFeed({ redis: deps.redis, keys: deps.keys, logger: deps.logger });
  const clients = new Set<ServerResponse>();

  /**
   * Writes one frame. A `false` from write() only means the kernel buffer is full; the frame is kept in the response's
   * own buffer. Once that passes the bound the client is not reading: it is cut off (destroy, not end: end would wait to
   * flush what it never reads), and its browser reconnects and backfills when it reads again.
   */
  const send = (res: ServerResponse, frame: string) => {
    if (res.destroyed) return;
    if (res.write(frame) || res.writableLength <= maxBufferedBytes) return;
    log.info({ bufferedBytes: res.writableLength, maxBufferedBytes }, 'dropped a live feed client that stopped reading');
    res.destroy();
  };

  // The page at `/` and its assets under `/dashboard/`: the API's auth hook lets exactly these through without a token
  // (they hold no data; the page asks for the token and sends it with every data request). wildcard: false registers one
  // route per file found at start, so the dashboard never shadows an API path.
  await app.register(fastifyStatic, { root: DASHBOARD_ASSETS_DIR, prefix: '/dashboard/', wildcard: false, index: false });
  await app.register(fastifyStatic, {
    root: UPLOT_DIST_DIR,
    prefix: '/dashboard/vendor/uplot/',
    wildcard: false,
    index: false,
    decorateReply: false,
    globIgnore: ['**/*.ts', '**/*.cjs.js', '**/*.esm.js', '**/uPlot.iife.js'],
  });
  app.get('/', { schema: { hide: true } }, (_req, reply) => reply.sendFile('index.html', DASHBOARD_PUBLIC_DIR));

  // One timer for every client rather than one each; it runs only while someone is connected.
  let heartbeat: NodeJS.Timeout | undefined;
  const scheduleHeartbeat = () => {
    if (heartbeat || clients.size === 0) return;
    heartbeat = setTimeout(() => {
      heartbeat = undefined;
      const line = `: heartbeat ${new Date().toISOString()}\n\n`;
      for (const res of clients) send(res, line);
      scheduleHeartbeat();
    }, heartbeatMs);
    heartbeat.unref();
  };

  // The live feed's credential (see master/http/auth.ts): the API token in the header buys one ticket for one connection.
  app.post('/events/ticket', { schema: { hide: true } }, async (_req, reply) => {
    const { ticket, expiresAt } = await tickets.issue();
    return reply.header('cache-control', 'no-store').send({ ticket, expires_at: expiresAt.toISOString() });
  });

  app.get('/events', { schema: { hide: true } }, (req, reply) => {
    if (clients.size >= maxClients) {
      return reply
        .code(503)
        .header('retry-after', '10')
        .send({ error: 'unavailable', message: `the live feed already serves ${maxClients} connections on this master (EVENTS_MAX_CLIENTS); retry shortly` });
    }
    reply.hijack();
    const res = reply.raw;
    // Headers set before the hijack (the security headers) are on `res` already and go out with these.
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx and friends buffer responses by default, which would hold alerts back.
      'x-accel-buffering': 'no',
    });
    res.write(`retry: ${retryMs}\n: connected\n\n`);
    clients.add(res);
    const unsubscribe = feed.subscribe({
      alert: (alert, json) => send(res, `event: alert\nid: ${alert.id}\ndata: ${json}\n\n`),
      // Same signal as a fresh connection: the page reloads the latest stored alerts.
      resync: () => send(res, 'event: ready\ndata: {}\n\n'),
    });
    scheduleHeartbeat();
    const done = () => {
      unsubscribe();
      clients.delete(res);
    };
    req.raw.once('close', done);
    res.once('error', (err) => {
      log.debug({ err: describeError(err) }, 'event stream client error');
      done();
    });
    // Tell the browser once the subscription is live, so it can fetch anything stored before it.
    feed
      .ready()
      .then(() => send(res, 'event: ready\ndata: {}\n\n'))
      .catch((err: unknown) => {
        log.warn({ err: describeError(err) }, 'event stream has no Redis subscription');
        res.end();
      });
  });

  app.get('/ticks', { schema: { hide: true } }, async (req, reply) => {
    const parsed = parseTicksQuery(req.query);
    if (!parsed.ok) {
      // The same body as the API's other 400 answers.
      return reply.code(400).send({
        error: 'bad_request',
        parameter: parsed.parameter,
        value: parsed.value,
        allowed: parsed.allowed,
        message: `${parsed.parameter}=${JSON.stringify(parsed.value)} is invalid: expected ${parsed.allowed}`,
      });
    }
    try {
      const items = await readTicks(deps.redis, deps.keys, parsed.query);
      return { pair: parsed.query.pair, items };
    } catch (err) {
      log.warn({ err: describeError(err), pair: parsed.query.pair }, 'could not read ticks');
      // The same body as the API's other 503 answers: the request was fine, Redis is not.
      return reply.code(503).send({ error: 'unavailable', message: 'Redis is unreachable; retry shortly' });
    }
  });

  // End open streams before the server waits for connections to drain, or close() would wait forever.
  app.addHook('preClose', async () => {
    if (heartbeat) clearTimeout(heartbeat);
    heartbeat = undefined;
    for (const res of clients) res.end();
    clients.clear();
  });
  app.addHook('onClose', async () => {
    await feed.close();
  });
}
