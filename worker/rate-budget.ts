import type { Logger } from '../shared/platform/logger';
import type { Redis } from '../shared/platform/redis';
import { DEFAULT_RATE_GROUP, type RedisKeys } from '../shared/contract/redis-keys';
import { describeError } from '../shared/platform/errors';
import { sleep, withTimeout } from '../shared/platform/retry';

/**
 * The ticker budget of one rate group (Uphold allows 250 requests per minute per IP). Every worker on one Redis (one key
 * prefix) and in one group (TICKER_RATE_GROUP: the workers that leave through one egress IP) takes a slot before each
 * request; workers in another group leave through another IP, so they have a budget and a 429 pause of their own.
 *
 * Design: a shared, GCRA-like ticket clock in Redis. The key `keys.rateBudget(group)` holds the next free slot time; taking a
 * slot returns `max(now, nextFree, pauseUntil)` and advances `nextFree` by one emission interval
 * `T = ceil((window + margin) / limit)` (see `emissionIntervalMs`). Requests are therefore spaced T apart fleet-wide, so no window of length `window`
 * ever holds more than `limit` of them (the margin absorbs network and timer jitter). Each worker holds at most one ticket
 * at a time and takes a new one only after its request, so when the budget is short the tickets go round-robin: every
 * pair slows by the same factor and none starves. Time is Redis's own (`TIME`), so clock skew between hosts is harmless.
 *
 * A 429 seen by any worker of the group raises `keys.tickerPauseUntil(group)`; every later ticket of the group starts
 * after it, and a worker that was already waiting for a ticket re-checks the pause before it fires. Other groups keep
 * polling: Uphold limits each IP on its own.
 *
 * Redis unreachable (or slow beyond `commandTimeoutMs`): the worker polls at its own configured rate (local limit) rather
 * than stopping; it goes back to the shared budget as soon as Redis answers.
 */
export interface RateBudget {
  /**
   * Waits until this worker may send one ticker request, or until `signal` aborts. Never rejects.
   * `onWait` is told each wait before it starts (so a long wait can be reported in the heartbeat first).
   */
  acquire(signal: AbortSignal, onWait?: (waitMs: number) => void): Promise<BudgetGrant>;
  /** Reports a 429: every worker of this rate group pauses for `retryAfterMs`. Never rejects. */
  pause(retryAfterMs: number): Promise<void>;
}

export interface BudgetGrant {
  /** `shared`: the Redis budget granted the slot; `local`: Redis was unreachable; `off`: no budget configured. */
  readonly mode: 'shared' | 'local' | 'off';
  /** How long the budget (or its group's pause after a 429) held this request back. */
  readonly waitedMs: number;
  /** True when the wait ended because the signal aborted (the worker is stopping). */
  readonly aborted: boolean;
}

export interface RateBudgetDeps {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  /** The rate group (TICKER_RATE_GROUP) whose budget and pause this worker shares. @defaultValue "default" */
  readonly group?: string;
  /** Requests per window shared by the group; 0 turns the budget off (the group's pause after a 429 still applies). */
  readonly limit: number;
  /** @defaultValue 60000 (Uphold counts per minute). Tests shorten it. */
  readonly windowMs?: number;
  /** Above this a Redis call counts as unreachable. @defaultValue 1000 */
  readonly commandTimeoutMs?: number;
  readonly logger: Logger;
}

// KEYS[1] next free slot (ms), KEYS[2] pause-until (ms). ARGV[1] emission interval (ms). Returns {slot - now, pause - now}.
const RESERVE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nextFree = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local pauseUntil = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local slot = math.max(now, nextFree, pauseUntil)
local interval = tonumber(ARGV[1])
if interval > 0 then
  redis.call('SET', KEYS[1], string.format('%d', slot + interval), 'PX', string.format('%d', slot + interval - now + 60000))
end
return {slot - now, pauseUntil - now}
`;

// KEYS[1] pause-until (ms). ARGV[1] pause length (ms). Only ever extends the pause. Returns the pause end (ms).
const PAUSE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pauseUntil = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if pauseUntil > current and tonumber(ARGV[1]) > 0 then
  redis.call('SET', KEYS[1], string.format('%d', pauseUntil), 'PX', ARGV[1])
  return pauseUntil
end
return current
`;

