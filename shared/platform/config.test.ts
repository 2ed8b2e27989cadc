import { loadMasterConfig } from '../config/master-config';
import { loadWorkerConfig } from '../config/worker-config';
import { ConfigError, describeError } from './errors';

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

describe('Redis Cluster settings', () => {
  it('reads REDIS_CLUSTER_NODES for worker and master, none by default, and the WAIT defaults', () => {
    expect(loadWorkerConfig({ PAIR: 'BTC-USD' })).toMatchObject({ redisClusterNodes: [], redisWaitReplicas: 1, redisWaitMs: 500 });
    const nodes = ' redis-1:7000, 10.0.0.2:7001,[::1]:7002 ';
    expect(loadWorkerConfig({ PAIR: 'BTC-USD', REDIS_CLUSTER_NODES: nodes, REDIS_WAIT_REPLICAS: '0' })).toMatchObject({ redisClusterNodes: ['redis-1:7000', '10.0.0.2:7001', '[::1]:7002'], redisWaitReplicas: 0 });
    expect(loadMasterConfig({ DATABASE_URL: 'postgres://u@h/db', REDIS_CLUSTER_NODES: 'redis-1:7000' }).redisClusterNodes).toEqual(['redis-1:7000']);
  });
  it.each([['redis-1'], ['redis-1:0'], ['redis-1:70000'], ['redis://redis-1:7000'], [' , ']])('rejects REDIS_CLUSTER_NODES=%j, naming the variable and the form', (value) => {
    expect(() => loadWorkerConfig({ PAIR: 'BTC-USD', REDIS_CLUSTER_NODES: value })).toThrow(/REDIS_CLUSTER_NODES[\s\S]*host:port/);
  });
  it('rejects a REDIS_WAIT_MS of 0', () => {
    expect(() => loadWorkerConfig({ PAIR: 'BTC-USD', REDIS_WAIT_MS: '0' })).toThrow(/REDIS_WAIT_MS/);
  });
});

describe('configuration errors never show a secret', () => {
  const problemsOf = (env: Record<string, string>, argv: string[] = []) => {
    try {
      loadMasterConfig(env, argv);
    } catch (err) {
      return (err as ConfigError).message;
    }
    throw new Error('expected a ConfigError');
  };

  it('masks the password of a bad URL but still shows the rest', () => {
    const message = problemsOf({ DATABASE_URL: 'mysql://app:db-pw-1@db.internal:5432/x', REDIS_URL: 'http://:redis-pw-2@cache:6379' });
    expect(message).toContain('DATABASE_URL="mysql://app:***@db.internal:5432/x" is invalid');
    expect(message).toContain('REDIS_URL="http://:***@cache:6379" is invalid');
    expect(message).not.toMatch(/db-pw-1|redis-pw-2/);
  });

  it('hides a secret variable whole, showing at most the scheme and host of a URL', () => {
    const message = problemsOf({
      API_TOKEN: 'token with spaces 1234',
      WEBHOOK_SECRET: 'short',
      WEBHOOK_URL: 'ftp://hooks.example.com/T0KEN-path',
      SMTP_URL: 'http://mailer:smtp-pw-3@mail.example.com',
    });
    expect(message).toContain('API_TOKEN=(hidden) is invalid');
    expect(message).toContain('WEBHOOK_SECRET=(hidden) is invalid');
    expect(message).toContain('WEBHOOK_URL=(hidden) is invalid');
    expect(message).toContain('SMTP_URL="http://mail.example.com/(hidden)" is invalid');
    expect(message).not.toMatch(/token with spaces|short|T0KEN|mailer|smtp-pw-3/);
  });

  it('does not echo a stray command-line argument', () => {
    expect(problemsOf({}, ['--api-token', 'aaaaaaaaaaaaaaaaaaaa', 'stray-secret-value'])).toMatch(/^Invalid command line: Unexpected argument \(hidden\)\./);
    expect(problemsOf({}, ['--api-token', 'aaaaaaaaaaaaaaaaaaaa', 'stray-secret-value'])).not.toContain('stray-secret-value');
  });
});

describe('describeError', () => {
  it('masks the password of any URL in an error message', () => {
    expect(describeError(new Error('cannot reach redis://default:r3d1s@cache:6379 (postgres://u:p%40ss@db/x)'))).toBe('cannot reach redis://default:***@cache:6379 (postgres://u:***@db/x)');
  });
});
