import type { FastifyInstance } from 'fastify';
import { parseDesiredBot } from '../../../shared/contract/bots';
import { loadMasterConfig } from '../../../shared/config/master-config';
import { createLogger } from '../../../shared/platform/logger';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/db';
import { createTestRedis, type TestRedis } from '../../../test/helpers/redis';
import { createMetrics } from '../../metrics';
import { createApiServer } from '../server';

/** The rule settings of a bot through POST/PATCH/GET /bots: defaults, round trip to the mirror, refusals naming the field. */

const OPERATOR = 'rules-operator-token-a1b2c3d4';
const config = loadMasterConfig({ API_TOKEN: OPERATOR });
const op = { authorization: `Bearer ${OPERATOR}` };

let tdb: TestDatabase;
let tr: TestRedis;
let app: FastifyInstance;

beforeAll(async () => {
  [tdb, tr] = await Promise.all([createTestDatabase(), createTestRedis()]);
  app = await createApiServer({
    db: tdb.db,
    redis: tr.redis,
    keys: tr.keys,
    metrics: createMetrics({ defaultMetrics: false }),
    logger: createLogger({ name: 'bot-rules-test', level: 'silent' }),
    apiToken: config.api.token,
    apiTokens: config.api.tokens,
    authMaxFailures: 10_000,
  });
});

afterAll(async () => {
  await app?.close();
  await tr?.cleanup();
  await tdb?.drop();
});

const post = (payload: unknown) => app.inject({ method: 'POST', url: '/bots', headers: op, payload: payload as object });
const patch = (botId: string, payload: unknown) => app.inject({ method: 'PATCH', url: `/bots/${botId}`, headers: op, payload: payload as object });
const mirrored = async (botId: string) => {
  const text = await tr.redis.hget(tr.keys.desiredBots, botId);
  const parsed = text === null ? null : parseDesiredBot(text);
  return parsed?.ok ? parsed.bot : null;
};

describe('the rule settings of a bot', () => {
  it('default to today behaviour and are shown by GET', async () => {
    expect((await post({ pair: 'DEF-USD' })).statusCode).toBe(201);
    const res = await app.inject({ method: 'GET', url: '/bots/DEF-USD', headers: op });
    expect(res.json()).toMatchObject({ rule: 'reference', window_ms: null, pending_polls: 1, cooldown_ms: 0, max_alerts: null, expires_at: null });
  });

  it('are stored, answered, listed and mirrored for the workers exactly as given', async () => {
    const body = { pair: 'WIN-USD', rule: 'window', window_ms: 60_000, pending_polls: 3, cooldown_ms: 300_000, max_alerts: 1, expires_at: '2027-01-01T00:00:00+01:00' };
    const res = await post(body);
    expect(res.statusCode).toBe(201);
    const expected = { rule: 'window', window_ms: 60_000, pending_polls: 3, cooldown_ms: 300_000, max_alerts: 1, expires_at: '2026-12-31T23:00:00.000Z' };
    expect(res.json()).toMatchObject(expected);
    const list = await app.inject({ method: 'GET', url: '/bots', headers: op });
    expect(list.json().bots.find((b: { bot_id: string }) => b.bot_id === 'WIN-USD')).toMatchObject(expected);
    expect(await mirrored('WIN-USD')).toMatchObject({ rule: 'window', windowMs: 60_000, pendingPolls: 3, cooldownMs: 300_000, maxAlerts: 1, expiresAt: '2026-12-31T23:00:00.000Z' });
  });

  it('change with PATCH, and null sets a limit back to none', async () => {
    const res = await patch('WIN-USD', { max_alerts: null, expires_at: null, cooldown_ms: 0 });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ max_alerts: null, expires_at: null, cooldown_ms: 0, rule: 'window', version: 2 });
    expect(await mirrored('WIN-USD')).toMatchObject({ maxAlerts: null, expiresAt: null, cooldownMs: 0, version: 2 });
  });

  it.each([
    [{ pair: 'BAD-USD', rule: 'sometimes' }, 'rule', 'one of reference, window'],
    [{ pair: 'BAD-USD', rule: 'window' }, 'window_ms', 'required with rule window'],
    [{ pair: 'BAD-USD', rule: 'window', window_ms: 0 }, 'window_ms', 'an integer from 1 to 86400000'],
    [{ pair: 'BAD-USD', rule: 'window', window_ms: 86_400_001 }, 'window_ms', 'an integer from 1 to 86400000'],
    [{ pair: 'BAD-USD', pending_polls: 0 }, 'pending_polls', 'an integer from 1 to 1000'],
    [{ pair: 'BAD-USD', pending_polls: 1.5 }, 'pending_polls', 'an integer from 1 to 1000'],
    [{ pair: 'BAD-USD', cooldown_ms: -1 }, 'cooldown_ms', 'an integer from 0 to 2592000000'],
    [{ pair: 'BAD-USD', cooldown_ms: '60000' }, 'cooldown_ms', 'an integer from 0 to 2592000000'],
    [{ pair: 'BAD-USD', max_alerts: 0 }, 'max_alerts', 'an integer from 1 to 1000000000, or null (unlimited)'],
    [{ pair: 'BAD-USD', expires_at: 'tomorrow' }, 'expires_at', 'an ISO-8601 time with a zone'],
    [{ pair: 'BAD-USD', expires_at: '2027-01-01T00:00:00' }, 'expires_at', 'an ISO-8601 time with a zone'],
    [{ pair: 'BAD-USD', pending_polls: null }, 'pending_polls', 'an integer from 1 to 1000'],
  ])('POST %j is a 400 naming %s', async (body, parameter, allowed) => {
    const res = await post(body);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'bad_request', parameter });
    expect(JSON.stringify(res.json().allowed)).toContain(allowed);
  });

  it('refuses a PATCH to the window rule for a bot without a window (400 window_ms), and changes nothing', async () => {
    const res = await patch('DEF-USD', { rule: 'window' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ parameter: 'window_ms' });
    expect((await app.inject({ method: 'GET', url: '/bots/DEF-USD', headers: op })).json()).toMatchObject({ rule: 'reference', version: 1 });
    // With the window in the same PATCH it is fine; taking the window away from a window bot is not.
    expect((await patch('DEF-USD', { rule: 'window', window_ms: 5000 })).statusCode).toBe(200);
    expect((await patch('DEF-USD', { window_ms: null })).json()).toMatchObject({ parameter: 'window_ms' });
  });

  it('starts a new bot with no count of published alerts, even when an older bot had its id', async () => {
    await tr.redis.hset(tr.keys.ruleState('ONCE-USD', 'ONCE-USD'), 'published', '1');
    expect((await post({ pair: 'ONCE-USD', max_alerts: 1 })).statusCode).toBe(201);
    expect(await tr.redis.exists(tr.keys.ruleState('ONCE-USD', 'ONCE-USD'))).toBe(0);
  });
});
