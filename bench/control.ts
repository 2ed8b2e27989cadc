import { readBotStatus } from '../shared/contract/fleet-status';
import { sleep } from '../shared/platform/retry';
import { createTickerSimulator, type TickerSimulator } from '../sim/simulator';
import { freePort } from '../test/helpers/net';
import type { Section, SectionContext } from './context';
import { spawnEntry, startBenchMaster, type BenchProcess } from './processes';
import { figure } from './report';
import { benchRedis, freshDatabase, type BenchRedis } from './resources';
import { round, summarize } from './stats';

/**
 * The runtime control plane with real processes: a master (bots table, Redis mirror, API), generic workers
 * (`worker/main.ts` without PAIR) and the ticker simulator.
 *
 * - Config apply: PATCH /bots/{id} (alternately a new threshold and a new interval) at a random moment of the tick
 *   schedule, timed to the fetch of the first tick evaluated with the new settings: the first heartbeat carrying the new
 *   bot version whose `lastFetchAt` is after the PATCH was sent (settings take effect at the start of a tick).
 * - Failover: SIGKILL of the holder, timed to the first request for the bot's pair in the simulator's log from another
 *   worker (User-Agent `tickwatch-worker/<WORKER_ID>`). The killed worker is replaced by a fresh spare before the next trial.
 */

const BOT_ID = 'bench-control';
const PAIR = 'CTL-USD';
const INTERVALS_MS = [1000, 1200] as const;

interface Pool {
  readonly workers: Map<string, BenchProcess>;
  spawn(): Promise<string>;
  stopAll(): Promise<void>;
}

function createPool(ctx: SectionContext, r: BenchRedis, sim: TickerSimulator): Pool {
  const workers = new Map<string, BenchProcess>();
  let next = 1;
  return {
    workers,
    /** Starts a generic worker and resolves once its own heartbeat is in Redis (it is then looking for a bot). */
    async spawn() {
      const workerId = `bench-pool-${next++}`;
      const proc = spawnEntry('worker/main.ts', {
        WORKER_ID: workerId,
        TICKER_BASE_URL: sim.url,
        REDIS_URL: ctx.targets.redisUrl,
        REDIS_KEY_PREFIX: r.prefix,
        TICKER_RATE_LIMIT_PER_MIN: '0',
        LOG_LEVEL: 'info',
      });
      workers.set(workerId, proc);
      for (let i = 0; (await r.redis.exists(r.keys.workerHeartbeat(workerId))) === 0; i++) {
        if (proc.child.exitCode !== null) throw new Error(`${workerId} exited:\n${proc.output().slice(-2000)}`);
        if (i > 1200) throw new Error(`${workerId} wrote no heartbeat within 60 s:\n${proc.output().slice(-2000)}`);
        await sleep(50);
      }
      return workerId;
    },
    async stopAll() {
      await Promise.all([...workers.values()].map((w) => w.stop()));
    },
  };
}

async function holderOf(r: BenchRedis): Promise<{ workerId: string; generation: number } | null> {
  const value = await r.redis.get(r.keys.botLease(BOT_ID, PAIR));
  const at = value?.lastIndexOf(':') ?? -1;
  return value && at > 0 ? { workerId: value.slice(0, at), generation: Number(value.slice(at + 1)) } : null;
}

