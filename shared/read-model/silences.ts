import { BOT_ID_RE, DIRECTIONS, PAIR_RE, type Direction } from '../contract/alert';
import { BadRequestError } from './bad-request';
import { parseDuration, parseInstant } from './query-params';

/**
 * Silences, Alertmanager's way: a silence mutes the notifications of the alerts it matches while it is active; it never
 * touches detection or history (the alert is stored as always, with `silenced_by`). This module is the pure part: the
 * matcher, a silence's state at a moment, and the checks of a new silence as POST /silences and `alerts silences add`
 * accept it. The table is in silences-repository.ts.
 *
 * Matchers are equality on the alert's `pair`, `bot_id` and `direction`, all of those given must hold. An empty matcher
 * is refused (as Alertmanager refuses one): it would mute every alert, and muting everything is what stopping the
 * notifier is for, not a silence that someone forgets to expire.
 */

export const MATCHER_KEYS = ['pair', 'bot_id', 'direction'] as const;
export type MatcherKey = (typeof MATCHER_KEYS)[number];

/** Equality matchers; at least one is present. `pair` is upper case, as alerts carry it. */
export interface SilenceMatchers {
  readonly pair?: string;
  readonly bot_id?: string;
  readonly direction?: Direction;
}

export const SILENCE_STATES = ['pending', 'active', 'expired'] as const;
export type SilenceState = (typeof SILENCE_STATES)[number];

/** A silence as the API answers it and the CLI prints it (snake_case, times ISO-8601 UTC). */
export interface SilenceItem {
  readonly id: string;
  readonly matchers: SilenceMatchers;
  readonly starts_at: string;
  /** The end it was created with; an early expiry keeps it and sets expired_at. */
  readonly ends_at: string;
  readonly comment: string;
  /** A token name, `cli:<user>` or `anonymous`. */
  readonly created_by: string;
  readonly created_at: string;
  /** When DELETE /silences/{id} (or `silences expire`) ended it early; null otherwise. */
  readonly expired_at: string | null;
  readonly expired_by: string | null;
  /** The state at the moment of the answer. */
  readonly state: SilenceState;
}

/** What the matcher and the state need of a silence: its matchers and its window. */
export interface SilenceWindow {
  readonly matchers: SilenceMatchers;
  readonly startsAt: number;
  readonly endsAt: number;
  readonly expiredAt: number | null;
}

/** The moment a silence stops muting: its end, or the early expiry when that came first. */
export function effectiveEnd(s: Pick<SilenceWindow, 'endsAt' | 'expiredAt'>): number {
  return s.expiredAt === null ? s.endsAt : Math.min(s.endsAt, s.expiredAt);
}

/** The state at `at` (epoch ms): pending before starts_at, active in [starts_at, effective end), expired from then on. */
export function silenceState(s: Omit<SilenceWindow, 'matchers'>, at: number): SilenceState {
  const end = effectiveEnd(s);
  if (at >= end) return 'expired';
  return at < s.startsAt ? 'pending' : 'active';
}

/** True when every matcher the silence has equals the alert's field. Never true for empty matchers (refused anyway). */
export function matchesAlert(matchers: SilenceMatchers, alert: { readonly pair: string; readonly botId: string; readonly direction: string }): boolean {
  let any = false;
  if (matchers.pair !== undefined) {
    if (matchers.pair !== alert.pair) return false;
    any = true;
  }
  if (matchers.bot_id !== undefined) {
    if (matchers.bot_id !== alert.botId) return false;
    any = true;
  }
  if (matchers.direction !== undefined) {
    if (matchers.direction !== alert.direction) return false;
    any = true;
  }
  return any;
}

/**
 * The silence that mutes an alert observed at `observedAt`: among those active then whose matchers match, the one listed
 * first (the repository lists them oldest first, so the first silence created wins and the choice is stable). Null when
 * none does.
 */
