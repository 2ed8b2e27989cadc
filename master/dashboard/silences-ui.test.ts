import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createLogger } from '../../shared/platform/logger';
import { loadMasterConfig } from '../../shared/config/master-config';
import { makeAlert, publishAlert } from '../../test/helpers/alerts';
import { collectPageErrors, launchBrowser } from '../../test/helpers/browser';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { waitFor } from '../../test/helpers/wait';
import { masterTestEnv } from '../../test/helpers/master-env';
import { createMaster, type Master } from '../app';

/**
 * The dashboard's silences in Chromium against the real master: an operator mutes a bot for 8 h from its fleet row, sees
 * the silence listed and the row marked, and expires it; an analyst sees the list and no button.
 */

const OPERATOR_TOKEN = 'silences-ui-operator-token-0123456';
const ANALYST_TOKEN = 'silences-ui-analyst-token-0123456a';

describe('silences in the dashboard, in a browser', () => {
  let t: TestDatabase;
  let r: TestRedis;
  let master: Master;
  let browser: Browser;
  let context: BrowserContext;

  async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(`${master.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
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

  /** The first 401 (before the token is typed) is the one console error the browser reports on its own. */
  const unexpected = (errors: string[]) => errors.filter((e) => !/Failed to load resource: the server responded with a status of 401/.test(e));

  beforeAll(async () => {
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    [t, r] = await Promise.all([createTestDatabase(), createTestRedis()]);
    master = await createMaster({
      config: loadMasterConfig({ ...masterTestEnv(t.url, r), LOG_LEVEL: 'silent', API_TOKENS: `ops:operator:${OPERATOR_TOKEN},viewer:analyst:${ANALYST_TOKEN}` }),
      logger: createLogger({ name: 'silences-ui-test', level: 'silent' }),
      tuning: { streamBlockMs: 200, pairsRefreshMs: 200 },
    });
    // A runtime bot no worker holds: its row is drawn from the bots table ("waiting").
    expect((await api('POST', '/bots', { pair: 'SOL-USD', bot_id: 'sol-ui' })).status).toBe(201);
  });

  afterAll(async () => {
    await browser?.close();
    await master?.close();
    await r?.cleanup();
    await t?.drop();
  });

  it('mutes a bot for 8 h from its row, lists the silence, marks the row, and expires it', async () => {
    const { page, errors } = await openWithToken(OPERATOR_TOKEN);
    const row = page.locator('#fleet-table tr[data-bot-id="sol-ui"]');
    await row.getByRole('button', { name: 'Mute sol-ui for 8 h' }).click();

    const listed = page.locator('#silences-table tbody tr', { hasText: 'bot_id=sol-ui' });
    await listed.waitFor();
    expect(await listed.getAttribute('data-state')).toBe('active');
    await listed.getByText('muted for 8 h from the dashboard').waitFor();
    await row.getByText(/muted until/).waitFor();
    // The truth, from the API: one active silence on the bot, 8 h long, by the token's name.
    const active = (await api('GET', '/silences?state=active')).body.silences;
    expect(active).toHaveLength(1);
    const [silence] = active;
    expect(silence).toMatchObject({ matchers: { bot_id: 'sol-ui' }, created_by: 'ops', state: 'active' });
    expect(Date.parse(silence.ends_at) - Date.parse(silence.starts_at)).toBe(8 * 3_600_000);
    expect(await listed.getAttribute('data-silence-id')).toBe(silence.id);

    await listed.getByRole('button', { name: 'Expire the silence of bot_id=sol-ui' }).click();
    await page.locator('#silences-table tbody tr').first().waitFor({ state: 'detached' });
    await page.waitForSelector('#silences-empty:not([hidden])');
    expect((await api('GET', `/silences/${silence.id}`)).body).toMatchObject({ state: 'expired', expired_by: 'ops' });
    await waitFor('the row no longer marked', async () => (await row.getByText(/muted until/).count()) === 0);
    expect(unexpected(errors)).toEqual([]);
    await page.close();
  });

  it('shows an analyst the silences, a silenced alert in the history, and no mute or expire button', async () => {
    const created = await api('POST', '/silences', { matchers: { pair: 'SOL-USD' }, duration: '1h', comment: 'listed for analysts' });
    expect(created.status).toBe(201);
    const alert = makeAlert({ pair: 'SOL-USD', botId: 'sol-ui', observedAt: new Date(Date.now() + 1000).toISOString() });
    await publishAlert(r.redis, r.keys, alert);
    await waitFor('the alert stored as silenced', async () => (await api('GET', `/alerts/${alert.id}`)).body.silenced_by === created.body.id, { timeoutMs: 20_000 });
    const { page, errors } = await openWithToken(ANALYST_TOKEN);
    const historyRow = page.locator(`#history-table tr[data-alert-id="${alert.id}"]`);
    await historyRow.waitFor();
    expect(await historyRow.getAttribute('data-silenced-by')).toBe(created.body.id);
    expect(await historyRow.textContent()).toContain('silenced: not notified');
    const listed = page.locator('#silences-table tbody tr', { hasText: 'pair=SOL-USD' });
    await listed.waitFor();
    await page.locator('#fleet-table tr[data-bot-id="sol-ui"]').waitFor();
    expect(await page.getByRole('button', { name: /^Mute / }).count()).toBe(0);
    expect(await listed.getByRole('button').count()).toBe(0);
    expect(unexpected(errors)).toEqual([]);
    await page.close();
  });
});
