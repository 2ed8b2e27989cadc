import { readFile } from 'node:fs/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { parseAlertMessage, serializeAlert } from '../../shared/contract/alert';
import { writeBotStatus, type BotStatus } from '../../shared/contract/fleet-status';
import { createLogger } from '../../shared/platform/logger';
import { loadMasterConfig } from '../../shared/config/master-config';
import { closeRedis, createRedis, type Redis } from '../../shared/platform/redis';
import { loadWorkerConfig } from '../../shared/config/worker-config';
import { createTickerSimulator, type TickerSimulator } from '../../sim/simulator';
import { makeAlert } from '../../test/helpers/alerts';
import { collectPageErrors, launchBrowser } from '../../test/helpers/browser';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { waitFor } from '../../test/helpers/wait';
import { createWorker, type Worker } from '../../worker/worker';
import { createAlertRepository } from '../ingest/alert-repository';
import { createApiServer } from '../http/server';
import { createMaster, type Master } from '../app';
import { createMetrics } from '../metrics';
import { masterTestEnv } from '../../test/helpers/master-env';

/**
 * The dashboard in Debian's Chromium against the real thing: the ticker simulator, a real worker polling it, and the
 * master (ingest into a fresh Postgres database, the API and the dashboard) on real Redis under this file's prefix.
 */

/** uPlot draws the price line in this colour (chart.js PRICE_COLOUR). */
const PRICE_RGB = [29, 78, 216] as const;
const TOKEN = 'browser-test-token-0123456789abcdef';

