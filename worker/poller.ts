import type { Logger } from '../shared/platform/logger';
import { describeError } from '../shared/platform/errors';

/** What a tick asks of the schedule: stay on the fixed-rate grid, or come back after a delay (backoff, 429, bad pair). */
export type TickResult = { readonly next: 'on-schedule' } | { readonly next: 'delay'; readonly delayMs: number };

export interface PollerDeps {
  readonly intervalMs: number;
  /**
   * One poll. The signal aborts when `stop()` is called, so waits before the request (the rate budget) can end early;
   * the request itself is left to finish. A throw is logged and treated as a delay of one interval.
   */
  readonly tick: (signal: AbortSignal) => Promise<TickResult>;
  readonly logger: Logger;
  /** @defaultValue Date.now */
  readonly now?: () => number;
}

export interface Poller {
  start(): void;
  /**
   * Changes the interval. A tick waiting on the grid is re-planned at once from the last planned start with the new
   * interval (now, if that point has passed); a backoff wait is kept.
   */
  setIntervalMs(ms: number): void;
  /** Stops scheduling, aborts waits, and resolves once the tick in flight (if any) has finished. Idempotent. */
  stop(): Promise<void>;
  readonly running: boolean;
}

/**
 * Fixed-rate scheduler on a `setTimeout` chain.
 * - No drift: the next tick is planned from the previous tick's *planned* start, not from when it ended, so timer lateness
 *   and request time never accumulate.
 * - No overlap: the next timer is set only after the tick finishes; a tick that overruns its slot skips the missed grid
 *   points and runs at the next one (a slow answer delays, never stacks).
 * - A delay result (backoff) starts a new grid from now + delay.
 */
export function createPoller(deps: PollerDeps): Poller {
  const now = deps.now ?? Date.now;
  let interval = deps.intervalMs;
  let active = false;
  let timer: NodeJS.Timeout | undefined;
  /** The planned start the pending timer was set from, when it waits on the grid (not a backoff). */
  let gridFrom: number | undefined;
  let inFlight: Promise<void> | undefined;
  let abort = new AbortController();
  let stopping: Promise<void> | undefined;

  /** The first grid point `planned + k * interval` (k >= 1) that is not in the past. */
  const nextOnGrid = (planned: number, at: number): number => {
    const k = Math.max(1, Math.ceil((at - planned) / interval));
    return planned + k * interval;
  };

  const schedule = (plannedAt: number) => {
    if (!active) return;
    timer = setTimeout(() => run(plannedAt), Math.max(0, plannedAt - now()));
  };

  const run = (plannedAt: number) => {
    timer = undefined;
    gridFrom = undefined;
    if (!active) return;
    const tick = (async () => {
      let result: TickResult;
      try {
        result = await deps.tick(abort.signal);
      } catch (err) {
        deps.logger.error({ err: describeError(err) }, 'poll tick failed unexpectedly');
        result = { next: 'delay', delayMs: interval };
      }
      if (!active) return;
      const at = now();
      gridFrom = result.next === 'on-schedule' ? plannedAt : undefined;
      schedule(result.next === 'on-schedule' ? nextOnGrid(plannedAt, at) : at + Math.max(0, result.delayMs));
    })();
    inFlight = tick;
    void tick.finally(() => {
      if (inFlight === tick) inFlight = undefined;
    });
  };

  return {
    get running() {
      return active;
    },
    setIntervalMs(ms) {
      interval = ms;
      if (!active || !timer || gridFrom === undefined) return;
      clearTimeout(timer);
      const from = gridFrom;
      const at = now();
      schedule(from + interval <= at ? at : nextOnGrid(from, at));
    },
    start() {
      if (active) return;
      active = true;
      stopping = undefined;
      abort = new AbortController();
      schedule(now());
    },
    stop() {
      stopping ??= (async () => {
        active = false;
        if (timer) clearTimeout(timer);
        timer = undefined;
        abort.abort();
        await inFlight;
      })();
      return stopping;
    },
  };
}
