import { exponentialDelay } from '../shared/platform/retry';

/**
 * Compose restart policies, applied to local processes. Docker restarts `always` services forever; a local runner that
 * did that would spin on a broken service, so every policy here has a bound: after `maxAttempts` consecutive quick
 * failures the runner gives up on that service and says so. A process that ran for `stableAfterMs` resets the count.
 */

export type RestartMode = 'no' | 'always' | 'unless-stopped' | 'on-failure';

export interface RestartPolicy {
  readonly mode: RestartMode;
  /** `on-failure:N`: at most N restarts (compose semantics). Absent: the runner's own bound applies. */
  readonly maxRetries?: number;
}

/** The runner's bounds and backoff. */
export interface RestartBounds {
  /** Consecutive restarts before giving up. @defaultValue 5 */
  readonly maxAttempts: number;
  /** First delay; doubles with each consecutive restart. @defaultValue 1000 */
  readonly baseDelayMs: number;
  /** @defaultValue 30000 */
  readonly maxDelayMs: number;
  /** A run at least this long counts as healthy and resets the attempt count. @defaultValue 30000 */
  readonly stableAfterMs: number;
}

export const DEFAULT_RESTART_BOUNDS: RestartBounds = Object.freeze({ maxAttempts: 5, baseDelayMs: 1000, maxDelayMs: 30_000, stableAfterMs: 30_000 });

export function parseRestartPolicy(text: string): RestartPolicy {
  const m = /^(no|always|unless-stopped|on-failure)(?::(\d+))?$/.exec(text.trim());
  if (!m || (m[2] !== undefined && m[1] !== 'on-failure')) {
    throw new Error(`restart policy ${JSON.stringify(text)} is not one of no, always, unless-stopped, on-failure[:max-retries]`);
  }
  return m[2] === undefined ? { mode: m[1] as RestartMode } : { mode: 'on-failure', maxRetries: Number(m[2]) };
}

export interface ExitFacts {
  /** Exit code, or null when a signal ended the process. */
  readonly code: number | null;
  readonly signal: string | null;
  /** How long this run lasted. */
  readonly ranForMs: number;
  /** Consecutive restarts so far (0 after a stable run). */
  readonly attempts: number;
}

export type RestartDecision =
  | { readonly restart: true; readonly delayMs: number; readonly attempt: number; readonly of: number }
  | { readonly restart: false; readonly reason: string };

/**
 * Whether to restart a process that exited on its own (not because the runner stopped it), and after how long.
 * Exponential backoff from `baseDelayMs`, capped at `maxDelayMs`.
 */
export function decideRestart(policy: RestartPolicy, exit: ExitFacts, bounds: RestartBounds = DEFAULT_RESTART_BOUNDS): RestartDecision {
  const failed = exit.code !== 0;
  if (policy.mode === 'no') return { restart: false, reason: 'restart policy is "no"' };
  if (policy.mode === 'on-failure' && !failed) return { restart: false, reason: 'it exited 0 and the restart policy is on-failure' };
  const attemptsBefore = exit.ranForMs >= bounds.stableAfterMs ? 0 : exit.attempts;
  const limit = policy.maxRetries ?? bounds.maxAttempts;
  if (attemptsBefore >= limit) {
    return { restart: false, reason: `gave up after ${limit} consecutive restart${limit === 1 ? '' : 's'}` };
  }
  const attempt = attemptsBefore + 1;
  const delayMs = exponentialDelay(attempt, bounds.baseDelayMs, bounds.maxDelayMs);
  return { restart: true, delayMs, attempt, of: limit };
}
