import { parseAlertMessage, type AlertMessage } from '../shared/contract/alert';
import { readBotStatus } from '../shared/contract/fleet-status';
import { createTickerSimulator, type TickerSimulator } from '../sim/simulator';
import type { ScriptStep } from '../sim/script';
import { startService, type ServiceProcess } from '../test/helpers/process';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { waitFor } from '../test/helpers/wait';
import { printFigures } from './figures';

/**
 * A real worker process polls a ticker that answers everything a hostile or broken ticker can: hanging requests,
 * resets, 500 and 503, 429 with Retry-After, bodies that are not JSON, an array, zero, negative, non-numeric, missing and
 * exponent prices, then (once it has moved the price for real) 404 for good. The price is 100 on every valid answer
 * until one real move to 101, so any other alert is a false one.
 */
const PAIR = 'HOST-USD';
const RETRY_AFTER_S = 2;
const HOSTILE: ScriptStep[] = [
  { fault: 'hang' },
  { fault: 'reset' },
  { fault: 'server-error' },
  { fault: 'server-error', status: 503 },
  { fault: 'rate-limit', retryAfterSeconds: RETRY_AFTER_S },
  { fault: 'malformed' },
  { fault: 'array-body' },
  { fault: 'zero' },
  { fault: 'negative' },
  { fault: 'non-numeric' },
  { fault: 'missing-field' },
  { fault: 'exponent' },
  { fault: 'latency', ms: 100 },
];

describe('when the ticker is hostile', () => {
  let redis: TestRedis;
  let sim: TickerSimulator;
  let worker: ServiceProcess | undefined;

  beforeAll(async () => {
    redis = await createTestRedis();
    // Valid answers before, between (twice) and after the hostile ones, all at 100, then the one real move.
    const steps: ScriptStep[] = ['100', ...HOSTILE.slice(0, 6), '100', ...HOSTILE.slice(6), '100', '100', '101'];
    sim = await createTickerSimulator({ rateLimit: 0, script: { repeat: false, pairs: { [PAIR]: steps } } });
  });
  afterAll(async () => {
    await worker?.stop('SIGKILL');
    await sim?.close();
    await redis?.cleanup();
  });

  const streamAlerts = async (): Promise<AlertMessage[]> =>
    (await redis.redis.xrange(redis.keys.alertStream(PAIR), '-', '+')).map(([, fields]) => {
      const parsed = parseAlertMessage(fields[fields.indexOf('alert') + 1] ?? '');
      if (!parsed.ok) throw new Error(parsed.reason);
      return parsed.alert;
    });

  it('raises no false alert, never crashes, and honours Retry-After', async () => {
    const started = Date.now();
    worker = startService('worker/main.ts', {
      PAIR,
      FETCH_INTERVAL_MS: '200',
      TICKER_TIMEOUT_MS: '500',
      OSCILLATION_PERCENT: '0.5',
      REFERENCE_MODE: 'first',
      TICKER_BASE_URL: sim.url,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: redis.prefix,
      TICKER_RATE_LIMIT_PER_MIN: '0',
      LOG_LEVEL: 'info',
    });
    // The one real move arrives after every hostile answer was served.
    const alerts = await waitFor('the alert for the real move to 101', async () => {
      const found = await streamAlerts();
      return found.some((a) => a.price === '101') ? found : undefined;
    }, { timeoutMs: 90_000, intervalMs: 100 });
    // Then the pair disappears: 404 from now on.
    sim.removePair(PAIR);
    const invalid = await waitFor('the bot to report invalid-pair', async () => {
      const status = await readBotStatus(redis.redis, redis.keys, PAIR);
      return status?.status === 'invalid-pair' ? status : undefined;
    }, { timeoutMs: 20_000, intervalMs: 100 });
    const alive = worker.child.exitCode === null && worker.child.signalCode === null;
    const finalAlerts = await streamAlerts();

    const log = sim.requestLog.filter((e) => e.path.endsWith(`/${PAIR}`));
    const i429 = log.findIndex((e) => e.status === 429);
    const gapAfter429 = i429 >= 0 && log[i429 + 1] ? log[i429 + 1]!.at - log[i429]!.at : Number.NaN;
    const faultsServed = new Set(log.filter((e) => e.fault).map((e) => e.fault));
    const falseAlerts = finalAlerts.filter((a) => !(a.price === '101' && a.referencePrice === '100' && a.direction === 'up')).length;
    const output = worker.output();
    const crashed = /unhandled|uncaught|FATAL|"level":60/i.test(output);

    printFigures(
      'hostile-ticker',
      {
        requests: log.length,
        faults_served: faultsServed.size,
        alerts: finalAlerts.length,
        false_alerts: falseAlerts,
        retry_after_gap_ms: gapAfter429,
        status_404: invalid.status,
        crashes: alive && !crashed ? 0 : 1,
        seconds: (Date.now() - started) / 1000,
      },
      `faults: ${[...faultsServed].join(',')}`,
    );
    expect(faultsServed.size).toBe(new Set(HOSTILE.map((s) => (s as { fault: string }).fault)).size);
    expect(alerts.length).toBeGreaterThanOrEqual(1);
    expect(falseAlerts).toBe(0);
    expect(finalAlerts).toHaveLength(1);
    expect(gapAfter429).toBeGreaterThanOrEqual(RETRY_AFTER_S * 1000);
    expect(alive).toBe(true);
    expect(crashed).toBe(false);
  });
});
