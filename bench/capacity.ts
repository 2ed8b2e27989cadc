import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { compiledEntry } from '../fleet/compiled';
import { sleep } from '../shared/platform/retry';
import { createTickerSimulator, type TickerSimulator } from '../sim/simulator';
import type { Section, SectionContext } from './context';
import { REPO_ROOT, spawnEntry, type BenchProcess } from './processes';
import { sampleProcess } from './proc-stat';
import { figure, type Figure } from './report';
import { benchRedis, type BenchRedis } from './resources';
import { round, summarize, type Summary } from './stats';
import { build } from './worker';

const MB = 1024 * 1024;
const INTERVAL_MS = 5000;
/** Uphold's limit per client IP, for every endpoint together; the simulator enforces it and the workers budget for it. */
const UPHOLD_PER_MIN = 250;
const QUOTES = ['USD', 'EUR', 'BTC', 'GBP'] as const;
const PAIRS_PER_QUOTE = 15;
/** The compose file's worker command runs `node --max-semi-space-size=2 dist/worker/main.js`: the bench's fleet does too. */
const WORKER_NODE_FLAGS = ['--max-semi-space-size=2'];

/** 15 made-up assets per quote currency (C0USD ... C14GBP): 60 pairs, each served in both directions by the lists. */
function fleetPairs(): string[] {
  return QUOTES.flatMap((quote) => Array.from({ length: PAIRS_PER_QUOTE }, (_, i) => `C${i}-${quote}`));
}

function startWorker(ctx: SectionContext, r: BenchRedis, sim: TickerSimulator, pair: string, env: Record<string, string>, runFrom: 'compiled' | 'source' = 'compiled'): BenchProcess {
  return spawnEntry(
    'worker/main.ts',
    {
      PAIR: pair,
      BOT_ID: pair,
      FETCH_INTERVAL_MS: String(INTERVAL_MS),
      TICKER_BASE_URL: sim.url,
      REDIS_URL: ctx.targets.redisUrl,
      REDIS_KEY_PREFIX: r.prefix,
      TICKER_RATE_LIMIT_PER_MIN: String(UPHOLD_PER_MIN),
      LOG_LEVEL: 'warn',
      ...env,
    },
    { compiled: runFrom === 'compiled', nodeArgs: WORKER_NODE_FLAGS },
  );
}

/** Starts node processes a few at a time: start-up is the expensive part, and it is not what is measured. */
async function startFleet(pairs: readonly string[], start: (pair: string) => BenchProcess, procs: BenchProcess[]): Promise<BenchProcess[]> {
  const fleet: BenchProcess[] = [];
  for (const [i, pair] of pairs.entries()) {
    const p = start(pair);
    fleet.push(p);
    procs.push(p);
    if (i % 5 === 4) await sleep(1000);
  }
  return fleet;
}

async function stopAll(procs: BenchProcess[]): Promise<void> {
  await Promise.all(procs.splice(0).map((p) => p.stop('SIGTERM', 10_000)));
}

/** Fetch times (epoch ms) of the prices one pair's ticks used, from its ticks stream (`at` = when the request was sent). */
async function fetchTimes(r: BenchRedis, pair: string, fromMs: number, toMs: number): Promise<number[]> {
  const entries = await r.redis.xrange(r.keys.ticks(pair), String(fromMs), String(toMs));
  const times = entries.map(([, fields]) => Date.parse(fields[fields.indexOf('at') + 1] ?? ''));
  // A tick that reused the snapshot an earlier tick read is no new fetch: its pair waited longer for fresh data.
  return [...new Set(times.filter(Number.isFinite))].sort((a, b) => a - b);
}

interface ModeResult {
  readonly mode: string;
  readonly windowMs: number;
  readonly requestsPerMin: number;
  readonly listRequestsPerMin: number;
  readonly pairRequestsPerMin: number;
  readonly status429: number;
  readonly neverPolled: string[];
  /** Over every pair: the distribution of each pair's p50, p99 and max gap between fetches. */
  readonly intervalP50: Summary;
  readonly intervalP99: Summary;
  readonly intervalMax: Summary;
  readonly worstPair: { pair: string; maxMs: number } | null;
  readonly ticks: number;
  readonly cpuMsPerTick: number;
  readonly alive: number;
}