export function silencingFor<S extends SilenceWindow>(
  silences: readonly S[],
  alert: { readonly pair: string; readonly botId: string; readonly direction: string; readonly observedAt: number },
): S | null {
  for (const s of silences) {
    if (silenceState(s, alert.observedAt) === 'active' && matchesAlert(s.matchers, alert)) return s;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------------------
// A new silence

/** Longest a silence may last: a typo such as `10000d` should not mute a bot for decades. */
export const MAX_SILENCE_MS = 366 * 86_400_000;
export const MAX_SILENCE = '366d';
export const MAX_COMMENT_LENGTH = 1000;

export const SILENCE_BODY_FIELDS = ['matchers', 'starts_at', 'ends_at', 'duration', 'comment'] as const;

export const SILENCE_ALLOWED = {
  matchers: `an object with at least one of ${MATCHER_KEYS.join(', ')} (equality matchers; an empty one would mute everything)`,
  pair: 'a pair such as BTC-USD (two currency codes of A-Z/0-9 joined by "-"), case-insensitive',
  bot_id: '1-64 characters: letters, digits, ".", "_", ":", "-"',
  direction: `one of ${DIRECTIONS.join(', ')}`,
  time: 'an ISO-8601 date-time with offset such as 2026-12-02T18:00:00Z (a length goes in duration)',
  duration: `a duration such as 30m, 1h, 8h, 7d (at most ${MAX_SILENCE})`,
  comment: `a non-empty text of at most ${MAX_COMMENT_LENGTH} characters saying why`,
} as const;

/** A new silence, checked: matchers normalised, the window resolved to instants. */
export interface NewSilence {
  readonly matchers: SilenceMatchers;
  readonly startsAt: Date;
  readonly endsAt: Date;
  readonly comment: string;
}

function parseTime(field: 'starts_at' | 'ends_at', value: unknown, now: number): number {
  // Relative times in the query grammar mean "that long ago": as a silence bound that would read backwards, so only
  // absolute times are taken here and lengths go in `duration`.
  if (typeof value !== 'string' || parseDuration(value.trim()) !== null) throw new BadRequestError(field, value, SILENCE_ALLOWED.time);
  const instant = parseInstant(value, now);
  if (!instant) throw new BadRequestError(field, value, SILENCE_ALLOWED.time);
  return instant.ms;
}

/** Matchers as sent, checked and normalised (pair upper case). Throws BadRequestError naming `matchers.<key>`. */
export function parseMatchers(value: unknown): SilenceMatchers {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new BadRequestError('matchers', value, SILENCE_ALLOWED.matchers);
  const raw = value as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!(MATCHER_KEYS as readonly string[]).includes(key)) throw new BadRequestError(`matchers.${key}`, raw[key], [...MATCHER_KEYS]);
  }
  const out: { pair?: string; bot_id?: string; direction?: Direction } = {};
  if (raw.pair !== undefined) {
    const pair = typeof raw.pair === 'string' ? raw.pair.trim().toUpperCase() : '';
    if (!PAIR_RE.test(pair)) throw new BadRequestError('matchers.pair', raw.pair, SILENCE_ALLOWED.pair);
    out.pair = pair;
  }
  if (raw.bot_id !== undefined) {
    if (typeof raw.bot_id !== 'string' || !BOT_ID_RE.test(raw.bot_id)) throw new BadRequestError('matchers.bot_id', raw.bot_id, SILENCE_ALLOWED.bot_id);
    out.bot_id = raw.bot_id;
  }
  if (raw.direction !== undefined) {
    if (typeof raw.direction !== 'string' || !(DIRECTIONS as readonly string[]).includes(raw.direction)) {
      throw new BadRequestError('matchers.direction', raw.direction, SILENCE_ALLOWED.direction);
    }
    out.direction = raw.direction as Direction;
  }
  if (Object.keys(out).length === 0) throw new BadRequestError('matchers', value, SILENCE_ALLOWED.matchers);
  return out;
}

/**
 * The body of POST /silences (and the flags of `alerts silences add`): `{matchers, starts_at?, ends_at? | duration?,
 * comment}`. `starts_at` defaults to `now`; exactly one of `ends_at` and `duration` (from starts_at) is required, since a
 * silence without an end would outlive the reason for it. The end must lie after both the start and `now` (a silence
 * that is over before it is created mutes nothing), and at most MAX_SILENCE after the start. Every refusal is a
 * BadRequestError naming the field.
 */
export function parseNewSilence(body: unknown, now: number): NewSilence {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new BadRequestError('body', body, `a JSON object with ${SILENCE_BODY_FIELDS.join(', ')}`);
  const raw = body as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!(SILENCE_BODY_FIELDS as readonly string[]).includes(key)) throw new BadRequestError(key, raw[key], [...SILENCE_BODY_FIELDS]);
  }
  if (raw.matchers === undefined) throw new BadRequestError('matchers', undefined, SILENCE_ALLOWED.matchers);
  const matchers = parseMatchers(raw.matchers);
  const startsAt = raw.starts_at === undefined ? now : parseTime('starts_at', raw.starts_at, now);
  if (raw.ends_at !== undefined && raw.duration !== undefined) throw new BadRequestError('duration', raw.duration, 'either ends_at or duration, not both');
  let endsAt: number;
  if (raw.duration !== undefined) {
    const ms = typeof raw.duration === 'string' ? parseDuration(raw.duration.trim()) : null;
    if (ms === null || ms > MAX_SILENCE_MS) throw new BadRequestError('duration', raw.duration, SILENCE_ALLOWED.duration);
    endsAt = startsAt + ms;
  } else if (raw.ends_at !== undefined) {
    endsAt = parseTime('ends_at', raw.ends_at, now);
    if (endsAt <= startsAt) throw new BadRequestError('ends_at', raw.ends_at, `a time after starts_at (${new Date(startsAt).toISOString()})`);
    if (endsAt - startsAt > MAX_SILENCE_MS) throw new BadRequestError('ends_at', raw.ends_at, `a time at most ${MAX_SILENCE} after starts_at (${new Date(startsAt).toISOString()})`);
  } else {
    throw new BadRequestError('ends_at', undefined, `ends_at or duration: ${SILENCE_ALLOWED.duration}`);
  }
  if (endsAt <= now) {
    const field = raw.duration !== undefined ? 'duration' : 'ends_at';
    throw new BadRequestError(field, raw[field], `an end after now (${new Date(now).toISOString()}): this silence would be over before it starts`);
  }
  const comment = typeof raw.comment === 'string' ? raw.comment.trim() : '';
  if (comment === '' || comment.length > MAX_COMMENT_LENGTH) throw new BadRequestError('comment', raw.comment, SILENCE_ALLOWED.comment);
  return { matchers, startsAt: new Date(startsAt), endsAt: new Date(endsAt), comment };
}

/** `?state=` of GET /silences and `silences list --state`. */
export function parseSilenceState(value: unknown): SilenceState {
  if (typeof value === 'string' && (SILENCE_STATES as readonly string[]).includes(value)) return value as SilenceState;
  throw new BadRequestError('state', value, SILENCE_STATES);
}

/** One line about a silence's matchers, for the CLI and logs: `pair=BTC-USD bot_id=btc-1`. */
export function describeMatchers(m: SilenceMatchers): string {
  return MATCHER_KEYS.filter((k) => m[k] !== undefined).map((k) => `${k}=${m[k]}`).join(' ');
}
