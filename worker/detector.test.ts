import fc from 'fast-check';
import { decide, selectPrice, type DetectorSettings, type Quote } from './detector';

const settings = (over: Partial<DetectorSettings> = {}): DetectorSettings => ({
  thresholdPercent: '0.01',
  priceField: 'ask',
  referenceMode: 'last-alert',
  ...over,
});
const q = (ask: unknown, bid: unknown = ask): Quote => ({ ask, bid });

describe('detector', () => {
  describe('the first valid price', () => {
    it('becomes the reference and never alerts', () => {
      expect(decide(null, q('100'), settings())).toEqual({ kind: 'reference-set', price: '100', nextReference: '100' });
    });
    it('is taken after invalid answers, which leave no reference', () => {
      expect(decide(null, q('0'), settings())).toMatchObject({ kind: 'invalid', nextReference: null });
      expect(decide(null, q('250.5'), settings())).toMatchObject({ kind: 'reference-set', nextReference: '250.5' });
    });
  });

  describe('at the exact boundary (threshold 0.01 %)', () => {
    it('alerts on 100 -> 100.01 (equality alerts)', () => {
      expect(decide('100', q('100.01'), settings())).toEqual({
        kind: 'alert',
        price: '100.01',
        referencePrice: '100',
        direction: 'up',
        changePercent: '0.010000000000000000',
        nextReference: '100.01',
      });
    });
    it('stays quiet on 100 -> 100.00999999', () => {
      expect(decide('100', q('100.00999999'), settings())).toEqual({
        kind: 'quiet',
        price: '100.00999999',
        referencePrice: '100',
        changePercent: '0.009999990000000000',
        nextReference: '100',
      });
    });
    it('alerts on a down move to exactly 99.99, with a negative change', () => {
      expect(decide('100', q('99.99'), settings())).toMatchObject({ kind: 'alert', direction: 'down', changePercent: '-0.010000000000000000' });
    });
    it('stays quiet on a down move to 99.990000000000000001', () => {
      expect(decide('100', q('99.990000000000000001'), settings())).toMatchObject({ kind: 'quiet', changePercent: '-0.009999999999999999' });
    });
    it('stays quiet when the price does not move', () => {
      expect(decide('100', q('100.000'), settings())).toMatchObject({ kind: 'quiet', changePercent: '0.000000000000000000' });
    });
  });

  describe('with 18-decimal prices', () => {
    it('decides exactly where a float would not', () => {
      // ref * 1.0001 exactly: alert. One unit in the 18th place less: quiet.
      const ref = '6.356066865823428462';
      expect(decide(ref, q('6.356702472510010804'), settings())).toMatchObject({ kind: 'quiet' });
      expect(decide(ref, q('6.356702472510010805'), settings())).toMatchObject({ kind: 'alert', direction: 'up' });
      // The exact boundary ref * 1.0001 alerts; one unit below it does not.
      expect(decide(ref, q('6.3567024725100108048462'), settings())).toMatchObject({ kind: 'alert', changePercent: '0.010000000000000000' });
      expect(decide(ref, q('6.3567024725100108048461'), settings())).toMatchObject({ kind: 'quiet' });
    });
    it('handles tiny prices like 0.000000012345678912', () => {
      const ref = '0.000000012345678912';
      expect(decide(ref, q('0.000000012346913479'), settings())).toMatchObject({ kind: 'quiet' });
      expect(decide(ref, q('0.000000012346913480'), settings())).toMatchObject({ kind: 'alert', direction: 'up', price: '0.00000001234691348' });
      expect(decide(ref, q('0.000000012344444344'), settings())).toMatchObject({ kind: 'alert', direction: 'down' });
    });
    it('never prints a price in exponent notation', () => {
      const d = decide('0.000000000000000001', q('0.000000000000000002'), settings());
      expect(d).toMatchObject({ kind: 'alert', price: '0.000000000000000002', changePercent: '100.000000000000000000' });
    });
  });

  describe('price field', () => {
    it('uses the bid when asked to', () => {
      expect(decide('100', q('200', '100.01'), settings({ priceField: 'bid' }))).toMatchObject({ kind: 'alert', price: '100.01' });
    });
    it('uses the exact mid (ask + bid) / 2, even when it needs a 19th decimal', () => {
      expect(selectPrice(q('0.000000000000000003', '0.000000000000000002'), 'mid')).toMatchObject({ ok: true });
      const d = decide('100', q('100.010000000000000001', '100.01'), settings({ priceField: 'mid' }));
      expect(d).toMatchObject({ kind: 'alert', price: '100.0100000000000000005' });
      expect(decide('100', q('100.02', '99.999999'), settings({ priceField: 'mid' }))).toMatchObject({ kind: 'quiet', price: '100.0099995' });
    });
  });

  describe('reference modes', () => {
    const run = (mode: DetectorSettings['referenceMode'], prices: string[]) => {
      let ref: string | null = null;
      const alerts: string[] = [];
      for (const p of prices) {
        const d = decide(ref, q(p), settings({ referenceMode: mode, thresholdPercent: '1' }));
        if (d.kind === 'alert') alerts.push(`${d.direction} ${d.price} vs ${d.referencePrice}`);
        ref = d.nextReference;
      }
      return { alerts, ref };
    };
    const series = ['100', '101', '101.5', '102.02', '100', '99'];
    it('first: the reference never moves, every price outside the band alerts', () => {
      expect(run('first', series)).toEqual({ alerts: ['up 101 vs 100', 'up 101.5 vs 100', 'up 102.02 vs 100', 'down 99 vs 100'], ref: '100' });
    });
    it('last-alert: each alert moves the reference to the alerted price', () => {
      expect(run('last-alert', series)).toEqual({ alerts: ['up 101 vs 100', 'up 102.02 vs 101', 'down 100 vs 102.02', 'down 99 vs 100'], ref: '99' });
    });
  });

  describe('invalid answers never alert nor move the reference', () => {
    it.each([
      ['missing ask', { bid: '1' }, /ask/],
      ['zero', q('0.000'), /ask/],
      ['negative', q('-100'), /ask/],
      ['non-numeric', q('abc'), /ask/],
      ['a number instead of a string', q(100.5), /ask.*number/],
      ['exponent notation', q('1e5'), /ask/],
      ['leading plus', q('+5'), /ask/],
      ['spaces', q(' 5'), /ask/],
      ['NaN', q('NaN'), /ask/],
      ['Infinity', q('Infinity'), /ask/],
      ['a bad bid next to a good ask', q('200', 'x'), /bid/],
      ['null', q(null), /ask/],
      ['an object', q({ value: '5' }), /ask/],
    ])('%s', (_name, quote, reason) => {
      const d = decide('100', quote as Quote, settings());
      expect(d.kind).toBe('invalid');
      expect(d).toMatchObject({ nextReference: '100', reason: expect.stringMatching(reason) });
    });
  });
});

