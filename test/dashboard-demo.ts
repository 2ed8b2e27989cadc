/**
 * The dashboard over believable demo data, without workers or the ticker: seeds an hour of ticks, the alerts the real
 * detector raises on them, and a fleet with every status; then keeps it live (a tick per pair every 2 s, each alert
 * stored and PUBLISHed on the stored-alerts channel exactly as the master does).
 *
 *   node --import tsx test/dashboard-demo.ts                       # http://localhost:8090/
 *   node --import tsx test/dashboard-demo.ts --screenshot docs/dashboard.png [--viewport 1440x1100]
 *
 * Uses its own database `tickwatch_dashboard_demo` on DATABASE_URL's server (created, migrated, emptied at start) and
 * REDIS_URL under the key prefix `dashboard-demo:` (wiped at start), so it never touches a real fleet's data.
 */
import { buildAlertMessage, serializeAlertBatch, type AlertMessage, type BotConfigSnapshot } from '../shared/contract/alert';
import { createDb, ensureDatabase, migrateLatest } from '../shared/platform/db';
import { writeBotStatus, type BotState, type BotStatus } from '../shared/contract/fleet-status';
import { createLifecycle, exitOnSignals } from '../shared/platform/lifecycle';
import { createLogger } from '../shared/platform/logger';
import { closeRedis, createRedis, deleteKeysWithPrefix, type Redis } from '../shared/platform/redis';
import { createRedisKeys, type RedisKeys } from '../shared/contract/redis-keys';
import { decide } from '../worker/detector';
import { createAlertRepository, type AlertRepository } from '../master/ingest/alert-repository';
import { createApiServer } from '../master/http/server';
import { createMetrics } from '../master/metrics';
import { createSeededRandom } from '../sim/random';

const TICK_MS = 2000;
const SEED_STEP_MS = 5000;
const SEED_SPAN_MS = 60 * 60 * 1000;

interface DemoBot {
  readonly config: BotConfigSnapshot;
  /** What the heartbeat says; `stale` bots stopped writing heartbeats 6 minutes ago. */
  readonly state: BotState | 'stale';
  /** Random-walk volatility per step, as a fraction of the price. */
  readonly sigma: number;
  price: number;
  reference: string | null;
  published: number;
  lastError?: string;
}

function bot(pair: string, start: number, thresholdPercent: string, sigma: number, state: DemoBot['state'], referenceMode: 'first' | 'last-alert' = 'last-alert'): DemoBot {
  const botId = `${pair.toLowerCase()}-1`;
  return {
    config: { botId, pair, intervalMs: 5000, thresholdPercent, priceField: 'ask', referenceMode, tickerBaseUrl: 'https://api.uphold.com/v0/ticker' },
    state,
    sigma,
    price: start,
    reference: null,
    published: 0,
  };
}

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

function quoteOf(price: number): { ask: string; bid: string } {
  const decimals = price >= 1000 ? 2 : price >= 1 ? 4 : 6;
  return { ask: price.toFixed(decimals), bid: (price * 0.9995).toFixed(decimals) };
}

/** One poll of one bot at time `at`: moves the price, records the tick, and returns the alert if the detector raised one. */
function step(b: DemoBot, at: number, random: () => number): { tick: Record<string, string>; alert?: AlertMessage } {
  b.price *= 1 + b.sigma * gaussian(random);
  const quote = quoteOf(b.price);
  const decision = decide(b.reference, quote, b.config);
  b.reference = decision.nextReference;
  const tick = { price: quote.ask, ask: quote.ask, bid: quote.bid, at: new Date(at).toISOString(), botId: b.config.botId };
  if (decision.kind !== 'alert') return { tick };
  b.published += 1;
  return {
    tick,
    alert: buildAlertMessage(decision, b.config, new Date(at)),
  };
}

async function writeHeartbeat(redis: Redis, keys: RedisKeys, b: DemoBot, now: number): Promise<void> {
  const stale = b.state === 'stale';
  const at = new Date(stale ? now - 6 * 60_000 : now).toISOString();
  const status: BotStatus = {
    botId: b.config.botId,
    pair: b.config.pair,
    status: stale ? 'ok' : b.state,
    ...(b.state === 'invalid-pair' ? {} : { lastPrice: quoteOf(b.price).ask, lastPriceAt: at, referencePrice: b.reference ?? undefined }),
    lastFetchAt: at,
    consecutiveErrors: b.state === 'degraded' ? 3 : b.state === 'invalid-pair' ? 12 : 0,
    ...(b.state === 'degraded' ? { lastError: 'ticker answered 503 three times; backing off' } : {}),
    ...(b.state === 'invalid-pair' ? { lastError: 'ticker answered 404: unknown pair FOO-BAR' } : {}),
    startedAt: new Date(now - SEED_SPAN_MS).toISOString(),
    heartbeatAt: at,
    ttlMs: 15_000,
    rateLimited: false,
    effectiveIntervalMs: b.config.intervalMs,
    alertsPublished: b.published,
    alertsDropped: 0,
    alertsQueued: 0,
    config: b.config,
  };
  await writeBotStatus(redis, keys, status);
}

