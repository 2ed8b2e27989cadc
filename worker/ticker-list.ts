import { selectPrice } from './detector';

/**
 * Reading `GET /v0/ticker/<CURRENCY>` (every rate relative to one currency) without guessing. Pure: no I/O.
 *
 * Rules (docs/uphold-ticker-api.md): an entry is `{ask, bid, currency, pair}`; it quotes `BASE-QUOTE` when `pair` with
 * every `-` removed equals `BASE + QUOTE` and `currency` equals `QUOTE`. A concatenated name is never split by length
 * (asset codes have variable length), and no entry is ever inverted to stand for another (ask and bid swap).
 */

/** One pair's quote as a list gave it: a valid quote, or why the entry cannot be a price. */
export type ListQuote = { readonly ok: true; readonly ask: string; readonly bid: string } | { readonly ok: false; readonly reason: string };

/** The part of a list this worker can use: quotes in `currency`, keyed by concatenated name (`BTCUSD`). */
export type ListEntries = ReadonlyMap<string, ListQuote>;

/** Names a pair can have in a list (PAIR_RE codes joined, at most 32 characters). Anything else is not ours to read. */
const LIST_NAME_RE = /^[A-Z0-9]{2,32}$/;

/** Entries kept from one list at most: more is not a ticker list. */
export const LIST_MAX_ENTRIES = 20_000;

/** The concatenated name a `BASE-QUOTE` pair has in its quote currency's list. */
export function listNameOf(pair: string): string {
  return pair.replace(/-/g, '');
}

/** The quote currency of a `BASE-QUOTE` pair (the currency whose list can hold it). */
export function quoteCurrencyOf(pair: string): string {
  return pair.slice(pair.indexOf('-') + 1);
}

/**
 * The entries of a parsed list body that quote in `currency`, by concatenated name. An entry whose ask or bid is not a
 * positive plain decimal is kept as not ok (never a price); a name listed twice with different quotes is not ok either.
 * Returns a reason when the body is not a list at all.
 */
export function listEntriesFor(data: unknown, currency: string): { ok: true; entries: ListEntries } | { ok: false; reason: string } {
  if (!Array.isArray(data)) {
    return { ok: false, reason: `list body is ${data === null ? 'null' : typeof data === 'object' ? 'an object' : `a ${typeof data}`}, not an array` };
  }
  if (data.length > LIST_MAX_ENTRIES) return { ok: false, reason: `list holds ${data.length} entries, more than ${LIST_MAX_ENTRIES}` };
  const entries = new Map<string, ListQuote>();
  for (const item of data as unknown[]) {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) continue;
    const entry = item as { pair?: unknown; currency?: unknown; ask: unknown; bid: unknown };
    if (typeof entry.pair !== 'string' || entry.currency !== currency) continue;
    const name = entry.pair.replace(/-/g, '');
    if (!LIST_NAME_RE.test(name) || !name.endsWith(currency)) continue;
    // Both sides must be valid whichever the bot watches: a half-broken quote is not trusted.
    const checked = selectPrice(entry, 'ask');
    const quote: ListQuote = checked.ok ? { ok: true, ask: entry.ask as string, bid: entry.bid as string } : { ok: false, reason: `list entry ${name}: ${checked.reason}` };
    const previous = entries.get(name);
    if (previous === undefined) entries.set(name, quote);
    else if (!sameQuote(previous, quote)) entries.set(name, { ok: false, reason: `list entry ${name} appears twice with different quotes` });
  }
  return { ok: true, entries };
}

function sameQuote(a: ListQuote, b: ListQuote): boolean {
  return a.ok && b.ok && a.ask === b.ask && a.bid === b.bid;
}

/** The quote of `pair` in a parsed list body of its quote currency; `undefined` when the list does not hold it. */
export function findInList(data: unknown, pair: string): ListQuote | undefined {
  const parsed = listEntriesFor(data, quoteCurrencyOf(pair));
  return parsed.ok ? parsed.entries.get(listNameOf(pair)) : undefined;
}
