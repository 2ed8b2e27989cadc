import { parseDesiredBot } from '../shared/contract/bots';
import type { RedisKeys } from '../shared/contract/redis-keys';
import { describeError } from '../shared/platform/errors';
import type { Logger } from '../shared/platform/logger';
import { createLoop } from '../shared/platform/loop';
import type { Redis } from '../shared/platform/redis';
import { PlanError, type ServicePlan } from './plan';
import type { Supervisor } from './supervisor';

/**
 * Sizes the local pool of generic workers (workers without PAIR) to the runtime bots: one per enabled bot in the
 * master's Redis mirror plus `spares`, so that a new bot is claimed at once and a dead holder's bot has a spare to fail
 * over to. Only idle workers (holding no lease) are ever stopped.
 */

/** What the pool looks like in one round. */
export interface PoolState {
  /** Running pool workers, by WORKER_ID (also their service names), oldest first. */
  readonly members: readonly string[];
  /** Enabled runtime bots in the mirror. */
  readonly enabledBots: number;
  readonly spares: number;
  /** WORKER_IDs holding a bot lease now. */
  readonly holders: ReadonlySet<string>;
}

/**
 * The pure decision: start workers up to `enabledBots + spares`; above it, stop only idle members (newest first), as
 * many as the surplus, so a holder is never stopped while an idle worker could go instead.
 */
export function decidePool(state: PoolState): { start: number; stop: string[] } {
  const target = state.enabledBots + state.spares;
  const surplus = state.members.length - target;
  if (surplus < 0) return { start: -surplus, stop: [] };
  const idle = state.members.filter((m) => !state.holders.has(m)).reverse();
  return { start: 0, stop: idle.slice(0, surplus) };
}

/** The WORKER_ID in a lease value `<workerId>:<generation>` (worker ids may themselves contain ':'). */
export function leaseHolder(value: string): string | undefined {
  const at = value.lastIndexOf(':');
  return at > 0 && /^\d+$/.test(value.slice(at + 1)) ? value.slice(0, at) : undefined;
}

/** Reads the mirror and the leases: how many runtime bots are enabled, and which workers hold one. */
export async function readPoolDemand(redis: Redis, keys: RedisKeys): Promise<{ enabledBots: number; holders: Set<string>; invalid: number }> {
  const entries = await redis.hgetall(keys.desiredBots);
  let enabledBots = 0;
  let invalid = 0;
  for (const text of Object.values(entries)) {
    const parsed = parseDesiredBot(text);
    if (!parsed.ok) invalid += 1;
    else if (parsed.bot.enabled) enabledBots += 1;
  }
  // One GET per lease: each lives in its bot's pair's slot, so on a cluster no MGET can read them all.
  const bots = Object.values(entries).flatMap((text) => {
    const parsed = parseDesiredBot(text);
    return parsed.ok ? [parsed.bot] : [];
  });
  const leases = await Promise.all(bots.map((bot) => redis.get(keys.botLease(bot.botId, bot.pair))));
  const holders = new Set(leases.map((v) => (v === null ? undefined : leaseHolder(v))).filter((h): h is string => h !== undefined));
  return { enabledBots, holders, invalid };
}

export interface WorkerPoolDeps {
  /** The generic-worker service of the plan; each copy gets its environment plus its own WORKER_ID. */
  readonly template: ServicePlan;
  readonly supervisor: Pick<Supervisor, 'addService' | 'removeService' | 'hasEnded'>;
  /** A connection of the runner's own (the pool does not close it). */
  readonly redis: Redis;
  readonly keys: RedisKeys;
  /** Idle workers kept beyond one per enabled bot. @defaultValue 1 (FLEET_SPARE_WORKERS) */
  readonly spares: number;
  /** How often the mirror is re-read. @defaultValue 2000 */
  readonly checkMs?: number;
  readonly logger: Logger;
  /** Names the copies: `${namePrefix}1`, `${namePrefix}2`, ... (also their WORKER_ID). @defaultValue "pool-" */
  readonly namePrefix?: string;
}

