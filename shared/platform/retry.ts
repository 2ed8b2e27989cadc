/**
 * The one module for waiting: exponential backoff, sleeps that a stop can cut short, and deadlines on promises. Every
 * loop, reconnect and restart in Tickwatch takes its delays from here.
 */

/** `baseMs` doubled for each attempt after the first, capped at `maxMs` (attempt 1 waits `baseMs`). No jitter. */
export function exponentialDelay(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
}

/**
 * Exponential backoff with jitter on the upper half: attempt 1 waits between `baseMs / 2` and `baseMs`, each further
 * attempt doubles, capped at `maxMs`. Jitter keeps processes that failed together from retrying in lockstep.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exp = exponentialDelay(attempt, baseMs, maxMs);
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/** Sleeps `ms`, ending early when `signal` aborts; resolves true when it was cut short. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(false);
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A sleep that `wakeAll()` cuts short: loops sleep through it so `stop()` never waits out a backoff. */
export interface Sleeper {
  sleep(ms: number): Promise<void>;
  wakeAll(): void;
}

export function createSleeper(): Sleeper {
  const waiting = new Set<() => void>();
  return {
    sleep(ms) {
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          waiting.delete(done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        waiting.add(done);
      });
    },
    wakeAll() {
      for (const done of [...waiting]) done();
    },
  };
}

/** The rejection of `withTimeout` when the deadline passes first. */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/**
 * `promise`, or a `TimeoutError` ("<what> did not answer within <ms> ms") once `ms` pass first. The timer never holds
 * the process open. The promise itself is not cancelled: give it its own abort signal when it must stop.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} did not answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
