import fc from 'fast-check';
import { DateTime } from 'luxon';
import { quietPeriodEnd, receiverMatches } from './routing';

const alert = (pair: string, direction: 'up' | 'down', changePercent: string) => ({ pair, direction, changePercent });

describe('which alerts a receiver matches', () => {
  it('takes every alert with an empty match', () => {
    expect(receiverMatches({}, alert('BTC-USD', 'down', '-0.01'))).toBe(true);
  });

  it('takes only the listed pairs and directions', () => {
    const match = { pairs: ['BTC-USD'], directions: ['up' as const] };
    expect(receiverMatches(match, alert('BTC-USD', 'up', '1'))).toBe(true);
    expect(receiverMatches(match, alert('BTC-USD', 'down', '-1'))).toBe(false);
    expect(receiverMatches(match, alert('ETH-USD', 'up', '1'))).toBe(false);
  });

  it('compares |change_percent| with min_change exactly, the boundary included', () => {
    const match = { min_change: '1' };
    expect(receiverMatches(match, alert('ETH-USD', 'up', '1.000000000000000000'))).toBe(true);
    expect(receiverMatches(match, alert('ETH-USD', 'down', '-1'))).toBe(true);
    expect(receiverMatches(match, alert('ETH-USD', 'up', '0.999999999999999999'))).toBe(false);
    expect(receiverMatches(match, alert('ETH-USD', 'down', '-0.999999999999999999'))).toBe(false);
    // 0.1 + 0.2 style float traps do not apply: 0.3 is 0.3.
    expect(receiverMatches({ min_change: '0.3' }, alert('ETH-USD', 'up', '0.300000000000000000'))).toBe(true);
  });
});

describe('quiet hours', () => {
  const at = (iso: string, zone: string) => DateTime.fromISO(iso, { zone }).toJSDate();

  it('holds within a period that crosses midnight, until its end on the next local day', () => {
    const q = { start: '22:00', end: '07:00', tz: 'Europe/Lisbon' };
    expect(quietPeriodEnd(q, at('2026-12-02T21:59:59', q.tz))).toBeNull();
    expect(quietPeriodEnd(q, at('2026-12-02T22:00', q.tz))?.toISOString()).toBe('2026-12-03T07:00:00.000Z');
    expect(quietPeriodEnd(q, at('2026-12-03T03:00', q.tz))?.toISOString()).toBe('2026-12-03T07:00:00.000Z');
    expect(quietPeriodEnd(q, at('2026-12-03T07:00', q.tz))).toBeNull();
  });

  it('holds within a same-day period in the receiver zone, not in UTC', () => {
    const q = { start: '09:00', end: '17:30', tz: 'America/New_York' };
    expect(quietPeriodEnd(q, new Date('2026-12-02T13:59:00Z'))).toBeNull(); // 08:59 in New York
    expect(quietPeriodEnd(q, new Date('2026-12-02T14:00:00Z'))?.toISOString()).toBe('2026-12-02T22:30:00.000Z');
  });

  it('ends at the local time across the spring-forward night (a 7-hour wall-clock night lasts 6 hours)', () => {
    // Europe/Lisbon goes from 01:00 WET to 02:00 WEST on 2027-03-28.
    const q = { start: '22:00', end: '05:00', tz: 'Europe/Lisbon' };
    const start = at('2027-03-27T22:00', q.tz);
    const end = quietPeriodEnd(q, start)!;
    expect(end.toISOString()).toBe('2027-03-28T04:00:00.000Z'); // 05:00 WEST
    expect(end.getTime() - start.getTime()).toBe(6 * 3600_000);
  });

  it('ends at the local time across the fall-back night (the night lasts an hour longer)', () => {
    // Europe/Lisbon goes from 02:00 WEST back to 01:00 WET on 2026-10-25.
    const q = { start: '22:00', end: '05:00', tz: 'Europe/Lisbon' };
    const start = at('2026-10-24T22:00', q.tz);
    const end = quietPeriodEnd(q, start)!;
    expect(end.toISOString()).toBe('2026-10-25T05:00:00.000Z');
    expect(end.getTime() - start.getTime()).toBe(8 * 3600_000);
    // Inside the repeated hour (01:30 WET, the second one) it is still quiet.
    expect(quietPeriodEnd(q, new Date('2026-10-25T01:30:00Z'))?.toISOString()).toBe(end.toISOString());
  });

  it('a start inside the skipped hour is taken as the same time after the gap (01:30 that night is 02:30)', () => {
    const q = { start: '01:30', end: '03:00', tz: 'Europe/Lisbon' };
    // 02:29 WEST (01:29Z) is not quiet yet; 02:30 WEST (01:30Z) is, until 03:00 WEST.
    expect(quietPeriodEnd(q, new Date('2027-03-28T01:29:00Z'))).toBeNull();
    expect(quietPeriodEnd(q, new Date('2027-03-28T01:30:00Z'))?.toISOString()).toBe('2027-03-28T02:00:00.000Z');
  });

  const zones = ['UTC', 'Europe/Lisbon', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata', 'America/Santiago'];
  const hhmm = fc.tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 })).map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`);

  it('property: an end is later than now, at most a day and an hour away, and its local time is the configured end or just past a gap', () => {
    fc.assert(
      fc.property(hhmm, hhmm, fc.constantFrom(...zones), fc.integer({ min: Date.parse('2026-01-01'), max: Date.parse('2028-12-31') }), (start, end, tz, ms) => {
        fc.pre(start !== end);
        const now = new Date(ms);
        const q = { start, end, tz };
        const until = quietPeriodEnd(q, now);
        const local = DateTime.fromJSDate(now, { zone: tz }).toFormat('HH:mm');
        const inside = end > start ? local >= start && local < end : local >= start || local < end;
        if (until === null) {
          // Outside, save for wall-clock times that do not exist today (a gap) or the repeated hour.
          return !inside || Math.abs(DateTime.fromJSDate(now, { zone: tz }).offset - DateTime.fromJSDate(new Date(ms - 86_400_000), { zone: tz }).offset) > 0;
        }
        const untilLocal = DateTime.fromJSDate(until, { zone: tz }).toFormat('HH:mm');
        return until.getTime() > ms && until.getTime() - ms <= 25 * 3600_000 && (untilLocal === end || DateTime.fromJSDate(until, { zone: tz }).offset !== DateTime.fromJSDate(new Date(until.getTime() - 3 * 3600_000), { zone: tz }).offset);
      }),
      { numRuns: 3000 },
    );
  });
});