/** One fetch mode: 60 compiled workers at 5 s over 4 quote currencies against the simulator's 250 requests a minute. */
async function runMode(ctx: SectionContext, mode: 'pair' | 'auto', windowMs: number): Promise<ModeResult> {
  const pairs = fleetPairs();
  const sim = await createTickerSimulator({
    pairs: Object.fromEntries(pairs.map((p, i) => [p, String(10 + i)])),
    seed: 14,
    rateLimit: UPHOLD_PER_MIN,
    requestLogMax: 1_000_000,
  });
  const r = await benchRedis(ctx.targets);
  const procs: BenchProcess[] = [];
  try {
    ctx.log(`capacity: TICKER_FETCH=${mode}: starting ${pairs.length} compiled workers at ${INTERVAL_MS} ms`);
    const fleet = await startFleet(pairs, (pair) => startWorker(ctx, r, sim, pair, { TICKER_FETCH: mode }), procs);
    // Warm-up: every worker through start-up, and one whole rate window behind us so the budget is in its steady state.
    await sleep(ctx.options.quick ? 20_000 : 60_000);
    const from = Date.now();
    const before = await Promise.all(fleet.map((p) => sampleProcess(p.pid)));
    ctx.log(`capacity: TICKER_FETCH=${mode}: measuring for ${Math.round(windowMs / 1000)} s`);
    await sleep(windowMs);
    const to = Date.now();
    const after = await Promise.all(fleet.map((p) => sampleProcess(p.pid).catch(() => undefined)));
    const alive = fleet.filter((p) => p.child.exitCode === null).length;
    const inWindow = sim.requestLog.filter((e) => e.at >= from && e.at < to);
    const minutes = (to - from) / 60_000;
    const perPair = await Promise.all(pairs.map(async (pair) => ({ pair, times: await fetchTimes(r, pair, from - 30_000, to) })));
    const gaps = perPair.map(({ pair, times }) => {
      // The gap before the first fetch inside the window counts too (it is part of the wait the window saw).
      const cut = times.findIndex((t) => t >= from);
      const used = cut < 0 ? times.slice(-1) : times.slice(Math.max(0, cut - 1));
      const g = used.slice(1).map((t, i) => t - used[i]!);
      return { pair, gaps: g, fetchedInWindow: cut >= 0 };
    });
    const withGaps = gaps.filter((g) => g.gaps.length > 0);
    const stats = withGaps.map((g) => ({ pair: g.pair, s: summarize(g.gaps) }));
    const worst = stats.reduce<{ pair: string; maxMs: number } | null>((w, x) => (w === null || x.s.max > w.maxMs ? { pair: x.pair, maxMs: x.s.max } : w), null);
    let cpuMs = 0;
    for (const [i, a] of after.entries()) if (a) cpuMs += a.cpuMs - before[i]!.cpuMs;
    const ticks = (await Promise.all(pairs.map((pair) => r.redis.xrange(r.keys.ticks(pair), String(from), String(to))))).reduce((n, e) => n + e.length, 0);
    return {
      mode,
      windowMs: to - from,
      requestsPerMin: inWindow.length / minutes,
      listRequestsPerMin: inWindow.filter((e) => e.kind === 'list').length / minutes,
      pairRequestsPerMin: inWindow.filter((e) => e.kind === 'pair').length / minutes,
      status429: sim.requestLog.filter((e) => e.status === 429).length,
      neverPolled: gaps.filter((g) => !g.fetchedInWindow).map((g) => g.pair),
      intervalP50: summarize(stats.map((x) => x.s.p50)),
      intervalP99: summarize(stats.map((x) => x.s.p99)),
      intervalMax: summarize(stats.map((x) => x.s.max)),
      worstPair: worst,
      ticks,
      cpuMsPerTick: ticks > 0 ? cpuMs / ticks : Number.NaN,
      alive,
    };
  } finally {
    await stopAll(procs);
    await sim.close();
    await r.cleanup();
  }
}

