import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { BOT_STATUS_MAX_BYTES, readBotStatus, readFleet, writeBotStatus, type BotStatus } from './fleet-status';

const status = (botId: string, pair: string): BotStatus => {
  const now = new Date().toISOString();
  return {
    botId, pair, status: 'ok', consecutiveErrors: 0, startedAt: now, heartbeatAt: now, ttlMs: 60_000, rateLimited: false, effectiveIntervalMs: 5000,
    alertsPublished: 0, alertsDropped: 0, alertsQueued: 0,
    config: { botId, pair, intervalMs: 5000, thresholdPercent: '0.01', priceField: 'ask', referenceMode: 'first', tickerBaseUrl: 'http://127.0.0.1:9999' },
  };
};

describe('fleet status read back from Redis', () => {
  let r: TestRedis;
  beforeAll(async () => {
    r = await createTestRedis();
  });
  afterAll(() => r?.cleanup());

  it('treats a heartbeat over the size limit as unreadable, unparsed, and still lists the others', async () => {
    await writeBotStatus(r.redis, r.keys, status('good-1', 'BTC-USD'));
    // A well-formed heartbeat, only too large; its live hash gone, so only the last-seen JSON copy is left to read.
    await writeBotStatus(r.redis, r.keys, { ...status('huge-1', 'ETH-USD'), lastError: 'x'.repeat(BOT_STATUS_MAX_BYTES) });
    await r.redis.del(r.keys.botStatus('huge-1'));
    const bloated = status('bloated-1', 'XRP-USD');
    await writeBotStatus(r.redis, r.keys, bloated);
    // A config field past the limit (valid JSON, only the size is wrong) makes the live hash unreadable too.
    await r.redis.hset(r.keys.botStatus('bloated-1'), 'config', JSON.stringify(bloated.config) + ' '.repeat(BOT_STATUS_MAX_BYTES));
    await r.redis.hset(r.keys.botsLastSeen, 'bloated-1', 'x'.repeat(BOT_STATUS_MAX_BYTES + 1));

    expect(await readBotStatus(r.redis, r.keys, 'huge-1')).toBeNull();
    expect(await readBotStatus(r.redis, r.keys, 'bloated-1')).toBeNull();
    expect((await readFleet(r.redis, r.keys)).map((b) => b.botId)).toEqual(['good-1']);
  });
});
