import { backoffDelay, createSleeper } from './retry';

/**
 * The one shape of a background work loop (ingest consumers, notification delivery): rounds run one after another,
 * never overlapping, until `stop()`. This is an async loop over an interruptible sleep, not `setInterval`: a slow round
 * delays the next one instead of stacking. (The worker's fixed-rate poller, `worker/poller.ts`, keeps a schedule grid on a
 * `setTimeout` chain instead.)
 */
export interface Loop {
  /** Starts the rounds; a second call does nothing. */
  start(): void;
  /** Cuts the current wait short so the next round starts now (e.g. new work was announced). */
  wake(): void;
  /**
   * Stops: no new round starts, the wait is cut short, `interrupt` runs (to end a blocking read), the round in flight
   * finishes, then `finally` runs. Memoized: every call returns the same promise.
   */
  stop(): Promise<void>;
  /** True from `start()` until `stop()` is called. */
  readonly active: boolean;
}

export interface LoopOptions {
  /** One round. Resolves with how long to wait before the next one, in ms (0: go again at once). */
  readonly round: () => Promise<number>;
  /**
   * A round threw: `failures` counts the streak (1 for the first). Runs before the backoff wait; may clean up
   * (await commits in flight, reset state). The loop then waits `backoffDelay(failures, base, max)`.
   */
  readonly onError: (err: unknown, failures: number) => void | Promise<void>;
  /** The first round that succeeded after a streak of failures. */
  readonly onRecover?: () => void;
  /** Backoff bounds after failures. @defaultValue `{ baseMs: 200, maxMs: 5000 }` */
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
  /** Runs at `stop()`, after the flag drops and before the round in flight is awaited. */
  readonly interrupt?: () => void | Promise<void>;
  /** Runs once the last round is over (at `stop()`), e.g. to wait for work handed off by the rounds. */
  readonly finally?: () => void | Promise<void>;
}

export function createLoop(options: LoopOptions): Loop {
  const sleeper = createSleeper();
  const { baseMs, maxMs } = options.backoff ?? { baseMs: 200, maxMs: 5000 };
  let active = false;
  let running: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  // A wake that arrives while a round runs must not be lost: the next wait is skipped instead.
  let woken = false;

  async function run(): Promise<void> {
    let failures = 0;
    while (active) {
      let waitMs: number;
      woken = false;
      try {
        waitMs = await options.round();
        if (failures > 0) options.onRecover?.();
        failures = 0;
      } catch (err) {
        failures += 1;
        await options.onError(err, failures);
        waitMs = backoffDelay(failures, baseMs, maxMs);
      }
      if (active && waitMs > 0 && !woken) await sleeper.sleep(waitMs);
    }
  }

  return {
    start() {
      if (active || stopping) return;
      active = true;
      running = run();
    },
    wake() {
      woken = true;
      sleeper.wakeAll();
    },
    stop() {
      stopping ??= (async () => {
        const wasRunning = active;
        active = false;
        sleeper.wakeAll();
        if (!wasRunning) return;
        await options.interrupt?.();
        await running;
        await options.finally?.();
      })();
      return stopping;
    },
    get active() {
      return active;
    },
  };
}