/** /proc/<pid>/smaps_rollup: proportional set size and its parts, in bytes. Linux 4.14+. */
export interface MemorySample {
  readonly rss: number;
  readonly pss: number;
  readonly pssAnon: number;
  readonly pssFile: number;
  /** Private_Clean + Private_Dirty: what the kernel frees when this process ends (the unique set). */
  readonly uss: number;
}

export async function sampleMemory(pid: number): Promise<MemorySample> {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN) * 1024;
  return { rss: kb('Rss'), pss: kb('Pss'), pssAnon: kb('Pss_Anon'), pssFile: kb('Pss_File'), uss: kb('Private_Clean') + kb('Private_Dirty') };
}

/**
 * A worker started by the real fleet runner (`npm start`: fleet/main.ts under tsx, as the npm script runs it) from a
 * one-worker compose file, compiled (the default) or with FLEET_RUN=source (what `npm start` ran before). Resolves with
 * the runner and the worker's pid, which the runner logs when it starts the service.
 */
async function startFleetWorker(ctx: SectionContext, r: BenchRedis, sim: TickerSimulator, pair: string, runFrom: 'compiled' | 'source', dir: string) {
  const redis = new URL(ctx.targets.redisUrl);
  const service = `worker-${pair.toLowerCase()}`;
  const file = path.join(dir, `compose-${runFrom}.yml`);
  await writeFile(
    file,
    `services:
  redis:
    image: redis:7-alpine
  ${service}:
    image: tickwatch:local
    command: ["node", ${WORKER_NODE_FLAGS.map((f) => JSON.stringify(f)).join(', ')}, "dist/worker/main.js"]
    environment:
      PAIR: ${pair}
      BOT_ID: ${pair}
      FETCH_INTERVAL_MS: "${INTERVAL_MS}"
      TICKER_BASE_URL: ${sim.url}
      TICKER_FETCH: auto
      TICKER_RATE_LIMIT_PER_MIN: "0"
      REDIS_URL: redis://redis:6379
      REDIS_KEY_PREFIX: "${r.prefix}"
      LOG_LEVEL: warn
`,
  );
  const runner = spawnEntry('fleet/main.ts', { FLEET_RUN: runFrom, FLEET_SERVICE_ADDRESSES: `redis=${redis.hostname}:${redis.port || 6379}`, LOG_LEVEL: 'info' }, { args: ['--file', file] });
  // A stale dist/ makes the runner build first (tsc, about 20 s on an idle machine).
  const started = new RegExp(`"service":"${service}".*"childPid":(\\d+)`);
  await runner.waitForOutput(started, 180_000);
  const pid = Number(started.exec(runner.output())?.[1]);
  return { runner, pid };
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

function meanSample(samples: readonly MemorySample[]): MemorySample {
  return {
    rss: mean(samples.map((s) => s.rss)),
    pss: mean(samples.map((s) => s.pss)),
    pssAnon: mean(samples.map((s) => s.pssAnon)),
    pssFile: mean(samples.map((s) => s.pssFile)),
    uss: mean(samples.map((s) => s.uss)),
  };
}

/**
 * Memory per worker: 20 compiled workers (TICKER_FETCH=auto, 5 s) after a warm-up, each one's PSS from smaps_rollup,
 * plus one worker started by `npm start` as it runs workers now (compiled) and one as it used to (tsx), for comparison.
 */
async function measureMemory(ctx: SectionContext, warmupMs: number) {
  const pairs = fleetPairs().slice(0, 20);
  const sim = await createTickerSimulator({ pairs: Object.fromEntries([...pairs, 'NPMSTART-USD', 'NPMTSX-USD'].map((p) => [p, '100'])), seed: 15, rateLimit: 0, requestLogMax: 100_000 });
  const r = await benchRedis(ctx.targets);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tw-bench-capacity-'));
  const procs: BenchProcess[] = [];
  try {
    ctx.log(`capacity: memory: 20 compiled workers + 2 started by npm start (compiled, FLEET_RUN=source), warm-up ${round(warmupMs / 60_000)} min`);
    const npmCompiled = await startFleetWorker(ctx, r, sim, 'NPMSTART-USD', 'compiled', dir);
    procs.push(npmCompiled.runner);
    const npmSource = await startFleetWorker(ctx, r, sim, 'NPMTSX-USD', 'source', dir);
    procs.push(npmSource.runner);
    const fleet = await startFleet(pairs, (pair) => startWorker(ctx, r, sim, pair, { TICKER_FETCH: 'auto', TICKER_RATE_LIMIT_PER_MIN: '0' }), procs);
    await sleep(warmupMs);
    for (const p of procs) if (p.child.exitCode !== null) throw new Error(`a worker or runner exited (${p.child.exitCode}):\n${p.output().slice(-2000)}`);
    const samples = await Promise.all(fleet.map((p) => sampleMemory(p.pid)));
    return {
      workers: fleet.length,
      warmupMs,
      perWorker: samples,
      mean: meanSample(samples),
      npmStart: await sampleMemory(npmCompiled.pid),
      npmStartFromSource: await sampleMemory(npmSource.pid),
    };
  } finally {
    await stopAll(procs);
    await sim.close();
    await r.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}

const mb = (bytes: number) => bytes / MB;

export const capacitySection: Section = async (ctx) => {
  const built = await build(ctx);
  if (!existsSync(path.join(REPO_ROOT, compiledEntry('worker/main.ts')))) throw new Error(`npm run build did not produce dist/worker/main.js:\n${built.output}`);
  const windowMs = ctx.options.capacityRunMinutes * 60_000;
  const pair = await runMode(ctx, 'pair', windowMs);
  const auto = await runMode(ctx, 'auto', windowMs);
  const memory = await measureMemory(ctx, ctx.options.capacityMinutes * 60_000);

  // What one machine of this size runs at 5 s: half its CPU over the measured CPU per worker-tick, half its RAM over the
  // PSS per worker; and what the ticker then allows with shared lists.
  const cores = os.cpus().length;
  const cpuMsPerWorkerSecond = auto.cpuMsPerTick / (INTERVAL_MS / 1000);
  const byCpu = Math.floor((cores * 1000 * 0.5) / cpuMsPerWorkerSecond);
  const byMemory = Math.floor((os.totalmem() * 0.5) / memory.mean.pss);
  const fleetSize = Math.min(byCpu, byMemory);
  const listsPerMinPerQuote = auto.listRequestsPerMin / QUOTES.length;
  // Every quote currency costs one list per interval; what is left of the 250 after the pairs' own requests buys more.
  const quoteCurrencies = Math.floor(UPHOLD_PER_MIN / Math.max(1e-9, listsPerMinPerQuote || 60_000 / INTERVAL_MS));
  const pairsPerMinAlone = 60_000 / INTERVAL_MS;
  const pairModePairs = Math.floor(UPHOLD_PER_MIN / pairsPerMinAlone);

  const figures: Figure[] = [];
  for (const m of [pair, auto]) {
    const name = `TICKER_FETCH=${m.mode}`;
    figures.push(
      figure({
        section: 'capacity',
        name: `${name}: ticker requests/min, 60 workers at 5 s`,
        value: m.requestsPerMin,
        unit: 'req/min',
        ...(m.mode === 'auto' ? { target: { text: '<= 53', max: 53 } } : {}),
        note: `${round(m.listRequestsPerMin)} list + ${round(m.pairRequestsPerMin)} pair; ${m.status429} x 429; ${round(m.windowMs / 1000)} s window`,
      }),
      figure({
        section: 'capacity',
        name: `${name}: worst pair's longest gap between fetches`,
        value: m.intervalMax.max / 1000,
        unit: 's',
        ...(m.mode === 'auto' ? { target: { text: '<= 5.5 s', max: 5.5 } } : {}),
        note: `over pairs: p50 of p50 ${round(m.intervalP50.p50 / 1000)} s, worst p99 ${round(m.intervalP99.max / 1000)} s; ${m.worstPair?.pair ?? 'none'}; never polled ${m.neverPolled.length}${m.neverPolled.length ? ` (${m.neverPolled.slice(0, 4).join(', ')})` : ''}; ${m.alive}/60 alive`,
      }),
    );
  }
  figures.push(
    figure({ section: 'capacity', name: 'TICKER_FETCH=auto: 429 answers', value: auto.status429, unit: '', target: { text: '0', max: 0 } }),
    figure({
      section: 'capacity',
      name: `PSS per worker (${memory.workers} compiled, after ${round(memory.warmupMs / 60_000)} min)`,
      value: mb(memory.mean.pss),
      unit: 'MB',
      target: { text: '<= 30 MB', max: 30 },
      note: `RSS ${round(mb(memory.mean.rss))} MB; Pss_Anon (V8 heap, malloc) ${round(mb(memory.mean.pssAnon))} MB, Pss_File (node binary, shared) ${round(mb(memory.mean.pssFile))} MB; private ${round(mb(memory.mean.uss))} MB = each added worker`,
    }),
    figure({
      section: 'capacity',
      name: 'npm start worker: private memory (compiled, the default now)',
      value: mb(memory.npmStart.uss),
      unit: 'MB',
      baseline: { name: 'FLEET_RUN=source (tsx, as before)', value: mb(memory.npmStartFromSource.uss) },
      note: `PSS ${round(mb(memory.npmStart.pss))} vs ${round(mb(memory.npmStartFromSource.pss))} MB, RSS ${round(mb(memory.npmStart.rss))} vs ${round(mb(memory.npmStartFromSource.rss))} MB; bench's compiled workers: private ${round(mb(memory.mean.uss))} MB`,
    }),
    figure({
      section: 'capacity',
      name: 'workers at 5 s in half the CPU and half the RAM (estimate)',
      value: fleetSize,
      unit: 'workers',
      note: `${byCpu <= byMemory ? 'CPU' : 'memory'}-bound: ${round(auto.cpuMsPerTick)} ms CPU per tick -> ${byCpu}; ${round(mb(memory.mean.pss))} MB PSS -> ${byMemory}; ${cores} cores, ${round(os.totalmem() / 2 ** 30)} GB`,
    }),
    figure({
      section: 'capacity',
      name: 'pairs per IP at 5 s (estimate, auto)',
      value: fleetSize,
      unit: 'pairs',
      note: `the ticker allows ${quoteCurrencies} quote currencies x every pair each list holds (${round(listsPerMinPerQuote)} lists/min per currency); TICKER_FETCH=pair: ${pairModePairs} pairs`,
    }),
  );
  return {
    figures,
    details: {
      intervalMs: INTERVAL_MS,
      quotes: QUOTES,
      pairsPerQuote: PAIRS_PER_QUOTE,
      build: built,
      modes: { pair, auto },
      memory: {
        workers: memory.workers,
        warmupMs: memory.warmupMs,
        meanMb: Object.fromEntries(Object.entries(memory.mean).map(([k, v]) => [k, round(mb(v))])),
        npmStartMb: Object.fromEntries(Object.entries(memory.npmStart).map(([k, v]) => [k, round(mb(v))])),
        npmStartFromSourceMb: Object.fromEntries(Object.entries(memory.npmStartFromSource).map(([k, v]) => [k, round(mb(v))])),
        perWorkerPssMb: memory.perWorker.map((s) => round(mb(s.pss))),
      },
      machine: { cores, totalMemMb: round(mb(os.totalmem())), cpuMsPerWorkerSecond, byCpu, byMemory, fleetSize, listsPerMinPerQuote, quoteCurrencies, pairModePairs },
    },
  };
};
