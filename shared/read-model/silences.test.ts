import fc from 'fast-check';
import { BadRequestError } from './bad-request';
import { matchesAlert, parseMatchers, parseNewSilence, silenceState, silencingFor, type SilenceMatchers } from './silences';

const NOW = Date.parse('2026-12-02T18:00:00Z');
const H = 3_600_000;
const alert = { pair: 'BTC-USD', botId: 'btc-1', direction: 'up' };

/** The refusal `fn` throws, as the 400 body would name it. */
function refusal(fn: () => unknown): { parameter: string; allowed: unknown } {
  try {
    fn();
  } catch (err) {
    if (err instanceof BadRequestError) return { parameter: err.parameter, allowed: err.allowed };
    throw err;
  }
  throw new Error('expected a BadRequestError');
}

describe('the matcher', () => {
  it.each<[SilenceMatchers, boolean]>([
    [{ pair: 'BTC-USD' }, true],
    [{ pair: 'ETH-USD' }, false],
    [{ bot_id: 'btc-1' }, true],
    [{ bot_id: 'BTC-1' }, false],
    [{ direction: 'up' }, true],
    [{ direction: 'down' }, false],
    [{ pair: 'BTC-USD', bot_id: 'btc-1', direction: 'up' }, true],
    [{ pair: 'BTC-USD', bot_id: 'btc-2' }, false],
    [{ pair: 'BTC-USD', direction: 'down' }, false],
    [{}, false],
  ])('%j matches the BTC-USD up alert of btc-1: %s', (matchers, expected) => {
    expect(matchesAlert(matchers, alert)).toBe(expected);
  });

  it('matches exactly when every matcher given equals the alert field (property)', () => {
    const value = fc.constantFrom('BTC-USD', 'ETH-USD', 'btc-1', 'eth-1', 'up', 'down');
    fc.assert(
      fc.property(
        fc.record({ pair: value, bot_id: value, direction: value }, { requiredKeys: [] }),
        fc.record({ pair: value, botId: value, direction: value }),
        (m, a) => {
          const present = (['pair', 'bot_id', 'direction'] as const).filter((k) => m[k] !== undefined);
          const field = { pair: a.pair, bot_id: a.botId, direction: a.direction };
          const expected = present.length > 0 && present.every((k) => m[k] === field[k]);
          expect(matchesAlert(m as SilenceMatchers, a)).toBe(expected);
        },
      ),
    );
  });
});

describe('the state of a silence', () => {
  const window = { startsAt: NOW, endsAt: NOW + H, expiredAt: null };

  it('is pending before starts_at, active from it, expired from ends_at', () => {
    expect(silenceState(window, NOW - 1)).toBe('pending');
    expect(silenceState(window, NOW)).toBe('active');
    expect(silenceState(window, NOW + H - 1)).toBe('active');
    expect(silenceState(window, NOW + H)).toBe('expired');
  });

  it('is expired from an early expiry on, and a pending silence expired early never becomes active', () => {
    expect(silenceState({ ...window, expiredAt: NOW + 10 }, NOW + 9)).toBe('active');
    expect(silenceState({ ...window, expiredAt: NOW + 10 }, NOW + 10)).toBe('expired');
    expect(silenceState({ ...window, expiredAt: NOW - 10 }, NOW + 1)).toBe('expired');
    expect(silenceState({ ...window, expiredAt: NOW - 10 }, NOW - 20)).toBe('pending');
  });
});

describe('the silence that mutes an alert', () => {
  const s = (id: string, matchers: SilenceMatchers, startsAt: number, endsAt: number, expiredAt: number | null = null) => ({ id, matchers, startsAt, endsAt, expiredAt });

  it('is the first listed among those active at the alert observation and matching it', () => {
    const silences = [
      s('over', { pair: 'BTC-USD' }, NOW - 2 * H, NOW - H),
      s('other-pair', { pair: 'ETH-USD' }, NOW - H, NOW + H),
      s('first', { bot_id: 'btc-1' }, NOW - H, NOW + H),
      s('second', { pair: 'BTC-USD' }, NOW - H, NOW + H),
    ];
    expect(silencingFor(silences, { ...alert, observedAt: NOW })?.id).toBe('first');
    expect(silencingFor(silences, { ...alert, observedAt: NOW - 1.5 * H })?.id).toBe('over');
    expect(silencingFor(silences, { ...alert, observedAt: NOW + H })).toBeNull();
    expect(silencingFor(silences, { ...alert, pair: 'SOL-USD', botId: 'sol-1', observedAt: NOW })).toBeNull();
  });

  it('is none once the silence was expired before the observation', () => {
    expect(silencingFor([s('x', { pair: 'BTC-USD' }, NOW - H, NOW + H, NOW - 1)], { ...alert, observedAt: NOW })).toBeNull();
  });
});