// ---- Property tests against an independent BigInt implementation. ----

/** A decimal string as an exact rational n / d with d = 10^k. */
function rational(text: string): { n: bigint; d: bigint } {
  const [int, frac = ''] = text.split('.');
  return { n: BigInt(`${int}${frac}`), d: 10n ** BigInt(frac.length) };
}

function referenceAlert(ref: string, ask: string, bid: string, threshold: string, field: 'ask' | 'bid' | 'mid'): 0 | 1 | -1 {
  const a = rational(ask);
  const b = rational(bid);
  let p: { n: bigint; d: bigint };
  if (field === 'ask') p = a;
  else if (field === 'bid') p = b;
  else p = { n: a.n * b.d + b.n * a.d, d: a.d * b.d * 2n };
  const r = rational(ref);
  const t = rational(threshold);
  // |p - r| * 100 >= t * r  <=>  |pn*rd - rn*pd| * 100 * td >= tn * rn * pd
  const diff = p.n * r.d - r.n * p.d;
  const abs = diff < 0n ? -diff : diff;
  if (abs * 100n * t.d >= t.n * r.n * p.d) return diff > 0n ? 1 : -1;
  return 0;
}

const decimalStringUpTo = (maxInt: number) =>
  fc
    .tuple(fc.bigInt({ min: 0n, max: BigInt(maxInt) }), fc.integer({ min: 0, max: 18 }), fc.bigInt({ min: 0n, max: 10n ** 18n - 1n }))
    .map(([int, dp, frac]) => (dp === 0 ? int.toString() : `${int}.${(frac % 10n ** BigInt(dp)).toString().padStart(dp, '0')}`))
    .filter((s) => /[1-9]/.test(s));
