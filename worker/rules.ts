import type { Direction, Rule } from '../shared/contract/alert';
import { Decimal, formatDecimal } from '../shared/contract/decimal';
import { decide, formatChange, selectPrice, type DetectorSettings, type Quote } from './detector';

/**
 * The alert rules around the oscillation decision: which move counts (`reference` or `window`), how long it must last
 * (`pendingPolls`), how often a direction may alert (`cooldownMs`) and when the bot is done (`maxAlerts`, `expiresAt`).
 *
 * `evaluate` is a pure function of (state, quote, time, settings): no I/O, no clock (the observation's time comes in as
 * an argument), decimals only. The worker keeps the state between polls and publishes what it returns.
 *
 * - `reference`: today's rule, `|p - ref| * 100 >= threshold * ref` (see detector.ts), the first valid price sets the
 *   reference; in `last-alert` mode the reference moves to the alerted price, and only with a published alert (a
 *   suppressed one leaves it).
 * - `window`: over the valid prices observed at `at - windowMs <= t <= at` (the current one included), with lo = min and
 *   hi = max: `up` iff `(p - lo) * 100 >= threshold * lo`, `down` iff `(hi - p) * 100 >= threshold * hi`; the alert's
 *   reference price is lo (up) or hi (down). If both hold, the larger absolute price change (`p - lo` against `hi - p`)
 *   wins; a tie is `up`. After a published alert the window restarts at p. `referenceMode` plays no part.
 * - `pendingPolls` k: the condition must hold, in the same direction, on k consecutive valid polls; the alert carries the
 *   k-th price (and that poll's reference and change). A quiet poll or a turn of direction starts the count again. An
 *   invalid answer is not a poll of the price: it neither counts toward the streak nor breaks it (the price was not
 *   seen, so nothing says the move stopped), and it never alerts, moves the reference or enters the window.
 * - `cooldownMs`: after a published alert in a direction, an alert in that direction before `last + cooldownMs` is
 *   suppressed: counted in `suppressed`, not published, and the streak starts again. At exactly `last + cooldownMs` it
 *   alerts again.
 * - `maxAlerts` (null: unlimited) and `expiresAt` (epoch ms, null: never): once `alertsPublished >= maxAlerts` the bot is
 *   `exhausted`, from `at >= expiresAt` it is `expired`; either way it no longer alerts.
 */

export const FINISHED_REASONS = ['exhausted', 'expired'] as const;
export type FinishedReason = (typeof FINISHED_REASONS)[number];

export interface RuleSettings extends DetectorSettings {
  /** @defaultValue "reference" */
  readonly rule: Rule;
  /** The window's length (ms); required by `window`. */
  readonly windowMs: number | null;
  /** @defaultValue 1 */
  readonly pendingPolls: number;
  /** @defaultValue 0 */
  readonly cooldownMs: number;
  /** @defaultValue null (unlimited) */
  readonly maxAlerts: number | null;
  /** Epoch ms. @defaultValue null (never) */
  readonly expiresAt: number | null;
}

/** Settings that are today's behaviour: rule `reference`, no pending period, no cooldown, no limit, no expiry. */
export const DEFAULT_RULE_SETTINGS = Object.freeze({ rule: 'reference', windowMs: null, pendingPolls: 1, cooldownMs: 0, maxAlerts: null, expiresAt: null } as const);

/** One valid price in the window. */
export interface WindowPoint {
  readonly at: number;
  readonly price: string;
}

export interface RuleState {
  /** `reference` rule: the reference price; null before the first valid price. */
  readonly reference: string | null;
  /**
   * `window` rule: the candidates for lo, oldest first, prices strictly increasing (a price with a lower or equal one
   * after it can never be the minimum again), and for hi likewise with prices strictly decreasing. Their first entries
   * are lo and hi; each holds at most the points of one window.
   */
  readonly lows: readonly WindowPoint[];
  readonly highs: readonly WindowPoint[];
  /** The current streak of polls on which the condition held, or null. */
  readonly pending: { readonly direction: Direction; readonly count: number } | null;
  /** When the last published alert of each direction was observed (epoch ms), for the cooldown. */
  readonly lastAlertAt: { readonly up: number | null; readonly down: number | null };
  /** Alerts published over the bot's life (restored from Redis after a restart). */
  readonly alertsPublished: number;
  /** Alerts the cooldown suppressed (this process). */
  readonly suppressed: number;
}

