import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createLogger } from '../../shared/platform/logger';
import { loadMasterConfig } from '../../shared/config/master-config';
import { closeRedis, createRedis, type Redis } from '../../shared/platform/redis';
import { loadWorkerConfig, loadWorkerStartup } from '../../shared/config/worker-config';
import { createTickerSimulator, type TickerSimulator } from '../../sim/simulator';
import { collectPageErrors, launchBrowser } from '../../test/helpers/browser';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { waitFor } from '../../test/helpers/wait';
import { masterTestEnv } from '../../test/helpers/master-env';
import { createGenericWorker, type GenericWorker } from '../../worker/generic-worker';
import { createWorker, type Worker } from '../../worker/worker';
import { createMaster, type Master } from '../app';

/**
 * The fleet table's bot controls in Chromium, against the real master (bots table, Redis mirror, roles), a real generic
 * worker that claims what the page adds, a real pinned (compose) worker, and the ticker simulator.
 */

const OPERATOR_TOKEN = 'bots-ui-operator-token-0123456789';
const ANALYST_TOKEN = 'bots-ui-analyst-token-0123456789a';

describe('bot controls in the dashboard, in a browser', () => {
  let t: TestDatabase;
  let r: TestRedis;
  let sim: TickerSimulator;
  let master: Master;
  let workerRedis: Redis;
  let subscriber: Redis;
  let generic: GenericWorker;
  let pinned: Worker;
  let browser: Browser;
  let context: BrowserContext;
  const logger = createLogger({ name: 'bots-ui-test', level: 'silent' });

  /** The API as the operator sees it (the checks read the truth from the master, not from the page). */
  async function api(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${master.url}${path}`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
    return { status: res.status, body: res.status === 204 ? {} : ((await res.json()) as Record<string, unknown>) };
  }

  async function openWithToken(token: string): Promise<{ page: Page; errors: string[] }> {
    const page = await context.newPage();
    const errors = collectPageErrors(page);
    await page.goto(`${master.url}/`);
    await page.getByLabel('API token', { exact: true }).fill(token);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.waitForSelector('#connection[data-state="live"]');
    return { page, errors };
  }

  const row = (page: Page, botId: string) => page.locator(`#fleet-table tr[data-bot-id="${botId}"]`);
  /**
   * The browser reports each refused request as a console error: the first 401 (before the token is typed), and the 400
   * and 409 asked for here. Anything else counts.
   */
  const unexpected = (errors: string[]) => errors.filter((e) => !/Failed to load resource: the server responded with a status of (400|401|409)/.test(e));

  beforeAll(async () => {
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    [t, r] = await Promise.all([createTestDatabase(), createTestRedis()]);
    sim = await createTickerSimulator({ pairs: { 'BTC-USD': '50000', 'ETH-USD': '3000' }, volatilityPercent: '0.01', stepMs: 200, rateLimit: 0, seed: 7 });
    master = await createMaster({
      config: loadMasterConfig({
        ...masterTestEnv(t.url, r),
        LOG_LEVEL: 'silent',
        API_TOKENS: `ops:operator:${OPERATOR_TOKEN},viewer:analyst:${ANALYST_TOKEN}`,
        BOTS_RECONCILE_MS: '200',
      }),
      logger,
      tuning: { streamBlockMs: 200, pairsRefreshMs: 200 },
    });
    const workerEnv = { TICKER_BASE_URL: sim.url, TICKER_RATE_LIMIT_PER_MIN: '100000', REDIS_URL: r.url, REDIS_KEY_PREFIX: r.prefix };
    workerRedis = createRedis(r.url, logger, { name: 'bots-ui-worker', failFast: true });
    subscriber = createRedis(r.url, logger, { name: 'bots-ui-worker-sub' });
    generic = createGenericWorker({ base: loadWorkerStartup({ ...workerEnv, WORKER_ID: 'ui-pool-1' }).base, logger, redis: workerRedis, subscriber, keys: r.keys, periodMs: 200 });
    generic.start();
    pinned = createWorker({
      config: loadWorkerConfig({ ...workerEnv, PAIR: 'BTC-USD', FETCH_INTERVAL_MS: '500', COMPOSE_SERVICE: 'worker-btc-usd', WORKER_ID: 'pinned-1' }),
      logger,
      redis: workerRedis,
      startupRedisWaitMs: 500,
    });
    await pinned.start();
    // The master records the compose bot from its heartbeat.
    await waitFor('the compose bot in the bots table', async () => (await api('/bots/BTC-USD')).status === 200, { timeoutMs: 15_000 });
  });

  afterAll(async () => {
    await browser?.close();
    await generic?.stop();
    await pinned?.stop();
    if (workerRedis) await closeRedis(workerRedis);
    if (subscriber) await closeRedis(subscriber);
    await master?.close();
    await sim?.close();
    await r?.cleanup();
    await t?.drop();
  });

  it('lets an operator add, edit, pause, resume and remove a bot, and shows which worker holds it', async () => {
    const { page, errors } = await openWithToken(OPERATOR_TOKEN);
    await page.getByRole('button', { name: 'Add a bot' }).click();
    const form = page.locator('#bot-form');

    // A bad value is refused by the API, named next to the form, and nothing is created.
    await form.getByLabel('Bot pair').fill('ETH-USD');
    await form.getByLabel('Bot id (optional)').fill('eth-ui');
    await form.getByLabel('Interval (ms)').fill('50');
    await form.getByRole('button', { name: 'Add bot' }).click();
    await page.waitForSelector('#bot-error:has-text("interval_ms")');
    expect(await form.getByLabel('Interval (ms)').getAttribute('aria-invalid')).toBe('true');
    expect((await api('/bots/eth-ui')).status).toBe(404);

    await form.getByLabel('Interval (ms)').fill('1000');
    await form.getByLabel('Threshold (%)').fill('0.5');
    await form.getByRole('button', { name: 'Add bot' }).click();
    await page.waitForSelector('#bot-form', { state: 'hidden' });
    expect((await api('/bots/eth-ui')).body).toMatchObject({
      bot_id: 'eth-ui',
      pair: 'ETH-USD',
      interval_ms: 1000,
      threshold_percent: '0.5',
      price_field: 'ask',
      reference_mode: 'last-alert',
      enabled: true,
      source: 'api',
      version: 1,
      created_by: 'ops',
    });
    // The generic worker claims it; the table says which worker holds it.
    await page.waitForSelector('#fleet-table tr[data-bot-id="eth-ui"][data-worker-id="ui-pool-1"]', { timeout: 20_000 });
    expect(await row(page, 'eth-ui').locator('td.worker').textContent()).toMatch(/^ui-pool-1runtime bot v1$/);
    // The compose bot shows its worker and service, and has no control.
    await page.waitForSelector('#fleet-table tr[data-bot-id="BTC-USD"][data-worker-id="pinned-1"]');
    expect(await row(page, 'BTC-USD').locator('td.worker').textContent()).toBe('pinned-1compose: worker-btc-usd');
    // No bot control (the mute buttons of the silences are offered on every row, compose bots included).
    expect(await row(page, 'BTC-USD').locator('button:not([data-action^="mute-"])').count()).toBe(0);
    expect(await row(page, 'BTC-USD').textContent()).toContain('managed by compose (worker-btc-usd)');

    // The same id again: the 409 is shown next to the form.
    await page.getByRole('button', { name: 'Add a bot' }).click();
    await form.getByLabel('Bot pair').fill('ETH-USD');
    await form.getByLabel('Bot id (optional)').fill('eth-ui');
    await form.getByRole('button', { name: 'Add bot' }).click();
    await page.waitForSelector('#bot-error:has-text("eth-ui")');
    await form.getByRole('button', { name: 'Cancel' }).click();
    await page.waitForSelector('#bot-error', { state: 'hidden' });

    // Edit: the form opens with the bot's settings; only what changed is sent.
    await row(page, 'eth-ui').getByRole('button', { name: 'Edit eth-ui' }).click();
    expect(await form.getByLabel('Threshold (%)').inputValue()).toBe('0.5');
    expect(await form.getByLabel('Interval (ms)').inputValue()).toBe('1000');
    expect(await form.getByLabel('Bot id (optional)').isDisabled()).toBe(true);
    await form.getByLabel('Threshold (%)').fill('1.25');
    await form.getByLabel('Price field').selectOption('bid');
    await form.getByLabel('Reference').selectOption('first');
    await form.getByRole('button', { name: 'Save changes' }).click();
    await page.waitForSelector('#bot-form', { state: 'hidden' });
    expect((await api('/bots/eth-ui')).body).toMatchObject({ threshold_percent: '1.25', price_field: 'bid', reference_mode: 'first', interval_ms: 1000, version: 2, updated_by: 'ops' });
    await page.waitForSelector('#fleet-table tr[data-bot-id="eth-ui"][data-version="2"]');
    // The holder applies the new version without a restart, and the table stops saying it runs the old one.
    await waitFor('the worker on version 2', async () => (await row(page, 'eth-ui').locator('td.worker').textContent()) === 'ui-pool-1runtime bot v2', { timeoutMs: 20_000, intervalMs: 200 });

    // Pause, then resume.
    await row(page, 'eth-ui').getByRole('button', { name: 'Pause eth-ui' }).click();
    await page.waitForSelector('#fleet-table tr[data-bot-id="eth-ui"][data-status="paused"]');
    expect((await api('/bots/eth-ui')).body).toMatchObject({ enabled: false, version: 3 });
    await row(page, 'eth-ui').getByRole('button', { name: 'Resume eth-ui' }).click();
    await page.waitForSelector('#fleet-table tr[data-bot-id="eth-ui"]:not([data-status="paused"])');
    expect((await api('/bots/eth-ui')).body).toMatchObject({ enabled: true, version: 4 });
    await page.waitForSelector('#fleet-table tr[data-bot-id="eth-ui"][data-worker-id="ui-pool-1"][data-status="ok"]', { timeout: 20_000 });

    // Remove asks for a second click.
    await row(page, 'eth-ui').getByRole('button', { name: 'Remove eth-ui' }).click();
    expect((await api('/bots/eth-ui')).status).toBe(200);
    await row(page, 'eth-ui').getByRole('button', { name: 'Confirm removal of eth-ui' }).click();
    await waitFor('the bot removed', async () => (await api('/bots/eth-ui')).status === 404);
    await waitFor('no control left for it', async () => (await row(page, 'eth-ui').locator('button:not([data-action^="mute-"])').count()) === 0);

    // Every change is in the audit, under the token's name.
    const audit = (await api('/audit')).body as { items: { actor: string; action: string; bot_id: string }[] };
    const mine = audit.items.filter((i) => i.bot_id === 'eth-ui');
    expect(mine.map((i) => i.actor)).toEqual(mine.map(() => 'ops'));
    expect(mine).toHaveLength(5);
    expect(unexpected(errors)).toEqual([]);
    await page.close();
  }, 120_000);

  it('shows an analyst the fleet and its workers, with no control', async () => {
    const { page, errors } = await openWithToken(ANALYST_TOKEN);
    await page.waitForSelector('#fleet-table tr[data-bot-id="BTC-USD"][data-worker-id="pinned-1"]');
    // Wait for a refresh after GET /me answered, so the table is drawn knowing the scope.
    await page.waitForFunction(() => document.querySelector('#fleet-table tbody tr td.worker') !== null);
    expect(await page.locator('#bot-toolbar').isHidden()).toBe(true);
    expect(await page.locator('#bot-form').isHidden()).toBe(true);
    expect(await page.locator('#fleet-actions-head').isHidden()).toBe(true);
    expect(await page.locator('#fleet-table button').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Add a bot' }).count()).toBe(0);
    expect(unexpected(errors)).toEqual([]);
    await page.close();
  });
});
