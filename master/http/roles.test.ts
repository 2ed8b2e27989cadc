import type { FastifyInstance } from 'fastify';
import { loadMasterConfig } from '../../shared/config/master-config';
import { createLogger } from '../../shared/platform/logger';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { createMetrics } from '../metrics';
import { createApiServer } from './server';

/** API_TOKENS parsing, and the anonymous policy: with no token configured only a loopback peer may change anything. */

describe('API_TOKENS', () => {
  const TOKEN = 'a-long-enough-token-123';
  it('gives each token its name and scope, API_TOKEN being the operator token named operator', () => {
    const api = loadMasterConfig({ API_TOKENS: `ann:analyst:${TOKEN},ops:operator:x${TOKEN}`, API_TOKEN: `y${TOKEN}` }).api;
    expect(api.tokens.map((t) => [t.name, t.scope, t.token])).toEqual([
      ['ann', 'analyst', TOKEN],
      ['ops', 'operator', `x${TOKEN}`],
      ['operator', 'operator', `y${TOKEN}`],
    ]);
    // A logged config never carries a token.
    expect(JSON.stringify(api.tokens)).not.toContain(TOKEN);
  });

  it.each([
    [`ann:admin:${TOKEN}`, /scope analyst or operator in entry 1 \(name ann\)/],
    ['ann:analyst:short', /at least 16 characters.*entry 1 \(name ann\)/],
    [`ann:analyst:${TOKEN},ann:operator:z${TOKEN}`, /entry 2 repeats the name ann/],
    [`ann:analyst:${TOKEN},bob:operator:${TOKEN}`, /entry 2 \(name bob\) repeats another entry's token/],
    [`${TOKEN}`, /entry 1 \(it has no two ":" separators\)/],
    [`bad name:analyst:${TOKEN}`, /a name of 1-64/],
  ])('refuses %s naming the entry, never printing the token', (value, message) => {
    let error: Error | undefined;
    try {
      loadMasterConfig({ API_TOKENS: value });
    } catch (err) {
      error = err as Error;
    }
    expect(error?.name).toBe('ConfigError');
    expect(error?.message).toMatch(message);
    expect(error?.message).toContain('API_TOKENS');
    expect(error?.message).not.toContain(TOKEN);
    expect(error?.message).not.toContain('short');
  });

  it('counts as a token for serving beyond loopback', () => {
    expect(loadMasterConfig({ API_HOST: '0.0.0.0', API_TOKENS: `ann:analyst:${TOKEN}` }).api.tokens).toHaveLength(1);
    expect(() => loadMasterConfig({ API_HOST: '0.0.0.0' })).toThrow(/API_TOKENS/);
  });
});

describe('with no token configured (anonymous)', () => {
  let tdb: TestDatabase;
  let tr: TestRedis;
  let app: FastifyInstance;
  beforeAll(async () => {
    [tdb, tr] = await Promise.all([createTestDatabase(), createTestRedis()]);
    app = await createApiServer({ db: tdb.db, redis: tr.redis, keys: tr.keys, metrics: createMetrics({ defaultMetrics: false }), logger: createLogger({ name: 'roles-test', level: 'silent' }) });
  });
  afterAll(async () => {
    await app?.close();
    await tr?.cleanup();
    await tdb?.drop();
  });

  it('a loopback peer acts as anonymous with the operator scope, recorded as anonymous', async () => {
    expect((await app.inject({ url: '/me' })).json()).toEqual({ name: 'anonymous', scope: 'operator' });
    const res = await app.inject({ method: 'POST', url: '/bots', payload: { pair: 'BTC-USD' } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ created_by: 'anonymous' });
    expect((await app.inject({ url: '/audit' })).json().items[0]).toMatchObject({ actor: 'anonymous', action: 'create' });
  });

  it('a peer beyond loopback reads but every write is refused with 403 and changes nothing', async () => {
    const remote = { remoteAddress: '10.1.2.3' };
    expect((await app.inject({ url: '/me', ...remote })).json()).toEqual({ name: 'anonymous', scope: 'analyst' });
    expect((await app.inject({ url: '/bots', ...remote })).statusCode).toBe(200);
    for (const w of [
      { method: 'POST' as const, url: '/bots', payload: { pair: 'ETH-USD' } },
      { method: 'PATCH' as const, url: '/bots/BTC-USD', payload: { enabled: false } },
      { method: 'DELETE' as const, url: '/bots/BTC-USD' },
      { method: 'DELETE' as const, url: '/fleet/BTC-USD' },
    ]) {
      const res = await app.inject({ ...w, ...remote });
      expect(res.statusCode).toBe(403);
      expect(res.json()).toMatchObject({ error: 'forbidden', required_scope: 'operator' });
    }
    const bots = (await app.inject({ url: '/bots' })).json().bots;
    expect(bots).toHaveLength(1);
    expect(bots[0]).toMatchObject({ bot_id: 'BTC-USD', enabled: true, version: 1 });
  });
});