export const INITIAL_RULE_STATE: RuleState = Object.freeze({ reference: null, lows: [], highs: [], pending: null, lastAlertAt: Object.freeze({ up: null, down: null }), alertsPublished: 0, suppressed: 0 });

/** A move at or beyond the threshold. */
export interface RuleMove {
  readonly price: string;
  readonly referencePrice: string;
  readonly direction: Direction;
  /** Signed, (p - ref) / ref * 100, 18 decimal places, truncated toward zero. */
  readonly changePercent: string;
}

export type RuleOutcome =
  /** Not a price: nothing changes but the time. */
  | { readonly kind: 'invalid'; readonly reason: string }
  /** The bot is done: nothing more is evaluated. */
  | { readonly kind: 'finished'; readonly reason: FinishedReason }
  /** The first valid price of the `reference` rule: it becomes the reference. */
  | { readonly kind: 'reference-set'; readonly price: string }
  /** Inside the band. `referencePrice` and `changePercent` only for the `reference` rule. */
  | { readonly kind: 'quiet'; readonly price: string; readonly referencePrice?: string; readonly changePercent?: string }
  /** The condition holds, `count` of `pendingPolls` polls so far. */
  | ({ readonly kind: 'pending'; readonly count: number } & RuleMove)
  /** The condition held long enough but the direction is cooling down. */
  | ({ readonly kind: 'suppressed'; readonly cooldownUntil: number } & RuleMove)
  /** Publish this. `finished` is set when this alert used up `maxAlerts`. */
  | ({ readonly kind: 'alert'; readonly finished?: FinishedReason } & RuleMove);

export interface Evaluation {
  readonly outcome: RuleOutcome;
  readonly state: RuleState;
}

/** Why the bot no longer alerts at time `at`, or null while it does. */
export function finishedReason(state: RuleState, settings: Pick<RuleSettings, 'maxAlerts' | 'expiresAt'>, at: number): FinishedReason | null {
  if (settings.maxAlerts !== null && state.alertsPublished >= settings.maxAlerts) return 'exhausted';
  if (settings.expiresAt !== null && at >= settings.expiresAt) return 'expired';
  return null;
}