describe('the dashboard in a browser', () => {
  let t: TestDatabase;
  let r: TestRedis;
  let sim: TickerSimulator;
  let master: Master;
  let workerRedis: Redis;
  let workers: Worker[] = [];
  let browser: Browser;
  // One context for the file (a context costs seconds on a busy machine); each test opens its own tab, and the token
  // lives in sessionStorage, which is per tab.
  let context: BrowserContext;
  const logger = createLogger({ name: 'dashboard-browser-test', level: 'silent' });
  // Stored before any page loads: the history's pair filter offers the pairs of the (cached) recent statistics.
  const observed = (secondsAgo: number) => new Date(Date.now() - secondsAgo * 1000).toISOString();
  const xrp = [
    makeAlert({ pair: 'XRP-USD', direction: 'up', changePercent: '1.25', observedAt: observed(30) }),
    makeAlert({ pair: 'XRP-USD', direction: 'down', changePercent: '-2.5', observedAt: observed(20) }),
    makeAlert({ pair: 'XRP-USD', direction: 'down', changePercent: '-0.75', observedAt: observed(10) }),
  ];

  function startWorker(pair: string): Worker {
    const config = loadWorkerConfig({
      PAIR: pair,
      BOT_ID: `${pair.toLowerCase()}-bot`,
      FETCH_INTERVAL_MS: '200',
      OSCILLATION_PERCENT: '0.5',
      REFERENCE_MODE: 'last-alert',
      TICKER_BASE_URL: sim.url,
      TICKER_RATE_LIMIT_PER_MIN: '100000',
      REDIS_URL: r.url,
      REDIS_KEY_PREFIX: r.prefix,
    });
    const worker = createWorker({ config, logger, redis: workerRedis, startupRedisWaitMs: 500 });
    workers.push(worker);
    return worker;
  }

  async function open(url: string): Promise<{ page: Page; errors: string[] }> {
    const page = await context.newPage();
    const errors = collectPageErrors(page);
    await page.goto(url);
    return { page, errors };
  }

  beforeAll(async () => {
    // Chromium first: without it every test here fails with the install hint, before any service starts.
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    [t, r] = await Promise.all([createTestDatabase(), createTestRedis()]);
    sim = await createTickerSimulator({ pairs: { 'BTC-USD': '50000', 'ETH-USD': '3000' }, volatilityPercent: '0.01', stepMs: 200, rateLimit: 0, seed: 5 });
    master = await createMaster({
      config: loadMasterConfig({ ...masterTestEnv(t.url, r), LOG_LEVEL: 'silent' }),
      logger,
      tuning: { streamBlockMs: 200, pairsRefreshMs: 200 },
    });
    await createAlertRepository(t.db).insertMany([...xrp, makeAlert({ pair: 'ADA-USD', direction: 'down', changePercent: '-3', observedAt: observed(15) })]);
    workerRedis = createRedis(r.url, logger, { name: 'browser-test-worker', failFast: true });
    await Promise.all([startWorker('BTC-USD').start(), startWorker('ETH-USD').start()]);
    await waitFor('both bots to report', async () => (await r.redis.hlen(r.keys.botsLastSeen)) >= 2);
  });

  afterAll(async () => {
    await browser?.close();
    await Promise.all(workers.map((w) => w.stop()));
    if (workerRedis) await closeRedis(workerRedis);
    await master?.close();
    await sim?.close();
    await r?.cleanup();
    await t?.drop();
  });

  it('loads with no console errors and goes live', async () => {
    const { page, errors } = await open(`${master.url}/`);
    await page.waitForSelector('#connection[data-state="live"]');
    await page.waitForSelector('#fleet-table tr[data-bot-id="btc-usd-bot"]');
    await page.waitForSelector('#rate-chart canvas');
    await page.waitForSelector('#history-table tbody tr');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows an alert published by a worker in the live feed within 2 s', async () => {
    const { page } = await open(`${master.url}/`);
    await page.waitForSelector('#connection[data-state="live"]');
    const watcher = r.redis.duplicate();
    try {
      const published = new Promise<string>((resolve) => {
        watcher.on('message', (_channel: string, message: string) => {
          const parsed = parseAlertMessage(message);
          if (parsed.ok && parsed.alert.direction === 'up') resolve(parsed.alert.id);
        });
      });
      await watcher.subscribe(r.keys.alertChannel('BTC-USD'));
      // A 3 % jump: far beyond the bot's 0.5 % threshold.
      sim.setPrice('BTC-USD', '51500', '51490');
      const id = await published;
      const item = await page.waitForSelector(`#feed li[data-alert-id="${id}"]`, { timeout: 2000 });
      expect(await item.getAttribute('class')).toMatch(/\bup\b/);
      expect(await item.textContent()).toMatch(/BTC-USD.*\+\d+\.\d+ %/);
    } finally {
      await closeRedis(watcher);
      await page.close();
    }
  });

  it('shows a bot whose heartbeat expired as stale', async () => {
    const now = Date.now();
    const heartbeat = (): BotStatus => ({
      botId: 'fading-bot',
      pair: 'SOL-EUR',
      status: 'ok',
      lastPrice: '141.5',
      lastFetchAt: new Date(now).toISOString(),
      lastPriceAt: new Date(now).toISOString(),
      referencePrice: '141',
      consecutiveErrors: 0,
      startedAt: new Date(now - 60_000).toISOString(),
      heartbeatAt: new Date().toISOString(),
      ttlMs: 1500,
      rateLimited: false,
      effectiveIntervalMs: 500,
      alertsPublished: 0,
      alertsDropped: 0,
      alertsQueued: 0,
      config: { botId: 'fading-bot', pair: 'SOL-EUR', intervalMs: 500, thresholdPercent: '1', priceField: 'ask', referenceMode: 'first', tickerBaseUrl: sim.url },
    });
    // A bot alive while the page loads: it writes a heartbeat every 300 ms, each valid for 1.5 s.
    await writeBotStatus(r.redis, r.keys, heartbeat());
    let beating = true;
    const beats = (async () => {
      while (beating) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        await writeBotStatus(r.redis, r.keys, heartbeat());
      }
    })();
    const { page } = await open(`${master.url}/`);
    const row = page.locator('#fleet-table tr[data-bot-id="fading-bot"]');
    await row.waitFor();
    expect(await row.getAttribute('data-status')).toBe('ok');
    beating = false;
    await beats;
    // No more heartbeats: within a fleet refresh after the TTL, the row turns stale.
    await page.waitForSelector('#fleet-table tr[data-bot-id="fading-bot"][data-status="stale"]', { timeout: 10_000 });
    expect(await row.locator('.badge').textContent()).toBe('stale');
    expect(await page.locator('#fleet-table tr[data-bot-id="btc-usd-bot"]').getAttribute('data-status')).toBe('ok');
    await page.close();
  });

  it('draws the price chart of the chosen pair (the canvas holds the price line)', async () => {
    const { page } = await open(`${master.url}/`);
    await page.waitForSelector('#chart-pair option[value="ETH-USD"]', { state: 'attached' });
    // By section, as a user finds it: other parts of the page have their own "Pair" fields.
    await page.getByRole('region', { name: 'Price' }).getByLabel('Pair', { exact: true }).selectOption('ETH-USD');
    await page.waitForSelector('#price-chart[data-pair="ETH-USD"] canvas');
    const linePixels = await waitFor('the price line on the canvas', () =>
      page.evaluate((rgb) => {
        const canvas = document.querySelector<HTMLCanvasElement>('#price-chart canvas');
        const ctx = canvas?.getContext('2d');
        if (!canvas || !ctx) return 0;
        const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 0; i < data.length; i += 4) {
          if (Math.abs(data[i]! - rgb[0]) < 40 && Math.abs(data[i + 1]! - rgb[1]) < 40 && Math.abs(data[i + 2]! - rgb[2]) < 40 && data[i + 3]! > 128) n++;
        }
        return n > 100 ? n : 0;
      }, PRICE_RGB),
    );
    expect(linePixels).toBeGreaterThan(100);
    expect(Number(await page.locator('#price-chart').getAttribute('data-points'))).toBeGreaterThan(1);
    expect(page.url()).toMatch(/#pair=ETH-USD$/);
    await page.close();
  });

  describe('in a browser whose locale is not a valid language tag', () => {
    // Under LANG=C.UTF-8 some Chromium builds report `en-US@posix`; Intl rejects it with a RangeError.
    let oddBrowser: Browser;

    beforeAll(async () => {
      if (!master) return;
      oddBrowser = await launchBrowser({ lang: 'C.UTF-8', extraArgs: ['--lang=en-US@posix'] });
      await createAlertRepository(t.db).insertMany([makeAlert({ pair: 'DOT-USD', observedAt: new Date(Date.now() - 5000).toISOString() })]);
    });
    afterAll(async () => {
      await oddBrowser?.close();
    });

    it('still draws the price chart and the history, with no page error', async () => {
      const page = await oddBrowser.newPage({ viewport: { width: 1280, height: 900 } });
      // What the browser itself reports, before the dashboard repairs it: the premise of this test.
      const reported = await page.evaluate(() => navigator.language);
      const errors = collectPageErrors(page);
      await page.goto(`${master.url}/`);
      // Stops at the first page error, so a broken page fails with its error rather than a timeout.
      await waitFor('the chart drawn with its points and the history filled, or a page error', async () => {
        if (errors.length > 0) return true;
        const points = Number(await page.locator('#price-chart').getAttribute('data-points'));
        return points > 1 && (await page.locator('#price-chart canvas').count()) > 0 && (await page.locator('#history-table tbody tr[data-alert-id]').count()) > 0;
      });
      expect({ reported, errors }).toEqual({ reported: 'en-US@posix', errors: [] });
      await page.waitForSelector('#connection[data-state="live"]');
      // Times are formatted in the fallback locale: a 24-hour clock.
      expect(await page.locator('#history-table tbody tr[data-alert-id]').first().locator('td').first().textContent()).toMatch(/\d{2}:\d{2}:\d{2}/);
      await page.close();
    });
  });

  describe('history', () => {
    async function filterXrpDown(page: Page): Promise<void> {
      await page.waitForSelector('#f-pair option[value="XRP-USD"]', { state: 'attached' });
      await page.getByRole('region', { name: 'History' }).getByLabel('Pair', { exact: true }).selectOption('XRP-USD');
      await page.getByLabel('Direction').selectOption('down');
      await page.getByRole('button', { name: 'Apply filters' }).click();
    }

    it('narrows the table to the rows matching a filter', async () => {
      const { page } = await open(`${master.url}/`);
      await page.waitForSelector(`#history-table tr[data-alert-id="${xrp[0]!.id}"]`);
      await filterXrpDown(page);
      await waitFor('only the two XRP-USD falls', async () => {
        const ids = await page.locator('#history-table tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-alert-id')));
        return ids.length === 2 && ids[0] === xrp[2]!.id && ids[1] === xrp[1]!.id;
      });
      const cells = await page.locator('#history-table tbody tr').evaluateAll((rows) => rows.map((row) => (row as HTMLTableRowElement).cells[1]!.textContent + ' ' + (row as HTMLTableRowElement).cells[2]!.textContent));
      expect(cells).toEqual(['XRP-USD ▼ down', 'XRP-USD ▼ down']);
      await page.close();
    });

    it('downloads exactly the filtered rows through the CSV link', async () => {
      const { page } = await open(`${master.url}/`);
      await filterXrpDown(page);
      await page.waitForSelector(`#history-table tr[data-alert-id="${xrp[1]!.id}"]`);
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download CSV' }).click()]);
      const csv = await readFile((await download.path())!, 'utf8');
      const lines = csv.trim().split(/\r?\n/);
      expect(lines[0]).toMatch(/^id,bot_id,pair,direction,/);
      expect(lines.slice(1).map((l) => l.split(',')[0])).toEqual([xrp[2]!.id, xrp[1]!.id]);
      expect(lines.slice(1).every((l) => l.includes(',XRP-USD,down,'))).toBe(true);
      await page.close();
    });
  });

  describe('with API_TOKEN set', () => {
    let app: FastifyInstance;
    let url: string;
    let apiRedis: Redis;

    async function startApi(port = 0): Promise<void> {
      app = await createApiServer({ db: t.db, redis: apiRedis, keys: r.keys, metrics: createMetrics({ defaultMetrics: false }), logger, apiToken: TOKEN });
      url = await app.listen({ host: '127.0.0.1', port });
    }

    beforeAll(async () => {
      if (!master) return;
      apiRedis = createRedis(r.url, logger, { name: 'browser-test-api' });
      await startApi();
    });
    afterAll(async () => {
      await app?.close();
      await closeRedis(apiRedis);
    });

    it('asks for the token once, keeps it for the tab, and shows the data', async () => {
      const { page } = await open(`${url}/`);
      const input = page.getByLabel('API token', { exact: true });
      await input.waitFor();
      await input.fill(TOKEN);
      await page.getByRole('button', { name: 'Use token' }).click();
      await page.waitForSelector('#connection[data-state="live"]');
      await page.waitForSelector('#fleet-table tr[data-bot-id="btc-usd-bot"]');
      await page.reload();
      await page.waitForSelector('#connection[data-state="live"]');
      expect(await page.locator('#token-panel').isHidden()).toBe(true);
      await page.close();
    });

    it('shows that it is reconnecting while the master restarts, then resumes the live feed by itself', async () => {
      const { page } = await open(`${url}/`);
      await page.getByLabel('API token', { exact: true }).fill(TOKEN);
      await page.getByRole('button', { name: 'Use token' }).click();
      await page.waitForSelector('#connection[data-state="live"]');
      const port = Number(new URL(url).port);
      await app.close();
      await page.waitForSelector('#connection[data-state="reconnecting"]');
      await startApi(port);
      await page.waitForSelector('#connection[data-state="live"]', { timeout: 10_000 });
      const alert = makeAlert({ pair: 'ETH-USD', direction: 'down', changePercent: '-1.5', observedAt: new Date().toISOString() });
      await r.redis.publish(r.keys.storedAlertsChannel, serializeAlert(alert));
      await page.waitForSelector(`#feed li[data-alert-id="${alert.id}"]`);
      await page.close();
    });
  });
});
