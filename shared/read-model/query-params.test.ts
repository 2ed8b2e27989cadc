import fc from 'fast-check';
import { BadRequestError } from './bad-request';
import { ALERT_LIST_PARAMS, decodeCursor, encodeCursor, parseDuration, parseInstant, parseParams } from './query-params';

/** Parameter parsing in isolation: times, durations, cursors, and that nothing but a BadRequestError ever escapes. */

const NOW = Date.parse('2026-11-29T12:00:00.000Z');

describe('parseInstant', () => {
  it.each([
    ['2026-11-29', '2026-11-29T00:00:00Z'],
    ['2026-11-29T10:15:00Z', '2026-11-29T10:15:00Z'],
    ['2026-11-29T10:15:00.123456Z', '2026-11-29T10:15:00.123456Z'],
    ['2026-11-29 10:15:00+0100', '2026-11-29T10:15:00+01:00'],
    ['2024-02-29T00:00Z', '2024-02-29T00:00Z'],
  ])('reads %s exactly (as %s for Postgres)', (text, iso) => {
    expect(parseInstant(text, NOW)?.iso).toBe(iso);
  });

  it('reads relative times as that long before now', () => {
    expect(parseInstant('20m', NOW)).toEqual({ iso: '2026-11-29T11:40:00.000Z', ms: NOW - 20 * 60_000 });
    expect(parseInstant('7d', NOW)?.iso).toBe('2026-11-22T12:00:00.000Z');
  });

  it.each(['2026-02-30', '2025-02-29', '2026-11-29T10:15:00', '2026-11-29T24:00:00Z', '1969-12-31', '29/11/2026', 'now', '0m', '', '2026-11-29T10:15:00+15:00'])(
    'refuses %j',
    (text) => {
      expect(parseInstant(text, NOW)).toBeNull();
    },
  );
});

describe('parseDuration', () => {
  it('reads units from ms to weeks and refuses zero, junk and absurd lengths', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('2w')).toBe(14 * 86_400_000);
    expect(parseDuration('0h')).toBeNull();
    expect(parseDuration('1y')).toBeNull();
    expect(parseDuration('99999d')).toBeNull();
  });
});

describe('cursors', () => {
  it('round-trip and refuse any tampering', () => {
    const cursor = { ordering: '-change_percent' as const, key: '-0.153846153846153846', id: '0b6f2f4e-3c1a-4d5e-9f00-1a2b3c4d5e6f' };
    expect(decodeCursor(encodeCursor(cursor))).toEqual(cursor);
    const forged = Buffer.from(JSON.stringify({ v: 1, o: '-observed_at', k: "1'; DROP TABLE alerts; --", id: cursor.id })).toString('base64url');
    expect(decodeCursor(forged)).toBeNull();
    // A change key under a time ordering is refused, not sent to Postgres as a timestamp.
    expect(decodeCursor(encodeCursor({ ...cursor, ordering: '-observed_at' }))).toBeNull();
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (junk) => {
        const decoded = decodeCursor(junk);
        if (decoded) expect(encodeCursor(decoded)).toBeTruthy();
      }),
    );
  });
});

describe('parseParams', () => {
  it('never throws anything but a BadRequestError, whatever the query object holds', () => {
    const value = fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 60 }), fc.constant(undefined), fc.integer(), fc.object());
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...ALERT_LIST_PARAMS, 'x', '__proto__', 'constructor'), value), (query) => {
        try {
          parseParams(ALERT_LIST_PARAMS, query, NOW);
        } catch (err) {
          expect(err).toBeInstanceOf(BadRequestError);
          expect((err as BadRequestError).toJSON()).toMatchObject({ error: 'bad_request', parameter: expect.any(String) });
        }
      }),
      { numRuns: 2000 },
    );
  });
});