/** Evaluates one ticker answer observed at `at` (epoch ms). `thresholdPercent` is trusted (the config loader checked it). */
export function evaluate(state: RuleState, quote: Quote, at: number, settings: RuleSettings): Evaluation {
  const finished = finishedReason(state, settings, at);
  if (finished) return { outcome: { kind: 'finished', reason: finished }, state };
  const selected = selectPrice(quote, settings.priceField);
  if (!selected.ok) return { outcome: { kind: 'invalid', reason: selected.reason }, state };
  const p = selected.price;

  let condition: { move: RuleMove | null; quiet: Extract<RuleOutcome, { kind: 'quiet' | 'reference-set' }> };
  let next: RuleState;
  if (settings.rule === 'window') {
    const windowed = addToWindow(state, { at, price: formatDecimal(p) }, windowLength(settings));
    next = { ...state, ...windowed };
    condition = { move: windowMove(p, windowed.lows[0]!.price, windowed.highs[0]!.price, settings.thresholdPercent), quiet: { kind: 'quiet', price: formatDecimal(p) } };
  } else {
    // The bare decision with a fixed reference: the reference moves here, and only with a published alert.
    const decision = decide(state.reference, quote, { ...settings, referenceMode: 'first' });
    if (decision.kind === 'invalid') return { outcome: { kind: 'invalid', reason: decision.reason }, state };
    if (decision.kind === 'reference-set') return { outcome: { kind: 'reference-set', price: decision.price }, state: { ...state, reference: decision.price } };
    next = state;
    condition =
      decision.kind === 'alert'
        ? { move: { price: decision.price, referencePrice: decision.referencePrice, direction: decision.direction, changePercent: decision.changePercent }, quiet: { kind: 'quiet', price: decision.price } }
        : { move: null, quiet: { kind: 'quiet', price: decision.price, referencePrice: decision.referencePrice, changePercent: decision.changePercent } };
  }

  const { move } = condition;
  if (move === null) return { outcome: condition.quiet, state: { ...next, pending: null } };
  const count = next.pending?.direction === move.direction ? next.pending.count + 1 : 1;
  if (count < settings.pendingPolls) return { outcome: { kind: 'pending', count, ...move }, state: { ...next, pending: { direction: move.direction, count } } };

  const last = next.lastAlertAt[move.direction];
  if (settings.cooldownMs > 0 && last !== null && at < last + settings.cooldownMs) {
    return { outcome: { kind: 'suppressed', cooldownUntil: last + settings.cooldownMs, ...move }, state: { ...next, pending: null, suppressed: next.suppressed + 1 } };
  }
  const published: RuleState = {
    ...next,
    pending: null,
    lastAlertAt: { ...next.lastAlertAt, [move.direction]: at },
    alertsPublished: next.alertsPublished + 1,
    ...(settings.rule === 'window'
      ? { lows: [{ at, price: move.price }], highs: [{ at, price: move.price }] }
      : settings.referenceMode === 'last-alert'
        ? { reference: move.price }
        : {}),
  };
  const nowFinished = finishedReason(published, settings, at);
  return { outcome: { kind: 'alert', ...move, ...(nowFinished ? { finished: nowFinished } : {}) }, state: published };
}

/**
 * The state after the bot's settings changed from `previous` to `next`: another price field or another rule starts the
 * rule afresh (a reference or a window in one field says nothing about another); the alert count and the cooldown
 * times always carry over (they are about what was published, whatever the rule).
 */
export function carryOver(state: RuleState, previous: RuleSettings, next: RuleSettings): RuleState {
  if (previous.priceField === next.priceField && previous.rule === next.rule) return state;
  return { ...state, reference: null, lows: [], highs: [], pending: null };
}

function windowLength(settings: RuleSettings): number {
  if (settings.windowMs === null) throw new Error('the window rule needs windowMs (the config loader requires it)');
  return settings.windowMs;
}

/** Adds a point to the monotonic candidate lists and drops what fell out of the window `[at - windowMs, at]`. */
function addToWindow(state: RuleState, point: WindowPoint, windowMs: number): Pick<RuleState, 'lows' | 'highs'> {
  const p = new Decimal(point.price);
  const from = point.at - windowMs;
  const lows = state.lows.filter((x) => x.at >= from);
  while (lows.length > 0 && new Decimal(lows[lows.length - 1]!.price).gte(p)) lows.pop();
  lows.push(point);
  const highs = state.highs.filter((x) => x.at >= from);
  while (highs.length > 0 && new Decimal(highs[highs.length - 1]!.price).lte(p)) highs.pop();
  highs.push(point);
  return { lows, highs };
}

/** The window rule's move for price p with window extremes lo and hi, or null inside the band. */
export function windowMove(p: Decimal, loText: string, hiText: string, thresholdPercent: string): RuleMove | null {
  const lo = new Decimal(loText);
  const hi = new Decimal(hiText);
  const threshold = new Decimal(thresholdPercent);
  const rise = p.minus(lo);
  const fall = hi.minus(p);
  const up = rise.times(100).gte(threshold.times(lo));
  const down = fall.times(100).gte(threshold.times(hi));
  if (!up && !down) return null;
  const price = formatDecimal(p);
  if (up && (!down || rise.gte(fall))) return { price, referencePrice: formatDecimal(lo), direction: 'up', changePercent: formatChange(rise.times(100).div(lo)) };
  return { price, referencePrice: formatDecimal(hi), direction: 'down', changePercent: formatChange(fall.neg().times(100).div(hi)) };
}