async function store(repo: AlertRepository, redis: Redis, keys: RedisKeys, alerts: AlertMessage[], publish: boolean): Promise<void> {
  if (alerts.length === 0) return;
  const inserted = new Set(await repo.insertMany(alerts));
  if (!publish) return;
  const stored = alerts.filter((a) => inserted.has(a.id));
  if (stored.length > 0) await redis.publish(keys.storedAlertsChannel, serializeAlertBatch(stored));
}

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const logger = createLogger({ name: 'dashboard-demo', level: process.env.LOG_LEVEL ?? 'info' });
  const lifecycle = createLifecycle(logger);
  exitOnSignals(lifecycle, logger, 10_000);
  const server = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tickwatch');
  server.pathname = '/tickwatch_dashboard_demo';
  const databaseUrl = server.toString();
  const keys = createRedisKeys('dashboard-demo:');
  const screenshot = flag('screenshot');
  const port = Number(flag('port') ?? process.env.API_PORT ?? (screenshot ? 0 : 8090));

  await ensureDatabase(databaseUrl);
  const db = createDb(databaseUrl, { poolMax: 4, applicationName: 'tickwatch-dashboard-demo' });
  lifecycle.add('postgres', () => db.destroy());
  await migrateLatest(db);
  await db('alerts').del();
  const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', logger, { name: 'demo' });
  lifecycle.add('redis', () => closeRedis(redis));
  await deleteKeysWithPrefix(redis, keys.prefix);
  const repo = createAlertRepository(db);

  const random = createSeededRandom(7);
  const bots = [
    bot('BTC-USD', 91_250, '0.15', 0.0004, 'ok'),
    bot('ETH-USD', 3_020, '0.1', 0.0005, 'ok'),
    bot('XRP-USD', 2.18, '0.15', 0.0006, 'degraded'),
    bot('SOL-EUR', 141.5, '0.12', 0.0005, 'stale'),
    bot('ADA-USD', 0.412, '1.5', 0.0003, 'ok', 'first'),
    bot('FOO-BAR', 1, '0.1', 0, 'invalid-pair'),
  ];
  const live = bots.filter((b) => b.state !== 'invalid-pair');

  // An hour of history, with tick stream ids set to their times so /ticks can range over them.
  const now = Date.now();
  for (const b of live) {
    const pipeline = redis.pipeline();
    const alerts: AlertMessage[] = [];
    const end = b.state === 'stale' ? now - 6 * 60_000 : now;
    for (let at = now - SEED_SPAN_MS; at <= end; at += SEED_STEP_MS) {
      const { tick, alert } = step(b, at, random);
      pipeline.xadd(keys.ticks(b.config.pair), `${at}-0`, ...Object.entries(tick).flat());
      if (alert) alerts.push(alert);
    }
    await pipeline.exec();
    await store(repo, redis, keys, alerts, false);
  }
  for (const b of bots) await writeHeartbeat(redis, keys, b, now);

  const app = await createApiServer({ db, redis, keys, metrics: createMetrics({ defaultMetrics: false }), logger, apiToken: process.env.API_TOKEN || undefined });
  lifecycle.add('http', () => app.close());
  const address = await app.listen({ host: '127.0.0.1', port });
  logger.info({ url: `${address}/` }, 'dashboard demo is up');

  // Keep it live: a new tick per running bot every TICK_MS, alerts stored then published like the master does.
  let timer: NodeJS.Timeout | undefined;
  const loop = async () => {
    const at = Date.now();
    for (const b of live.filter((x) => x.state !== 'stale')) {
      const { tick, alert } = step(b, at, random);
      await redis.xadd(keys.ticks(b.config.pair), 'MAXLEN', '~', '2000', '*', ...Object.entries(tick).flat());
      if (alert) await store(repo, redis, keys, [alert], true);
    }
    for (const b of bots) await writeHeartbeat(redis, keys, b, at);
    if (!lifecycle.closing) timer = setTimeout(() => void loop().catch((err: unknown) => logger.error({ err }, 'demo tick failed')), TICK_MS);
  };
  lifecycle.add('demo loop', () => clearTimeout(timer));
  await loop();

  if (screenshot) {
    // A dev tool, so it may borrow the tests' browser helper.
    const { launchBrowser } = await import('./helpers/browser');
    const [width, height] = (flag('viewport') ?? '1440x1100').split('x').map(Number);
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage({ viewport: { width: width ?? 1440, height: height ?? 1100 }, deviceScaleFactor: 1 });
      await page.goto(`${address}/#pair=${flag('pair') ?? 'BTC-USD'}`);
      await page.waitForSelector('#fleet-table tbody tr');
      await page.waitForSelector('#price-chart canvas');
      await page.waitForSelector('#connection[data-state="live"]');
      // Let one live alert arrive and the charts settle.
      await page.waitForTimeout(Number(flag('settle-ms') ?? 6000));
      await page.screenshot({ path: screenshot, fullPage: flag('full') === 'true' });
      logger.info({ path: screenshot }, 'screenshot written');
    } finally {
      await browser.close();
    }
    await lifecycle.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
