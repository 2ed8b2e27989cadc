import fc from 'fast-check';
import { findInList, listEntriesFor, listNameOf } from './ticker-list';

const USD_LIST = [
  { ask: '6420.05', bid: '6419', currency: 'USD', pair: 'BTCUSD' },
  { ask: '0.000155787505842031', bid: '0.000155762026775492', currency: 'BTC', pair: 'USDBTC' },
  { ask: '1.2', bid: '1.1', currency: 'USD', pair: 'C-USD' },
  { ask: '410.5', bid: '410.1', currency: 'USD', pair: 'BRK.BUSD' },
];

describe('finding a pair in a currency list', () => {
  it('matches base+quote with the currency equal to the quote', () => {
    expect(findInList(USD_LIST, 'BTC-USD')).toEqual({ ok: true, ask: '6420.05', bid: '6419' });
  });
  it('accepts a hyphenated pair name and a one-letter asset code', () => {
    expect(findInList(USD_LIST, 'C-USD')).toEqual({ ok: true, ask: '1.2', bid: '1.1' });
  });
  it('never inverts the other direction to make a missing one', () => {
    // USD-BTC is the USDBTC entry (currency BTC) itself; without it, BTCUSD is never turned around to make it.
    expect(findInList(USD_LIST, 'USD-BTC')).toEqual({ ok: true, ask: '0.000155787505842031', bid: '0.000155762026775492' });
    expect(findInList(USD_LIST.filter((e) => e.pair !== 'USDBTC'), 'USD-BTC')).toBeUndefined();
    expect(findInList([{ ask: '0.0001', bid: '0.0001', currency: 'BTC', pair: 'USDBTC' }], 'BTC-USD')).toBeUndefined();
  });
  it('requires the currency to be the quote: a name that matches in another currency is not a price', () => {
    expect(findInList([{ ask: '1', bid: '1', currency: 'EUR', pair: 'BTCUSD' }], 'BTC-USD')).toBeUndefined();
  });
  it('never splits a concatenated name by length: BTCUSD is not B-TCUSD nor BT-CUSD', () => {
    expect(findInList(USD_LIST, 'B-TCUSD')).toBeUndefined();
    expect(findInList([{ ask: '1', bid: '1', currency: 'CUSD', pair: 'BTCUSD' }], 'BT-CUSD')).toEqual({ ok: true, ask: '1', bid: '1' });
    expect(findInList([{ ask: '1', bid: '1', currency: 'CUSD', pair: 'BTCUSD' }], 'BTC-USD')).toBeUndefined();
  });
  it('keeps an entry with a bad ask or bid as not a price, naming why', () => {
    expect(findInList([{ ask: '1e3', bid: '1', currency: 'USD', pair: 'BTCUSD' }], 'BTC-USD')).toEqual({ ok: false, reason: expect.stringMatching(/BTCUSD: ask is not a positive plain decimal/) });
    expect(findInList([{ ask: '1', bid: '0', currency: 'USD', pair: 'BTCUSD' }], 'BTC-USD')).toMatchObject({ ok: false });
  });
  it('treats a name listed twice with different quotes as not a price', () => {
    const twice = [
      { ask: '1', bid: '1', currency: 'USD', pair: 'BTCUSD' },
      { ask: '2', bid: '2', currency: 'USD', pair: 'BTC-USD' },
    ];
    expect(findInList(twice, 'BTC-USD')).toEqual({ ok: false, reason: 'list entry BTCUSD appears twice with different quotes' });
  });
  it('says why a body is not a list', () => {
    expect(listEntriesFor({ ask: '1', bid: '1' }, 'USD')).toEqual({ ok: false, reason: 'list body is an object, not an array' });
    expect(listEntriesFor(null, 'USD')).toEqual({ ok: false, reason: 'list body is null, not an array' });
    expect(listEntriesFor('x', 'USD')).toEqual({ ok: false, reason: 'list body is a string, not an array' });
  });
});

describe('hostile list bodies (property)', () => {
  const code = fc.stringMatching(/^[A-Z0-9]{1,6}$/);
  const decimalText = fc.oneof(fc.stringMatching(/^\d{1,8}(\.\d{1,18})?$/), fc.string(), fc.constantFrom('0', '-1', 'NaN', '1e5', ''));
  const anyValue = fc.oneof(decimalText, fc.integer(), fc.constant(null), fc.boolean(), fc.object());
  const entry = fc.record(
    { ask: anyValue, bid: anyValue, currency: fc.oneof(code, anyValue), pair: fc.oneof(code, fc.tuple(code, code).map(([a, b]) => `${a}${b}`), fc.tuple(code, code).map(([a, b]) => `${a}-${b}`), anyValue) },
    { requiredKeys: [] },
  );
  const body = fc.oneof(fc.array(fc.oneof(entry, anyValue), { maxLength: 30 }), anyValue);

  it('never throws, and a price found is always an entry of that exact name (hyphens removed) in the quote currency, with valid decimals', () => {
    fc.assert(
      fc.property(body, code, code, (data, base, quote) => {
        const pair = `${base}-${quote}`;
        const found = findInList(data, pair);
        if (found?.ok) {
          const sources = (data as Record<string, unknown>[]).filter(
            (e) => typeof e === 'object' && e !== null && typeof e.pair === 'string' && e.pair.replace(/-/g, '') === listNameOf(pair) && e.currency === quote,
          );
          expect(sources.length).toBeGreaterThan(0);
          expect(sources.every((e) => e.ask === found.ask && e.bid === found.bid)).toBe(true);
          expect(found.ask).toMatch(/^\d+(\.\d{1,18})?$/);
          expect(found.bid).toMatch(/^\d+(\.\d{1,18})?$/);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('finds a valid entry wherever it sits among hostile ones, and never via the other direction', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 20 }), code, code, fc.nat(), (noise, base, quote, at) => {
        fc.pre(base !== quote);
        const name = `${base}${quote}`;
        const others = noise.filter((e) => typeof e.pair !== 'string' || (e.pair as string).replace(/-/g, '') !== name);
        const withInverse = [...others, { ask: '2', bid: '1', currency: base, pair: `${quote}${base}` }];
        expect(findInList(withInverse, `${base}-${quote}`)?.ok ?? false).toBe(false);
        const list = [...withInverse];
        list.splice(at % (list.length + 1), 0, { ask: '10.5', bid: '10.25', currency: quote, pair: name });
        expect(findInList(list, `${base}-${quote}`)).toEqual({ ok: true, ask: '10.5', bid: '10.25' });
      }),
      { numRuns: 1000 },
    );
  });
});