describe('a new silence', () => {
  const body = { matchers: { pair: 'btc-usd' }, duration: '1h', comment: 'maintenance' };

  it('normalises the pair, starts now by default and ends a duration later', () => {
    expect(parseNewSilence(body, NOW)).toEqual({ matchers: { pair: 'BTC-USD' }, startsAt: new Date(NOW), endsAt: new Date(NOW + H), comment: 'maintenance' });
  });

  it('takes an explicit window in ISO-8601', () => {
    const parsed = parseNewSilence({ matchers: { bot_id: 'btc-1', direction: 'down' }, starts_at: '2026-12-02T19:00:00Z', ends_at: '2026-12-02T21:00:00+01:00', comment: 'x' }, NOW);
    expect(parsed.startsAt.toISOString()).toBe('2026-12-02T19:00:00.000Z');
    expect(parsed.endsAt.toISOString()).toBe('2026-12-02T20:00:00.000Z');
    expect(parsed.matchers).toEqual({ bot_id: 'btc-1', direction: 'down' });
  });

  it.each<[string, unknown, string]>([
    ['empty matchers', { ...body, matchers: {} }, 'matchers'],
    ['no matchers', { duration: '1h', comment: 'x' }, 'matchers'],
    ['matchers not an object', { ...body, matchers: ['BTC-USD'] }, 'matchers'],
    ['an unknown matcher', { ...body, matchers: { pair: 'BTC-USD', severity: 'high' } }, 'matchers.severity'],
    ['a bad pair', { ...body, matchers: { pair: 'BTCUSD' } }, 'matchers.pair'],
    ['a bad bot id', { ...body, matchers: { bot_id: 'a b' } }, 'matchers.bot_id'],
    ['a bad direction', { ...body, matchers: { direction: 'sideways' } }, 'matchers.direction'],
    ['no end', { matchers: { pair: 'BTC-USD' }, comment: 'x' }, 'ends_at'],
    ['both ends', { ...body, ends_at: '2026-12-02T20:00:00Z' }, 'duration'],
    ['a bad duration', { ...body, duration: 'soon' }, 'duration'],
    ['a zero duration', { ...body, duration: '0s' }, 'duration'],
    ['a duration beyond the cap', { ...body, duration: '400d' }, 'duration'],
    ['a relative ends_at', { matchers: { pair: 'BTC-USD' }, ends_at: '1h', comment: 'x' }, 'ends_at'],
    ['an ends_at without offset', { matchers: { pair: 'BTC-USD' }, ends_at: '2026-12-02T20:00:00', comment: 'x' }, 'ends_at'],
    ['an ends_at before starts_at', { matchers: { pair: 'BTC-USD' }, starts_at: '2026-12-02T20:00:00Z', ends_at: '2026-12-02T19:00:00Z', comment: 'x' }, 'ends_at'],
    ['an end in the past', { matchers: { pair: 'BTC-USD' }, starts_at: '2026-12-01T10:00:00Z', duration: '1h', comment: 'x' }, 'duration'],
    ['a bad starts_at', { ...body, starts_at: 'tomorrow' }, 'starts_at'],
    ['no comment', { matchers: { pair: 'BTC-USD' }, duration: '1h' }, 'comment'],
    ['a blank comment', { ...body, comment: '   ' }, 'comment'],
    ['a comment that is not text', { ...body, comment: 5 }, 'comment'],
    ['an unknown field', { ...body, severity: 'high' }, 'severity'],
    ['a body that is not an object', 'silence BTC', 'body'],
  ])('refuses %s, naming the field', (_, input, parameter) => {
    expect(refusal(() => parseNewSilence(input, NOW)).parameter).toBe(parameter);
  });

  it('never throws anything but a named refusal on hostile input (property)', () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), fc.anything(), (matchers, duration, comment) => {
        try {
          parseNewSilence({ matchers, duration, comment }, NOW);
        } catch (err) {
          expect(err).toBeInstanceOf(BadRequestError);
          expect((err as BadRequestError).parameter).toMatch(/^(matchers(\..*)?|duration|ends_at|comment)$/s);
        }
      }),
    );
  });

  it('lists the known matcher keys when refusing an unknown one', () => {
    expect(refusal(() => parseMatchers({ severity: 'high' })).allowed).toEqual(['pair', 'bot_id', 'direction']);
  });
});
