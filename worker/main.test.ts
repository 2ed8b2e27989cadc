import { startService } from '../test/helpers/process';

/**
 * `npm run worker` with a bad configuration: exit code 2 and one line naming each bad variable (no Redis, no ticker
 * needed). Every variable is checked in one process (the loader reports every problem at once); the per-variable
 * messages are unit-tested in shared/platform/config.test.ts.
 */
describe('worker/main.ts with an invalid configuration', () => {
  const invalid: Record<string, string> = {
    PAIR: 'BTCUSD',
    FETCH_INTERVAL_MS: 'fast',
    OSCILLATION_PERCENT: '-0.5',
    PRICE_FIELD: 'last',
    REFERENCE_MODE: 'sometimes',
    TICKER_BASE_URL: 'ftp://example.com',
    TICKER_TIMEOUT_MS: '0',
    REDIS_URL: 'localhost:6379',
    BOT_ID: 'has space',
    WORKER_ID: 'has space',
    COMPOSE_SERVICE: '-leading-dash',
    ALERT_STREAM_MAXLEN: '10',
    ALERT_QUEUE_MAX: '0',
    TICKER_RATE_LIMIT_PER_MIN: '-1',
    REDIS_KEY_PREFIX: 'has space',
    LOG_LEVEL: 'loud',
  };
  let everything: { code: number | string; output: string };
  let badFlag: { code: number | string; output: string };
  let goodFlag: { code: number | string; output: string };

  beforeAll(async () => {
    const run = async (env: Record<string, string>, args: string[] = []) => {
      const proc = startService('worker/main.ts', env, args);
      return { code: await proc.exited, output: proc.output() };
    };
    [everything, badFlag, goodFlag] = await Promise.all([
      run(invalid),
      // Both with a bad PAIR, so neither can start a worker whichever value wins. The env holds a valid interval and
      // the flag a bad one: the flag is the one checked; the other way round, only the PAIR is reported.
      run({ PAIR: 'BTCUSD', FETCH_INTERVAL_MS: '5000' }, ['--interval-ms', 'soon']),
      run({ PAIR: 'BTCUSD', FETCH_INTERVAL_MS: 'soon' }, ['--interval-ms', '1500']),
    ]);
  }, 60_000);

  it.each(Object.entries(invalid))('exits 2 with one line naming %s=%s and what is allowed', (name, value) => {
    expect(everything.code).toBe(2);
    const lines = everything.output.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^Invalid configuration: /);
    expect(lines[0]).toContain(`${name}=${JSON.stringify(value)} is invalid: expected `);
  });

  it('checks flags like variables, and a flag wins over the same variable in env', () => {
    expect(badFlag.code).toBe(2);
    expect(badFlag.output.trim()).toMatch(/FETCH_INTERVAL_MS="soon" is invalid/);
    expect(badFlag.output).not.toContain('5000');
    expect(goodFlag.code).toBe(2);
    expect(goodFlag.output.trim()).toMatch(/^Invalid configuration: PAIR="BTCUSD" is invalid/);
    expect(goodFlag.output).not.toContain('FETCH_INTERVAL_MS');
  });
});
