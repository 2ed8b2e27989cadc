import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Redis from 'ioredis';
import { createTickerSimulator } from '../sim/simulator';

/**
 * Measures one real worker process against the simulator: its resident memory over time and how far its requests
 * drift from the fixed-rate schedule. Not a test (no targets asserted); prints a JSON report.
 *
 *   node --import tsx bench/worker-measure.ts [--duration-ms 300000] [--interval-ms 1000] [--redis-url redis://127.0.0.1:6379]
 *
 * Drift of tick i = (arrival_i - arrival_0) - i * interval, from the simulator's request log: it includes timer
 * lateness and request latency, but must not grow with i (the schedule is planned from the first tick, not chained).
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'duration-ms': { type: 'string', default: '300000' },
      'interval-ms': { type: 'string', default: '1000' },
      'redis-url': { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
    },
  });
  const durationMs = Number(values['duration-ms']);
  const intervalMs = Number(values['interval-ms']);
  const redisUrl = values['redis-url']!;
  const prefix = `measure${process.pid}:`;
  const pair = 'BTC-USD';

  const sim = await createTickerSimulator({ pairs: { [pair]: '67000' }, rateLimit: 0, volatilityPercent: '0.02', stepMs: intervalMs, seed: 7 });
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'main.ts')], {
    env: {
      PATH: process.env.PATH ?? '',
      PAIR: pair,
      TICKER_BASE_URL: sim.url,
      FETCH_INTERVAL_MS: String(intervalMs),
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix,
      TICKER_RATE_LIMIT_PER_MIN: '250',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const rssSamples: { atS: number; rssMiB: number }[] = [];
  const rssOf = (pid: number) => {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Math.round((Number(match[1]) / 1024) * 10) / 10 : NaN;
  };
  const started = Date.now();
  const sampler = setInterval(() => {
    if (child.pid !== undefined && child.exitCode === null) rssSamples.push({ atS: Math.round((Date.now() - started) / 1000), rssMiB: rssOf(child.pid) });
  }, 30_000);
  await new Promise((r) => setTimeout(r, durationMs));
  clearInterval(sampler);
  const finalRss = child.pid !== undefined ? rssOf(child.pid) : NaN;
  child.kill('SIGTERM');
  const exitCode = await new Promise((r) => child.once('exit', (code) => r(code)));

  const arrivals = sim.requestLog.filter((e) => e.path.endsWith(pair)).map((e) => e.at);
  const drifts = arrivals.slice(0, 101).map((at, i) => at - arrivals[0]! - i * intervalMs);
  const abs = drifts.map(Math.abs);
  const redis = new Redis(redisUrl);
  const alerts = await redis.xlen(`${prefix}stream:alerts:${pair}`);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
  await sim.close();

  process.stdout.write(
    `${JSON.stringify(
      {
        durationS: durationMs / 1000,
        intervalMs,
        requests: arrivals.length,
        alertsPublished: alerts,
        workerExitCode: exitCode,
        rssMiB: { final: finalRss, samples: rssSamples },
        driftOver100TicksMs: {
          ticks: drifts.length - 1,
          atTick100: drifts[100] ?? null,
          max: Math.max(...abs),
          mean: Math.round((abs.reduce((a, b) => a + b, 0) / abs.length) * 10) / 10,
        },
      },
      null,
      2,
    )}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`measure failed: ${String(err)}\n`);
  process.exit(1);
});
