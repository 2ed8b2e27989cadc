import fc from 'fast-check';
import { BadRequestError } from './bad-request';
import { ALERT_LIST_PARAMS, decodeCursor, encodeCursor, ORDERINGS, parseDuration, parseInstant, parseParams } from './query-params';

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
  /** observed_at as the queries render it: UTC, microseconds. */
  const timeKey = fc
    .tuple(fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }), fc.integer({ min: 0, max: 999 }))
    .map(([d, us]) => d.toISOString().replace('Z', `${String(us).padStart(3, '0')}Z`));
  /** change_percent as numeric(38,18) renders it. */
  const changeKey = fc
    .tuple(fc.boolean(), fc.bigInt({ min: 0n, max: 10n ** 20n - 1n }), fc.option(fc.stringMatching(/^\d{1,18}$/), { nil: undefined }))
    .map(([negative, int, frac]) => `${negative ? '-' : ''}${int}${frac === undefined ? '' : `.${frac}`}`);
  const cursorArb = fc
    .constantFrom(...ORDERINGS)
    .chain((ordering) => fc.record({ ordering: fc.constant(ordering), key: ordering.endsWith('observed_at') ? timeKey : changeKey, id: fc.uuid() }));

  it('decode(encode(c)) gives back every valid cursor, under every ordering', () => {
    fc.assert(
      fc.property(cursorArb, (cursor) => {
        const token = encodeCursor(cursor);
        expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
        expect(decodeCursor(token)).toEqual(cursor);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses a key of the other ordering, so a change key never reaches Postgres as a timestamp (and back)', () => {
    fc.assert(
      fc.property(cursorArb, (cursor) => {
        const other = cursor.ordering.endsWith('observed_at') ? '-change_percent' : '-observed_at';
        expect(decodeCursor(encodeCursor({ ...cursor, ordering: other }))).toBeNull();
      }),
      { numRuns: 300 },
    );
    const forged = Buffer.from(JSON.stringify({ v: 1, o: '-observed_at', k: "1'; DROP TABLE alerts; --", id: '0b6f2f4e-3c1a-4d5e-9f00-1a2b3c4d5e6f' })).toString('base64url');
    expect(decodeCursor(forged)).toBeNull();
  });

  it('refuses every truncation of a valid token and any field tampered out of its format', () => {
    fc.assert(
      fc.property(cursorArb, fc.nat(), (cursor, n) => {
        const token = encodeCursor(cursor);
        expect(decodeCursor(token.slice(0, n % token.length))).toBeNull();
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(cursorArb, fc.constantFrom('v', 'o', 'k', 'id'), fc.oneof(fc.string({ maxLength: 80 }), fc.integer(), fc.constant(null)), (cursor, field, junk) => {
        const fields: Record<string, unknown> = { v: 1, o: cursor.ordering, k: cursor.key, id: cursor.id, [field]: junk };
        const decoded = decodeCursor(Buffer.from(JSON.stringify(fields)).toString('base64url'));
        // Junk that happens to be a valid value for its field (a uuid, a decimal) may pass; then it is what was sent.
        if (decoded !== null) expect({ ordering: decoded.ordering, key: decoded.key, id: decoded.id }).toEqual({ ordering: fields.o, key: fields.k, id: String(fields.id).toLowerCase() });
        const valid =
          fields.v === 1 &&
          (ORDERINGS as readonly unknown[]).includes(fields.o) &&
          typeof fields.k === 'string' &&
          (String(fields.o).endsWith('observed_at') ? /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/.test(fields.k) && Number.isFinite(Date.parse(fields.k)) : /^-?\d{1,20}(\.\d{1,18})?$/.test(fields.k)) &&
          typeof fields.id === 'string' &&
          /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(fields.id);
        expect(decoded !== null).toBe(valid);
      }),
      { numRuns: 500 },
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
