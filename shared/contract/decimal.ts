import DecimalJs from 'decimal.js';

/**
 * Exact decimal arithmetic for prices. Uphold sends up to 18 decimal places; products of two such numbers need at most
 * ~80 significant digits, so 200 digits of precision make every addition and multiplication in the detector exact.
 * Only division (change percent, mid price) rounds, and those results are not used in the alert decision.
 */
export const Decimal = DecimalJs.clone({ precision: 200, rounding: DecimalJs.ROUND_HALF_EVEN, toExpNeg: -100, toExpPos: 100 });
export type Decimal = DecimalJs;

/** Unsigned decimal in plain notation: digits, an optional fraction. No exponent, no sign, no spaces. */
export const UNSIGNED_DECIMAL_RE = /^\d{1,30}(\.\d{1,30})?$/;
/** Signed decimal in plain notation. */
export const SIGNED_DECIMAL_RE = /^-?\d{1,40}(\.\d{1,30})?$/;

/** Parses a plain unsigned decimal string that must be strictly positive; returns null when it is not one. */
export function parsePositiveDecimal(text: unknown): Decimal | null {
  if (typeof text !== 'string' || !UNSIGNED_DECIMAL_RE.test(text)) return null;
  const value = new Decimal(text);
  return value.isFinite() && value.gt(0) ? value : null;
}

/** Plain-notation string of a decimal, never in exponent form, trailing zeros kept as given by `toFixed(dp)` if set. */
export function formatDecimal(value: Decimal, decimalPlaces?: number): string {
  return decimalPlaces === undefined ? value.toFixed() : value.toFixed(decimalPlaces);
}
