import { loadWorkerConfig } from '../config/worker-config';
import { ConfigError } from './errors';

describe('worker configuration', () => {
  it('applies the documented defaults', () => {
    const c = loadWorkerConfig({ PAIR: 'btc-usd' });
    expect(c).toMatchObject({ pair: 'BTC-USD', botId: 'BTC-USD', intervalMs: 5000, thresholdPercent: '0.01', priceField: 'ask', referenceMode: 'last-alert', tickerBaseUrl: 'https://api.uphold.com/v0/ticker', tickerTimeoutMs: 3000, redisUrl: 'redis://127.0.0.1:6379' });
    expect(Object.isFrozen(c)).toBe(true);
  });
  it('takes flags over env', () => {
    const c = loadWorkerConfig({ PAIR: 'BTC-USD', FETCH_INTERVAL_MS: '1000' }, ['--pair', 'ETH-USD', '--interval-ms', '2500', '--threshold', '0.5']);
    expect(c).toMatchObject({ pair: 'ETH-USD', intervalMs: 2500, thresholdPercent: '0.5' });
  });
  it.each([
    ['PAIR', { PAIR: 'BTCUSD' }],
    ['FETCH_INTERVAL_MS', { PAIR: 'BTC-USD', FETCH_INTERVAL_MS: 'fast' }],
    ['OSCILLATION_PERCENT', { PAIR: 'BTC-USD', OSCILLATION_PERCENT: '-1' }],
    ['OSCILLATION_PERCENT', { PAIR: 'BTC-USD', OSCILLATION_PERCENT: '0' }],
    ['PRICE_FIELD', { PAIR: 'BTC-USD', PRICE_FIELD: 'last' }],
    ['REFERENCE_MODE', { PAIR: 'BTC-USD', REFERENCE_MODE: 'sometimes' }],
    ['TICKER_BASE_URL', { PAIR: 'BTC-USD', TICKER_BASE_URL: 'ftp://x' }],
    ['TICKER_TIMEOUT_MS', { PAIR: 'BTC-USD', TICKER_TIMEOUT_MS: '0' }],
    ['REDIS_URL', { PAIR: 'BTC-USD', REDIS_URL: 'localhost' }],
    ['BOT_ID', { PAIR: 'BTC-USD', BOT_ID: 'has space' }],
    ['LOG_LEVEL', { PAIR: 'BTC-USD', LOG_LEVEL: 'loud' }],
  ])('rejects a bad %s, naming it', (name, env) => {
    expect(() => loadWorkerConfig(env)).toThrow(ConfigError);
    expect(() => loadWorkerConfig(env)).toThrow(new RegExp(name));
  });
  it('says PAIR is required', () => {
    expect(() => loadWorkerConfig({})).toThrow(/PAIR is required/);
  });
  it('rejects unknown flags', () => {
    expect(() => loadWorkerConfig({ PAIR: 'BTC-USD' }, ['--colour', 'red'])).toThrow(/--colour|Unknown option/);
  });
});