async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined>, timeoutMs: number, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null && value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`control: no ${what} within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

export async function measureControl(ctx: SectionContext, trials: number) {
  const db = await freshDatabase(ctx.targets, 'control');
  const r = await benchRedis(ctx.targets);
  const sim = await createTickerSimulator({ pairs: { [PAIR]: '100' }, volatilityPercent: '0.01', rateLimit: 0, seed: 12 });
  const apiPort = await freePort();
  const master = startBenchMaster(ctx, db, r, { API_PORT: String(apiPort), LOG_LEVEL: 'warn' });
  const api = `http://127.0.0.1:${apiPort}`;
  const pool = createPool(ctx, r, sim);
  const send = async (method: string, path: string, body: unknown) => {
    const res = await fetch(`${api}${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`control: ${method} ${path} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as { version: number; interval_ms: number };
  };
  try {
    await waitFor('master /ready', async () => ((await fetch(`${api}/ready`).catch(() => undefined))?.status === 200 ? true : null), 60_000, 250);
    // One holder and one spare.
    await pool.spawn();
    await pool.spawn();
    let intervalMs: number = INTERVALS_MS[0];
    await send('POST', '/bots', { bot_id: BOT_ID, pair: PAIR, interval_ms: intervalMs, threshold_percent: '0.5' });
    await waitFor('first heartbeat of the runtime bot', async () => ((await readBotStatus(r.redis, r.keys, BOT_ID))?.lastFetchAt ? true : null), 30_000);

    ctx.log(`control: ${trials} config changes (threshold and interval alternately, ${INTERVALS_MS.join('/')} ms)`);
    const apply: number[] = [];
    const applyBound: number[] = [];
    for (let i = 0; i < trials; i++) {
      // A random moment of the tick schedule.
      await sleep(300 + Math.random() * intervalMs);
      const threshold = i % 2 === 0;
      const before = intervalMs;
      if (!threshold) intervalMs = intervalMs === INTERVALS_MS[0] ? INTERVALS_MS[1] : INTERVALS_MS[0];
      const sentAt = Date.now();
      const { version } = await send('PATCH', `/bots/${BOT_ID}`, threshold ? { threshold_percent: i % 4 === 0 ? '0.75' : '0.5' } : { interval_ms: intervalMs });
      const appliedAt = await waitFor(`tick with version ${version}`, async () => {
        const s = await readBotStatus(r.redis, r.keys, BOT_ID);
        const fetched = s?.lastFetchAt ? Date.parse(s.lastFetchAt) : Number.NaN;
        return s && (s.botVersion ?? 0) >= version && fetched >= sentAt ? fetched : null;
      }, 3 * Math.max(before, intervalMs) + 10_000);
      apply.push(appliedAt - sentAt);
      applyBound.push(Math.max(before, intervalMs) + 1000);
    }

    ctx.log(`control: ${trials} failovers (SIGKILL of the holder, interval ${intervalMs} ms)`);
    const failover: number[] = [];
    for (let i = 0; i < trials; i++) {
      const holder = await waitFor('lease holder', () => holderOf(r), 30_000);
      const proc = pool.workers.get(holder.workerId);
      if (!proc) throw new Error(`control: the lease is held by ${holder.workerId}, not one of the bench's workers`);
      await sleep(Math.random() * intervalMs);
      const killedAt = Date.now();
      proc.child.kill('SIGKILL');
      const killedAgent = `tickwatch-worker/${holder.workerId}`;
      const polledAt = await waitFor(
        'poll by the spare',
        async () => sim.requestLog.find((e) => e.at >= killedAt && e.path.endsWith(`/${PAIR}`) && e.userAgent !== killedAgent)?.at ?? null,
        Math.max(3 * intervalMs, 15_000) + 30_000,
      );
      failover.push(polledAt - killedAt);
      pool.workers.delete(holder.workerId);
      await proc.stop();
      // A new spare for the next trial.
      await pool.spawn();
    }
    const applySummary = summarize(apply);
    const failoverSummary = summarize(failover);
    return {
      trials,
      intervalsMs: INTERVALS_MS,
      apply: { ...applySummary, boundMs: Math.max(...applyBound), samplesMs: apply },
      failover: { ...failoverSummary, boundMs: Math.max(3 * intervalMs, 15_000), samplesMs: failover, intervalMs },
    };
  } finally {
    await pool.stopAll();
    await master.stop();
    await sim.close();
    await r.cleanup();
    await db.drop();
  }
}

export const controlSection: Section = async (ctx) => {
  const trials = ctx.options.quick ? 3 : 10;
  const m = await measureControl(ctx, trials);
  const applyTarget = `<= ${m.apply.boundMs} ms (1 interval + 1 s)`;
  const failoverTarget = `<= ${m.failover.boundMs} ms (max(3 x interval, 15 s))`;
  return {
    figures: [
      figure({ section: 'control', name: 'PATCH /bots -> first tick with new settings, p50', value: m.apply.p50, unit: 'ms', note: `${m.trials} trials, threshold and interval alternately` }),
      figure({ section: 'control', name: 'PATCH /bots -> first tick with new settings, p99', value: m.apply.p99, unit: 'ms', target: { text: applyTarget, max: m.apply.boundMs }, note: `max ${round(m.apply.max)} ms` }),
      figure({ section: 'control', name: 'SIGKILL holder -> spare first poll, p50', value: m.failover.p50, unit: 'ms', note: `${m.trials} trials, interval ${m.failover.intervalMs} ms` }),
      figure({ section: 'control', name: 'SIGKILL holder -> spare first poll, p99', value: m.failover.p99, unit: 'ms', target: { text: failoverTarget, max: m.failover.boundMs }, note: `max ${round(m.failover.max)} ms; lease TTL max(2 x interval, 10 s)` }),
    ],
    details: m,
  };
};