/** Positive decimals with up to 18 places, from tiny to large. */
const decimalString = (maxInt: number) => fc.oneof(decimalStringUpTo(0), decimalStringUpTo(9), decimalStringUpTo(maxInt));

/** A price near `base`: a relative move of up to +-20 % plus an absolute jitter in the last decimals, 18 places. */

const nearby = (base: string) =>
  fc.tuple(fc.bigInt({ min: -200_000n, max: 200_000n }), fc.bigInt({ min: -1000n, max: 1000n })).map(([ppm, jitter]) => {
    const r = rational(base);
    const scale = 10n ** 18n;
    const n = (r.n * scale * (1_000_000n + ppm)) / (r.d * 1_000_000n) + jitter;
    if (n <= 0n) return base;
    const s = n.toString().padStart(19, '0');
    return `${s.slice(0, -18)}.${s.slice(-18)}`;
  });

describe('detector properties (against BigInt arithmetic)', () => {
  const thresholds = fc.constantFrom('0.01', '0.5', '1', '0.000001', '12.345', '0.000000000000000001');
  const fields = fc.constantFrom<'ask' | 'bid' | 'mid'>('ask', 'bid', 'mid');

  it('alerts exactly when |p - ref| * 100 >= threshold * ref, with the right direction', () => {
    fc.assert(
      fc.property(
        decimalString(1_000_000).chain((ref) => fc.tuple(fc.constant(ref), nearby(ref), nearby(ref))),
        thresholds,
        fields,
        ([ref, ask, bid], threshold, field) => {
          const d = decide(ref, q(ask, bid), settings({ thresholdPercent: threshold, priceField: field }));
          const expected = referenceAlert(ref, ask, bid, threshold, field);
          if (expected === 0) return d.kind === 'quiet';
          return d.kind === 'alert' && d.direction === (expected > 0 ? 'up' : 'down');
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('keeps changePercent signed with the direction, and at or above the threshold exactly when it alerts', () => {
    fc.assert(
      fc.property(decimalString(100_000).chain((ref) => fc.tuple(fc.constant(ref), nearby(ref))), thresholds, ([ref, p], threshold) => {
        const d = decide(ref, q(p), settings({ thresholdPercent: threshold }));
        if (d.kind !== 'alert' && d.kind !== 'quiet') return false;
        const change = rational(d.changePercent.replace('-', ''));
        const t = rational(threshold);
        const reaches = change.n * t.d >= t.n * change.d;
        if (d.kind === 'quiet') return !reaches;
        return reaches && d.changePercent.startsWith('-') === (d.direction === 'down') && /^-?\d+\.\d{18}$/.test(d.changePercent);
      }),
      { numRuns: 1000 },
    );
  });

  it('moves the reference only after an alert in last-alert mode, never in first mode', () => {
    fc.assert(
      fc.property(fc.array(decimalString(1000), { minLength: 1, maxLength: 30 }), fc.constantFrom('first', 'last-alert') as fc.Arbitrary<'first' | 'last-alert'>, (prices, mode) => {
        let ref: string | null = null;
        let first: string | null = null;
        for (const p of prices) {
          const d = decide(ref, q(p), settings({ referenceMode: mode, thresholdPercent: '5' }));
          if (d.kind === 'reference-set') first = d.price;
          if (mode === 'first' && d.nextReference !== first) return false;
          if (mode === 'last-alert' && d.kind === 'quiet' && d.nextReference !== ref) return false;
          if (mode === 'last-alert' && d.kind === 'alert' && d.nextReference !== d.price) return false;
          ref = d.nextReference;
        }
        return true;
      }),
    );
  });

  it('never treats hostile input as a price', () => {
    const hostile = fc.oneof(
      fc.string(),
      fc.double().map(String),
      fc.double(),
      fc.constant(null),
      fc.constant(undefined),
      fc.constantFrom('0', '0.0', '-1', '1e3', '0x10', '', ' 1', '1 ', '1.', '.5', '١٢'),
    ).filter((v) => !(typeof v === 'string' && /^\d{1,30}(\.\d{1,30})?$/.test(v) && /[1-9]/.test(v)));
    fc.assert(
      fc.property(hostile, fields, (ask, field) => {
        const d = decide('100', q(ask, '100'), settings({ priceField: field === 'bid' ? 'ask' : field }));
        return d.kind === 'invalid' && d.nextReference === '100';
      }),
    );
  });
});
