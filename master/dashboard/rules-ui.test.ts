import type { Browser } from 'playwright-core';
import { writeBotStatus, type BotStatus } from '../../shared/contract/fleet-status';
import { loadMasterConfig } from '../../shared/config/master-config';
import { createLogger } from '../../shared/platform/logger';
import { collectPageErrors, launchBrowser } from '../../test/helpers/browser';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { masterTestEnv } from '../../test/helpers/master-env';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { createMaster, type Master } from '../app';

/** The fleet table in a browser shows why a bot's rule is done, and the alerts its cooldown suppressed. */

describe('the dashboard fleet and the alert rules', () => {
  let t: TestDatabase;
  let r: TestRedis;
  let master: Master;
  let browser: Browser;

  beforeAll(async () => {
    browser = await launchBrowser();
    [t, r] = await Promise.all([createTestDatabase(), createTestRedis()]);
    master = await createMaster({ config: loadMasterConfig({ ...masterTestEnv(t.url, r), LOG_LEVEL: 'silent' }), logger: createLogger({ name: 'rules-ui-test', level: 'silent' }) });
  });
  afterAll(async () => {
    await browser?.close();
    await master?.close();
    await r?.cleanup();
    await t?.drop();
  });

  const heartbeat = (botId: string, over: Partial<BotStatus>): BotStatus => ({
    botId,
    pair: 'BTC-USD',
    status: 'ok',
    consecutiveErrors: 0,
    startedAt: new Date(Date.now() - 60_000).toISOString(),
    heartbeatAt: new Date().toISOString(),
    ttlMs: 600_000,
    rateLimited: false,
    effectiveIntervalMs: 1000,
    alertsPublished: 1,
    alertsDropped: 0,
    alertsQueued: 0,
    config: { botId, pair: 'BTC-USD', intervalMs: 1000, thresholdPercent: '1', priceField: 'ask', referenceMode: 'last-alert', tickerBaseUrl: 'http://127.0.0.1:1/v0/ticker', maxAlerts: 1 },
    ...over,
  });

  it('shows exhausted with its reason, and the suppressed count of a cooling bot', async () => {
    await writeBotStatus(r.redis, r.keys, heartbeat('once-bot', { status: 'exhausted', statusReason: 'published 1 of max_alerts 1' }));
    await writeBotStatus(r.redis, r.keys, heartbeat('cool-bot', { alertsSuppressed: 4 }));
    const page = await browser.newPage();
    const errors = collectPageErrors(page);
    try {
      await page.goto(`${master.url}/`);
      const once = page.locator('#fleet-table tr[data-bot-id="once-bot"][data-status="exhausted"]');
      await once.waitFor();
      expect(await once.locator('.badge').textContent()).toBe('exhausted');
      expect(await once.locator('.detail').textContent()).toBe('published 1 of max_alerts 1');
      const cool = page.locator('#fleet-table tr[data-bot-id="cool-bot"][data-status="ok"]');
      await cool.waitFor();
      expect(await cool.locator('.detail').textContent()).toBe('4 alert(s) suppressed by the cooldown');
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