export interface WorkerPool {
  start(): void;
  /** Stops resizing (the workers themselves stop with the supervisor). Memoized. */
  stop(): Promise<void>;
  /** Names (= WORKER_IDs) of the pool workers running now, oldest first. */
  members(): string[];
}

export const DEFAULT_POOL_CHECK_MS = 2000;

export function createWorkerPool(deps: WorkerPoolDeps): WorkerPool {
  const log = deps.logger.child({ pool: deps.template.name });
  const prefix = deps.namePrefix ?? 'pool-';
  const members: string[] = [];
  /** Names of workers still stopping: not reused until they are gone. */
  const retiring = new Set<string>();
  let last = '';

  const nextName = () => {
    for (let n = 1; ; n += 1) if (!members.includes(`${prefix}${n}`) && !retiring.has(`${prefix}${n}`)) return `${prefix}${n}`;
  };

  /** Takes a worker out of the pool and stops it; not awaited, so a worker's shutdown never holds up a round. */
  const retire = (name: string) => {
    members.splice(members.indexOf(name), 1);
    retiring.add(name);
    void deps.supervisor.removeService(name).finally(() => retiring.delete(name));
  };

  const round = async (): Promise<number> => {
    // A worker whose restart policy gave up is no member any more: the pool starts another in its place.
    for (const name of members.filter((m) => deps.supervisor.hasEnded(m))) {
      log.warn({ worker: name }, `generic worker ${name} ended for good; replacing it`);
      retire(name);
    }
    const demand = await readPoolDemand(deps.redis, deps.keys);
    const decision = decidePool({ members, enabledBots: demand.enabledBots, spares: deps.spares, holders: demand.holders });
    const summary = `${demand.enabledBots}/${members.length}/${decision.start}/${decision.stop.join(',')}`;
    if (summary !== last || decision.start > 0 || decision.stop.length > 0) {
      log.info(
        { enabledBots: demand.enabledBots, spares: deps.spares, workers: members.length, holding: members.filter((m) => demand.holders.has(m)).length, starting: decision.start, stopping: decision.stop, invalidEntries: demand.invalid || undefined },
        decision.start > 0 ? `starting ${decision.start} generic worker(s)` : decision.stop.length > 0 ? `stopping idle generic worker(s) ${decision.stop.join(', ')}` : 'generic worker pool sized',
      );
      last = summary;
    }
    for (let i = 0; i < decision.start; i += 1) {
      const name = nextName();
      const service: ServicePlan = { ...deps.template, name, env: { ...deps.template.env, WORKER_ID: name } };
      if (!deps.supervisor.addService(service)) return DEFAULT_POOL_CHECK_MS;
      members.push(name);
    }
    for (const name of decision.stop) retire(name);
    return deps.checkMs ?? DEFAULT_POOL_CHECK_MS;
  };

  const loop = createLoop({
    round,
    onError: (err, failures) => {
      if (failures === 1) log.warn({ err: describeError(err) }, 'cannot read the runtime bots from Redis; keeping the pool as it is and retrying');
    },
    onRecover: () => log.info('reading the runtime bots from Redis again'),
    backoff: { baseMs: 500, maxMs: 10_000 },
  });

  return {
    start: () => loop.start(),
    stop: () => loop.stop(),
    members: () => [...members],
  };
}

/**
 * FLEET_SPARE_WORKERS: idle generic workers kept beside one per enabled runtime bot.
 * @throws PlanError naming the variable, the value and what is allowed.
 */
export function parseSpareWorkers(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return 1;
  const n = Number(value.trim());
  if (!/^\d+$/.test(value.trim()) || n > 100) throw new PlanError(`FLEET_SPARE_WORKERS=${JSON.stringify(value)} is invalid: expected a whole number from 0 to 100 (default 1)`);
  return n;
}