// KEYS[1] pause-until (ms). Returns pause - now (<= 0 when not paused).
const PAUSE_LEFT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return (tonumber(redis.call('GET', KEYS[1]) or '0') or 0) - now
`;

interface BudgetCommands {
  twBudgetReserve(budgetKey: string, pauseKey: string, intervalMs: number): Promise<[number, number]>;
  twBudgetPause(pauseKey: string, ms: number): Promise<number>;
  twBudgetPauseLeft(pauseKey: string): Promise<number>;
}

/**
 * The emission interval for `limit` requests per `windowMs`. Spreading them over `windowMs + margin` means a request
 * may arrive up to `margin` late (network, timers, a busy host) without a window ever counting `limit + 1`.
 * The margin is 1 s (1.7 % of Uphold's minute), at most a quarter of the window.
 */
export function emissionIntervalMs(limit: number, windowMs: number): number {
  if (limit <= 0) return 0;
  const margin = Math.min(1000, Math.floor(windowMs / 4));
  return Math.ceil((windowMs + margin) / limit);
}

export function createRateBudget(deps: RateBudgetDeps): RateBudget {
  const windowMs = deps.windowMs ?? 60_000;
  const interval = emissionIntervalMs(deps.limit, windowMs);
  const timeoutMs = deps.commandTimeoutMs ?? 1000;
  const group = deps.group ?? DEFAULT_RATE_GROUP;
  const budgetKey = deps.keys.rateBudget(group);
  const pauseKey = deps.keys.tickerPauseUntil(group);
  const log = deps.logger;
  const redis = deps.redis as Redis & BudgetCommands;
  if (typeof redis.twBudgetReserve !== 'function') {
    // Several workers may share one connection (tests do); defining once is enough.
    redis.defineCommand('twBudgetReserve', { numberOfKeys: 2, lua: RESERVE_LUA });
    redis.defineCommand('twBudgetPause', { numberOfKeys: 1, lua: PAUSE_LUA });
    redis.defineCommand('twBudgetPauseLeft', { numberOfKeys: 1, lua: PAUSE_LEFT_LUA });
  }
  let local = false;

  const answered = <T>(promise: Promise<T>): Promise<T> => withTimeout(promise, timeoutMs, 'Redis');

  const goLocal = (err: unknown) => {
    if (!local) log.warn({ err: describeError(err) }, 'shared rate budget unreachable; polling at the configured rate until Redis is back');
    local = true;
  };
  const goShared = () => {
    if (local) log.info('shared rate budget reachable again');
    local = false;
  };

  return {
    async acquire(signal, onWait) {
      const started = Date.now();
      const mode = deps.limit > 0 ? 'shared' : 'off';
      // Bounded: a pause that keeps being extended is waited out, a broken Redis falls through to local mode.
      for (let attempt = 0; attempt < 100; attempt++) {
        let waitMs: number;
        try {
          const [slotIn] = await answered(redis.twBudgetReserve(budgetKey, pauseKey, interval));
          waitMs = Number(slotIn);
          goShared();
        } catch (err) {
          goLocal(err);
          return { mode: 'local', waitedMs: Date.now() - started, aborted: false };
        }
        if (waitMs <= 0) return { mode, waitedMs: Date.now() - started, aborted: false };
        onWait?.(waitMs);
        if (await sleep(waitMs, signal)) return { mode, waitedMs: Date.now() - started, aborted: true };
        // A 429 elsewhere in the group may have paused it while this worker waited for its slot.
        let pauseLeft: number;
        try {
          pauseLeft = Number(await answered(redis.twBudgetPauseLeft(pauseKey)));
        } catch (err) {
          goLocal(err);
          return { mode: 'local', waitedMs: Date.now() - started, aborted: false };
        }
        if (pauseLeft <= 0) return { mode, waitedMs: Date.now() - started, aborted: false };
        onWait?.(pauseLeft);
        if (await sleep(pauseLeft, signal)) return { mode, waitedMs: Date.now() - started, aborted: true };
      }
      return { mode, waitedMs: Date.now() - started, aborted: false };
    },
    async pause(retryAfterMs) {
      if (retryAfterMs <= 0) return;
      try {
        await answered(redis.twBudgetPause(pauseKey, Math.ceil(retryAfterMs)));
        log.info({ retryAfterMs, rateGroup: group }, `ticker answered 429: pausing every worker of rate group ${group}`);
      } catch (err) {
        goLocal(err);
      }
    },
  };
}
