import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createTickerSimulator, type TickerSimulator } from '../sim/simulator';
import type { Section, SectionContext } from './context';
import { REPO_ROOT, spawnEntry, type BenchProcess } from './processes';
import { machineCpu, sampleProcess, type ProcSample } from './proc-stat';
import { figure } from './report';
import { benchRedis, type BenchRedis } from './resources';
import { round, summarize } from './stats';
import { sleep } from '../shared/platform/retry';

const MB = 1024 * 1024;

/** Builds `dist/` with the project's own `npm run build` (tsc); a type error elsewhere still emits, so check the file. */
export async function build(ctx: SectionContext): Promise<{ ok: boolean; output: string }> {
  ctx.log('worker: npm run build (tsc) for the compiled worker');
  try {
    const { stdout } = await promisify(execFile)('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, maxBuffer: 16 * MB });
    return { ok: true, output: stdout.slice(-2000) };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? e.message}`.slice(-2000) };
  }
}

/**
 * V8 sizes the young generation for throughput (16 MB semi-spaces on 64-bit Node 20), which a process that allocates a
 * few KB per second never needs; capping it is the one-flag way to a smaller resident set. Measured beside the default.
 */
export const SMALL_HEAP_FLAGS = ['--max-semi-space-size=2'];

function startWorker(ctx: SectionContext, r: BenchRedis, sim: TickerSimulator, pair: string, intervalMs: number, compiled: boolean, botId = pair, nodeArgs: string[] = []): BenchProcess {
  return spawnEntry(
    'worker/main.ts',
    {
      PAIR: pair,
      BOT_ID: botId,
      FETCH_INTERVAL_MS: String(intervalMs),
      TICKER_BASE_URL: sim.url,
      REDIS_URL: ctx.targets.redisUrl,
      REDIS_KEY_PREFIX: r.prefix,
      // The simulator has no limit here: the bench measures the worker, not the shared budget.
      TICKER_RATE_LIMIT_PER_MIN: '0',
      // Each worker polls its own pair: the section times one worker's own requests (the shared list is the capacity section's).
      TICKER_FETCH: 'pair',
      LOG_LEVEL: 'info',
    },
    { compiled, nodeArgs },
  );
}

/** Request times (epoch ms) the simulator logged for one pair, in order. */
function requestTimes(sim: TickerSimulator, pair: string): number[] {
  return sim.requestLog.filter((e) => e.path.endsWith(`/${pair}`)).map((e) => e.at);
}

/**
 * Drift against the fixed-rate plan t0 + k * interval, from the simulator's arrival times (the worker's own clock is not
 * trusted). Positive drift means late.
 */
function drift(times: readonly number[], intervalMs: number, ticks: number) {
  const used = times.slice(0, ticks + 1);
  if (used.length < ticks + 1) return undefined;
  const t0 = used[0]!;
  const offsets = used.map((t, k) => t - (t0 + k * intervalMs));
  const gaps = used.slice(1).map((t, i) => t - used[i]!);
  return {
    ticks,
    intervalMs,
    finalDriftMs: offsets.at(-1)!,
    maxAbsDriftMs: Math.max(...offsets.map(Math.abs)),
    gapMs: summarize(gaps),
  };
}

interface Tracked {
  readonly label: string;
  readonly proc: BenchProcess;
  readonly pair: string;
  samples: ProcSample[];
}

export const workerSection: Section = async (ctx) => {
  const minutes = ctx.options.workerMinutes;
  const intervalMs = 1000;
  const built = await build(ctx);
  const compiledPath = path.join(REPO_ROOT, 'dist', 'worker', 'main.js');
  const haveCompiled = existsSync(compiledPath);
  const driftTicks = 200;
  // 200 ticks at 1 s need 200 s: a shorter run measures drift on a dedicated worker at 250 ms.
  const driftOnMain = minutes * 60 * 1000 >= (driftTicks + 5) * intervalMs;
  const driftInterval = driftOnMain ? intervalMs : 250;
  const sim = await createTickerSimulator({
    pairs: { 'WTSX-USD': '67000', 'WJS-USD': '3500', 'WSMALL-USD': '0.52', 'WDRIFT-USD': '100', ...Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`F${i}-USD`, '100'])) },
    seed: 7,
    rateLimit: 0,
    requestLogMax: 1_000_000,
  });
  const r = await benchRedis(ctx.targets);
  const procs: BenchProcess[] = [];
  try {
    const tracked: Tracked[] = [];
    const tsxWorker = startWorker(ctx, r, sim, 'WTSX-USD', intervalMs, false);
    procs.push(tsxWorker);
    tracked.push({ label: 'tsx', proc: tsxWorker, pair: 'WTSX-USD', samples: [] });
    if (haveCompiled) {
      const jsWorker = startWorker(ctx, r, sim, 'WJS-USD', intervalMs, true);
      procs.push(jsWorker);
      tracked.push({ label: 'compiled', proc: jsWorker, pair: 'WJS-USD', samples: [] });
      const smallWorker = startWorker(ctx, r, sim, 'WSMALL-USD', intervalMs, true, 'WSMALL-USD', SMALL_HEAP_FLAGS);
      procs.push(smallWorker);
      tracked.push({ label: 'compiled-small-heap', proc: smallWorker, pair: 'WSMALL-USD', samples: [] });
    }
    const driftWorker = driftOnMain ? undefined : startWorker(ctx, r, sim, 'WDRIFT-USD', driftInterval, false);
    if (driftWorker) procs.push(driftWorker);
    ctx.log(`worker: RSS/CPU run of ${minutes} min at ${intervalMs} ms (${tracked.map((t) => `${t.label} pid ${t.proc.pid}`).join(', ')})`);

    // Warm-up: the first ticks pay for module loading and JIT; CPU per tick is measured on the steady state after it.
    const warmupMs = Math.min(15_000, minutes * 60_000 * 0.2);
    const runEnd = Date.now() + minutes * 60_000;
    await sleep(warmupMs);
    const ticksAtWarm = new Map(tracked.map((t) => [t.label, requestTimes(sim, t.pair).length]));
    for (const t of tracked) t.samples.push(await sampleProcess(t.proc.pid));
    while (Date.now() < runEnd) {
      for (const t of tracked) {
        if (t.proc.child.exitCode !== null) throw new Error(`${t.label} worker exited (${t.proc.child.exitCode}):\n${t.proc.output().slice(-2000)}`);
      }
      await sleep(Math.min(10_000, Math.max(0, runEnd - Date.now())));
      for (const t of tracked) t.samples.push(await sampleProcess(t.proc.pid));
    }
    const perWorker = tracked.map((t) => {
      const first = t.samples[0]!;
      const last = t.samples.at(-1)!;
      const ticks = requestTimes(sim, t.pair).length - ticksAtWarm.get(t.label)!;
      return {
        label: t.label,
        rssMb: last.rssBytes / MB,
        maxRssMb: Math.max(...t.samples.map((s) => s.rssBytes)) / MB,
        rssAtWarmMb: first.rssBytes / MB,
        cpuMsPerTick: ticks > 0 ? (last.cpuMs - first.cpuMs) / ticks : Number.NaN,
        ticks,
        totalTicks: requestTimes(sim, t.pair).length,
      };
    });
    if (driftWorker) {
      // The dedicated drift worker runs until it has made its 200 ticks (its start-up may have eaten into the run).
      const deadline = Date.now() + driftTicks * driftInterval * 2 + 30_000;
      while (requestTimes(sim, 'WDRIFT-USD').length < driftTicks + 1 && Date.now() < deadline) await sleep(500);
    }
    const driftResult = drift(requestTimes(sim, driftOnMain ? 'WTSX-USD' : 'WDRIFT-USD'), driftInterval, driftTicks);
    if (!driftResult) ctx.log(`worker: the drift worker made fewer than ${driftTicks + 1} requests`);
    for (const p of procs.splice(0)) await p.stop();

    // Capacity at a 5 s interval: half the machine's CPU over the measured CPU per tick (idle work included in it).
    const cores = os.cpus().length;
    const budgetMsPerSecond = cores * 1000 * 0.5;
    const basis = perWorker.find((w) => w.label === 'compiled') ?? perWorker[0]!;
    const cpuMsPerSecondAt5s = basis.cpuMsPerTick / 5;
    const byCpu = Math.floor(budgetMsPerSecond / cpuMsPerSecondAt5s);
    const byMemory = Math.floor((os.totalmem() * 0.5) / (basis.maxRssMb * MB));
    const estimate = Math.min(byCpu, byMemory);
    const verifyCount = Math.min(estimate, ctx.options.quick ? 10 : 60);
    ctx.log(`worker: capacity estimate ${estimate} (CPU ${byCpu}, memory ${byMemory}); verifying with ${verifyCount} ${basis.label} workers at 5 s`);
    const fleet: BenchProcess[] = [];
    for (let i = 0; i < verifyCount; i++) {
      fleet.push(startWorker(ctx, r, sim, `F${i % 200}-USD`, 5000, basis.label === 'compiled', `fleet-${i}`));
      procs.push(fleet.at(-1)!);
      // Starting node processes is the expensive part: a few at a time, so start-up is not what is measured.
      if (i % 5 === 4) await sleep(1000);
    }
    await sleep(10_000);
    const window = ctx.options.quick ? 20_000 : 60_000;
    const before = await Promise.all(fleet.map((p) => sampleProcess(p.pid)));
    const machineBefore = await machineCpu();
    await sleep(window);
    const after = await Promise.all(fleet.map((p) => sampleProcess(p.pid)));
    const machineAfter = await machineCpu();
    const fleetCpuMs = after.reduce((a, s, i) => a + s.cpuMs - before[i]!.cpuMs, 0);
    const fleetShare = fleetCpuMs / (window * cores);
    const machineShare = (machineAfter.busyMs - machineBefore.busyMs) / (machineAfter.totalMs - machineBefore.totalMs);
    const alive = fleet.filter((p) => p.child.exitCode === null).length;
    const extrapolatedShare = (fleetShare * estimate) / Math.max(1, verifyCount);
    for (const p of procs.splice(0)) await p.stop();

    const figures = perWorker.flatMap((w) => [
      figure({
        section: 'worker',
        name: `RSS after ${minutes} min at 1 s (${{ tsx: 'node --import tsx', compiled: 'node dist/', 'compiled-small-heap': `node ${SMALL_HEAP_FLAGS.join(' ')} dist/` }[w.label]})`,
        value: w.rssMb,
        unit: 'MB',
        target: { text: '<= 75 MB', max: 75 },
        note: `max ${round(w.maxRssMb)} MB`,
      }),
      figure({ section: 'worker', name: `CPU per tick (${w.label})`, value: w.cpuMsPerTick, unit: 'ms', note: `${w.ticks} ticks after warm-up` }),
    ]);
    if (driftResult) {
      figures.push(
        figure({
          section: 'worker',
          name: `schedule drift over ${driftTicks} ticks at ${driftInterval} ms`,
          value: driftResult.finalDriftMs,
          unit: 'ms',
          note: `max |drift| ${round(driftResult.maxAbsDriftMs)} ms; gap p99 ${round(driftResult.gapMs.p99)} ms`,
        }),
      );
    }
    figures.push(
      figure({
        section: 'worker',
        name: 'workers at 5 s under half the CPU (estimate)',
        value: estimate,
        unit: 'workers',
        note: `${byCpu <= byMemory ? 'CPU' : 'memory'}-bound: CPU allows ${byCpu}, half the RAM ${byMemory}`,
      }),
      figure({
        section: 'worker',
        name: `verified: ${verifyCount} workers at 5 s, ${alive} alive`,
        value: fleetShare * 100,
        unit: '% of CPU',
        note: `whole machine ${round(machineShare * 100)} %; ${estimate} workers ~ ${round(extrapolatedShare * 100)} %`,
      }),
    );
    return {
      figures,
      details: {
        minutes,
        intervalMs,
        build: built,
        compiledAvailable: haveCompiled,
        perWorker,
        samples: Object.fromEntries(tracked.map((t) => [t.label, t.samples.map((s) => ({ rssMb: round(s.rssBytes / MB), cpuMs: s.cpuMs }))])),
        drift: driftResult ?? null,
        capacity: { cores, budgetMsPerSecond, basis: basis.label, cpuMsPerSecondAt5s, byCpu, byMemory, estimate, verifyCount, alive, windowMs: window, fleetCpuMs, fleetShare, machineShare, extrapolatedShare },
      },
    };
  } finally {
    for (const p of procs) await p.stop('SIGTERM', 5000);
    await sim.close();
    await r.cleanup();
  }
};
