import type { Direction, PriceField, ReferenceMode } from '../shared/contract/alert';
import { Decimal, formatDecimal, parsePositiveDecimal } from '../shared/contract/decimal';

/**
 * The oscillation decision: a pure function of (reference, ticker quote, settings). No I/O, no clock, no floats.
 *
 * Rule: with reference `ref` and price `p`, alert iff `|p - ref| * 100 >= threshold * ref`.
 * Both sides are products of exact decimals, so decimal.js at 200 digits computes them without rounding; equality alerts.
 */

/** The bot settings the decision depends on. */
export interface DetectorSettings {
  /** Threshold in percent, as an exact decimal string ("0.01" means 0.01 %). */
  readonly thresholdPercent: string;
  /** Which quote field is the price: ask, bid, or mid = (ask + bid) / 2. */
  readonly priceField: PriceField;
  /** `first`: the reference never moves. `last-alert`: after an alert the reference becomes the alerted price. */
  readonly referenceMode: ReferenceMode;
}

/** The ticker's answer as received: `ask` and `bid` should be plain positive decimal strings, but are not trusted. */
export interface Quote {
  readonly ask: unknown;
  readonly bid: unknown;
}

/** Digits kept in `changePercent`. Truncated toward zero so that the shown value reaches the threshold iff it alerted. */
export const CHANGE_PERCENT_DECIMALS = 18;

export type Decision =
  /** Not a price: neither alerts nor moves the reference. */
  | { readonly kind: 'invalid'; readonly reason: string; readonly nextReference: string | null }
  /** First valid price: it becomes the reference; never an alert. */
  | { readonly kind: 'reference-set'; readonly price: string; readonly nextReference: string }
  /** Inside the band. */
  | { readonly kind: 'quiet'; readonly price: string; readonly referencePrice: string; readonly changePercent: string; readonly nextReference: string }
  /** At or beyond the threshold. */
  | {
      readonly kind: 'alert';
      readonly price: string;
      readonly referencePrice: string;
      readonly direction: Direction;
      /** Signed, (p - ref) / ref * 100, 18 decimal places. */
      readonly changePercent: string;
      readonly nextReference: string;
    };

/** Picks the configured price out of a quote, exactly. Both fields must be valid: a quote with a broken half is a bad answer. */
export function selectPrice(quote: Quote, field: PriceField): { ok: true; price: Decimal } | { ok: false; reason: string } {
  const ask = parsePositiveDecimal(quote.ask);
  if (ask === null) return { ok: false, reason: `ask is not a positive plain decimal string (got ${describeValue(quote.ask)})` };
  const bid = parsePositiveDecimal(quote.bid);
  if (bid === null) return { ok: false, reason: `bid is not a positive plain decimal string (got ${describeValue(quote.bid)})` };
  switch (field) {
    case 'ask':
      return { ok: true, price: ask };
    case 'bid':
      return { ok: true, price: bid };
    case 'mid':
      // Halving a decimal with n fraction digits needs at most n + 1 digits: exact.
      return { ok: true, price: ask.plus(bid).div(2) };
  }
}

/**
 * Decides what one ticker answer means for a bot whose current reference is `reference` (null before the first price).
 * `thresholdPercent` is trusted to be a valid positive decimal (the config loader checked it).
 */
export function decide(reference: string | null, quote: Quote, settings: DetectorSettings): Decision {
  const selected = selectPrice(quote, settings.priceField);
  if (!selected.ok) return { kind: 'invalid', reason: selected.reason, nextReference: reference };
  const p = selected.price;
  const price = formatDecimal(p);
  if (reference === null) return { kind: 'reference-set', price, nextReference: price };

  const ref = new Decimal(reference);
  const threshold = new Decimal(settings.thresholdPercent);
  const diff = p.minus(ref);
  const changePercent = formatChange(diff.times(100).div(ref));
  if (diff.abs().times(100).gte(threshold.times(ref))) {
    return {
      kind: 'alert',
      price,
      referencePrice: reference,
      direction: diff.gt(0) ? 'up' : 'down',
      changePercent,
      nextReference: settings.referenceMode === 'last-alert' ? price : reference,
    };
  }
  return { kind: 'quiet', price, referencePrice: reference, changePercent, nextReference: reference };
}

/** `changePercent` as alerts carry it: 18 decimal places, truncated toward zero, never "-0.000...". */
export function formatChange(value: Decimal): string {
  const text = value.toDecimalPlaces(CHANGE_PERCENT_DECIMALS, Decimal.ROUND_DOWN).toFixed(CHANGE_PERCENT_DECIMALS);
  // A tiny negative move truncates to zero; "-0.000..." would read as a direction.
  return /^-0\.0+$/.test(text) ? text.slice(1) : text;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = typeof value === 'string' ? JSON.stringify(value) : `${typeof value} ${JSON.stringify(value) ?? String(value)}`;
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
