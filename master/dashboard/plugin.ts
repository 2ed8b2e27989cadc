import path from 'node:path';
import type { ServerResponse } from 'node:http';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../../shared/platform/logger';
import type { Redis } from '../../shared/platform/redis';
import type { RedisKeys } from '../../shared/contract/redis-keys';
import { describeError } from '../../shared/platform/errors';
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
}

/**
 * The live dashboard: the page and its assets at `/`, the server-sent event stream of stored alerts at `/events`, and
 * recent ticks of a pair at `/ticks`. Register it inside the API server: `await app.register(dashboardPlugin, deps)`.
 */
export async function dashboardPlugin(app: FastifyInstance, deps: DashboardDeps): Promise<void> {
  const log = deps.logger.child({ component: 'dashboard' });
  const heartbeatMs = deps.sseHeartbeatMs ?? 15_000;
  const retryMs = deps.sseRetryMs ?? 1000;
  const feed = createLiveFeed({ redis: deps.redis, keys: deps.keys, logger: deps.logger });
  const clients = new Set<ServerResponse>();

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
      for (const res of clients) res.write(line);
      scheduleHeartbeat();
    }, heartbeatMs);
    heartbeat.unref();
  };

  app.get('/events', { schema: { hide: true } }, (req, reply) => {
    reply.hijack();
    const res = reply.raw;
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
      alert: (alert, json) => res.write(`event: alert\nid: ${alert.id}\ndata: ${json}\n\n`),
      // Same signal as a fresh connection: the page reloads the latest stored alerts.
      resync: () => res.write('event: ready\ndata: {}\n\n'),
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
      .then(() => res.write('event: ready\ndata: {}\n\n'))
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

/** Registers the dashboard on `app` (the same as `app.register(dashboardPlugin, deps)`). */
export async function registerDashboard(app: FastifyInstance, deps: DashboardDeps): Promise<void> {
  await app.register(dashboardPlugin, deps);
}
