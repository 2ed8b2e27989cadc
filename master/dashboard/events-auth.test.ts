import type { Browser, Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { serializeAlert } from '../../shared/contract/alert';
import { createLogger } from '../../shared/platform/logger';
import { makeAlert } from '../../test/helpers/alerts';
import { collectPageErrors, launchBrowser } from '../../test/helpers/browser';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { insertFixtureAlerts } from '../../test/helpers/fixtures';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { createApiServer } from '../http/server';
import { createMetrics } from '../metrics';

/**
 * The dashboard in Chromium against an API with API_TOKEN set: the live feed is opened with tickets, the token never
 * appears in a URL, and the Content-Security-Policy refuses nothing the page needs.
 */

const TOKEN = 'events-auth-browser-token-0123456789';

describe('the dashboard live feed with API_TOKEN set, in a browser', () => {
  let t: TestDatabase;
  let r: TestRedis;
  let browser: Browser;
  let app: FastifyInstance;
  let url: string;
  const logger = createLogger({ name: 'events-auth-test', level: 'silent' });

  async function startApi(port = 0): Promise<void> {
    app = await createApiServer({ db: t.db, redis: r.redis, keys: r.keys, metrics: createMetrics({ defaultMetrics: false }), logger, apiToken: TOKEN });
    url = await app.listen({ host: '127.0.0.1', port });
  }

  /** Opens the page, types the token, and records every URL the page requests and every error it reports. */
  async function openWithToken(): Promise<{ page: Page; errors: string[]; requested: string[] }> {
    const page = await browser.newPage();
    const errors = collectPageErrors(page);
    const requested: string[] = [];
    page.on('request', (req) => requested.push(req.url()));
    await page.goto(`${url}/`);
    await page.getByLabel('API token', { exact: true }).fill(TOKEN);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.waitForSelector('#connection[data-state="live"]');
    return { page, errors, requested };
  }

  const ticketsUsed = (requested: string[]) =>
    requested.filter((u) => new URL(u).pathname === '/events').map((u) => new URL(u).searchParams.get('ticket'));

  beforeAll(async () => {
    browser = await launchBrowser();
    [t, r] = await Promise.all([createTestDatabase({ migrate: true }), createTestRedis()]);
    // Recent stored alerts, so every panel draws (the stats bars, the history table, the rate chart).
    await insertFixtureAlerts(t.db, { count: 30, start: new Date(Date.now() - 10 * 60_000), end: new Date() });
    await startApi();
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await r?.cleanup();
    await t?.drop();
  });

  it('goes live with a ticket, shows new alerts, never puts the token in a URL, and breaks no security policy', async () => {
    const { page, errors, requested } = await openWithToken();
    const alert = makeAlert({ pair: 'BTC-USD', direction: 'up', observedAt: new Date().toISOString() });
    await r.redis.publish(r.keys.storedAlertsChannel, serializeAlert(alert));
    await page.waitForSelector(`#feed li[data-alert-id="${alert.id}"]`);
    await page.waitForSelector('#stats-table tbody tr .bar', { state: 'attached' });
    await page.waitForSelector('#history-table tbody tr');

    const tickets = ticketsUsed(requested);
    expect(tickets).toHaveLength(1);
    expect(tickets[0]).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(requested.filter((u) => u.includes(TOKEN))).toEqual([]);
    // A Content-Security-Policy refusal is reported on the console as an error; the only one expected is the first
    // request's 401, which makes the page ask for the token.
    expect(errors.filter((e) => !/status of 401 \(Unauthorized\)/.test(e))).toEqual([]);
    await page.close();
  });

  it('reopens the stream after a master restart with a fresh ticket (a ticket opens one connection)', async () => {
    const { page, errors, requested } = await openWithToken();
    const port = Number(new URL(url).port);
    await app.close();
    await page.waitForSelector('#connection[data-state="reconnecting"]');
    await startApi(port);
    await page.waitForSelector('#connection[data-state="live"]', { timeout: 20_000 });

    const alert = makeAlert({ pair: 'ETH-USD', direction: 'down', observedAt: new Date().toISOString() });
    await r.redis.publish(r.keys.storedAlertsChannel, serializeAlert(alert));
    await page.waitForSelector(`#feed li[data-alert-id="${alert.id}"]`);

    const tickets = ticketsUsed(requested);
    expect(tickets.length).toBeGreaterThanOrEqual(2);
    expect(new Set(tickets).size).toBe(tickets.length);
    expect(requested.filter((u) => u.includes(TOKEN))).toEqual([]);
    // The restart itself shows up as failed requests on the console; nothing else may.
    expect(errors.filter((e) => !/Failed to load resource|status of 401 \(Unauthorized\)/.test(e))).toEqual([]);
    await page.close();
  });
});
