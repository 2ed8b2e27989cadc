import { readBotHolder, serializeDesiredBot, type DesiredBot } from '../shared/contract/bots';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { claimLease, leaseTtlMs, releaseLease, renewLease } from './bot-lease';

/** Leases against the real Redis: the scripts are the whole mechanism, so they are tested there. */
describe('bot leases', () => {
  let t: TestRedis;
  beforeAll(async () => {
    t = await createTestRedis();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  const desire = async (botId: string, enabled = true) => {
    const bot: DesiredBot = { botId, pair: 'BTC-USD', intervalMs: 1000, thresholdPercent: '0.01', priceField: 'ask', referenceMode: 'last-alert', enabled, version: 1 };
    await t.redis.hset(t.keys.desiredBots, botId, serializeDesiredBot(bot));
  };

  describe('when twenty workers claim one bot at the same moment', () => {
    it('exactly one gets it, and readBotHolder names that one', async () => {
      await desire('race');
      const grants = await Promise.all(Array.from({ length: 20 }, (_, i) => claimLease(t.redis, t.keys, 'race', `w${i}`, 10_000)));
      const winners = grants.filter((g) => g !== null);
      expect(winners).toHaveLength(1);
      const holder = await readBotHolder(t.redis, t.keys, 'race', 'BTC-USD');
      expect(holder).toEqual({ workerId: winners[0]!.token.split(':')[0], generation: winners[0]!.generation, ttlMs: expect.any(Number) });
      expect(holder!.ttlMs).toBeGreaterThan(9_000);
      expect(holder!.ttlMs).toBeLessThanOrEqual(10_000);
    });
  });

  describe('renewal and release', () => {
    it('renews only for the holder; another token neither renews nor releases it', async () => {
      await desire('own');
      const grant = (await claimLease(t.redis, t.keys, 'own', 'holder', 5_000))!;
      const impostor = { botId: 'own', pair: 'BTC-USD', token: `other:${grant.generation}`, generation: grant.generation };
      expect(await renewLease(t.redis, t.keys, impostor, 60_000)).toBe(false);
      expect(await t.redis.pttl(t.keys.botLease('own', 'BTC-USD'))).toBeLessThanOrEqual(5_000);
      expect(await releaseLease(t.redis, t.keys, impostor)).toBe(false);
      expect(await readBotHolder(t.redis, t.keys, 'own', 'BTC-USD')).toMatchObject({ workerId: 'holder' });

      expect(await renewLease(t.redis, t.keys, grant, 60_000)).toBe(true);
      expect(await t.redis.pttl(t.keys.botLease('own', 'BTC-USD'))).toBeGreaterThan(50_000);
      expect(await releaseLease(t.redis, t.keys, grant)).toBe(true);
      expect(await readBotHolder(t.redis, t.keys, 'own', 'BTC-USD')).toBeNull();
      // Released: renewing it again must not bring it back.
      expect(await renewLease(t.redis, t.keys, grant, 60_000)).toBe(false);
      expect(await t.redis.exists(t.keys.botLease('own', 'BTC-USD'))).toBe(0);
    });

    it('an expired lease cannot be renewed, and the next claim has a higher generation', async () => {
      await desire('gen');
      const first = (await claimLease(t.redis, t.keys, 'gen', 'a', 100))!;
      await new Promise((r) => setTimeout(r, 250));
      expect(await renewLease(t.redis, t.keys, first, 10_000)).toBe(false);
      const second = (await claimLease(t.redis, t.keys, 'gen', 'b', 10_000))!;
      expect(second.generation).toBeGreaterThan(first.generation);
      expect(second.token).toBe(`b:${second.generation}`);
      expect(await releaseLease(t.redis, t.keys, first)).toBe(false);
      expect(await readBotHolder(t.redis, t.keys, 'gen', 'BTC-USD')).toMatchObject({ workerId: 'b', generation: second.generation });
      expect(await releaseLease(t.redis, t.keys, second)).toBe(true);
      const third = (await claimLease(t.redis, t.keys, 'gen', 'a', 10_000))!;
      expect(third.generation).toBe(second.generation + 1);
    });
  });

  describe('what can be claimed', () => {
    it('never a paused bot, a bot absent from the mirror, or an unreadable entry', async () => {
      await desire('paused', false);
      await t.redis.hset(t.keys.desiredBots, 'garbled', '{not json');
      expect(await claimLease(t.redis, t.keys, 'paused', 'w', 10_000)).toBeNull();
      expect(await claimLease(t.redis, t.keys, 'absent', 'w', 10_000)).toBeNull();
      expect(await claimLease(t.redis, t.keys, 'garbled', 'w', 10_000)).toBeNull();
      expect(await t.redis.exists(t.keys.botLease('paused', 'BTC-USD'), t.keys.botLease('absent', 'BTC-USD'), t.keys.botLease('garbled', 'BTC-USD'))).toBe(0);
    });

    it('a worker id containing ":" is read back whole', async () => {
      await desire('colon');
      await claimLease(t.redis, t.keys, 'colon', 'host:1234', 10_000);
      expect(await readBotHolder(t.redis, t.keys, 'colon', 'BTC-USD')).toMatchObject({ workerId: 'host:1234', generation: 1 });
    });
  });

  it('the TTL is two intervals, at least 10 s', () => {
    expect(leaseTtlMs(100)).toBe(10_000);
    expect(leaseTtlMs(5_000)).toBe(10_000);
    expect(leaseTtlMs(30_000)).toBe(60_000);
  });
});
