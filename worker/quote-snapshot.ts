import { randomBytes } from 'node:crypto';
import type { Logger } from '../shared/platform/logger';
import type { Redis } from '../shared/platform/redis';
import type { RedisKeys } from '../shared/contract/redis-keys';
import { describeError } from '../shared/platform/errors';
import { sleep, withTimeout } from '../shared/platform/retry';
import { selectPrice } from './detector';
import type { BudgetGrant, RateBudget } from './rate-budget';
import type { ListQuote } from './ticker-list';
import { listNameOf, quoteCurrencyOf } from './ticker-list';
import type { TickerClient, TickerOutcome } from './ticker-client';

/**
 * The shared list of a quote currency: one `GET /v0/ticker/<QUOTE>` per interval serves every bot on this Redis quoted
 * in it, each bot still deciding alone.
 *
 * Who fetches: the first reader that finds the snapshot (`keys.tickerList(QUOTE)`) older than its own interval takes the
 * lock (`SET NX PX`), takes a ticket from the shared rate budget, sends the request and writes the snapshot. How the
 * others read: one `HMGET` of `@fetchedAt` and their own entry; a reader that finds the lock taken polls the snapshot
 * until it is fresh (or the lock is gone, and then fetches its own pair). Freshness: a reader uses a snapshot only when
 * it is younger than the reader's own interval, so a price is never older than the interval of the bot that reads it.
 */
export type ListRead =
  /** The list gave this bot's quote (a price, or a bad entry), or this worker's list request failed (`grant` set). */
  | { readonly kind: 'fetched'; readonly outcome: TickerOutcome; readonly quote: string; readonly ageMs: number; readonly grant?: BudgetGrant }
  /** Use the pair's own endpoint now (not shared, absent from the list, list unavailable, Redis unreachable). */
  | { readonly kind: 'pair'; readonly reason: string }
  /** The worker is stopping. */
  | { readonly kind: 'aborted' };

export interface QuoteSnapshots {
  /** `mayRequest` is asked right before a list request is sent (a runtime bot past its lease deadline sends none). */
  read(
    bot: { readonly pair: string; readonly botId: string; readonly intervalMs: number },
    signal: AbortSignal,
    onWait?: (waitMs: number) => void,
    mayRequest?: () => boolean,
  ): Promise<ListRead>;
}

export interface QuoteSnapshotDeps {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly ticker: TickerClient;
  readonly budget: RateBudget;
  /** `currency`: always read the list; `auto`: only while at least 2 bots on this Redis read the quote currency. */
  readonly mode: 'auto' | 'currency';
  readonly workerId: string;
  /** The ticker request deadline: the lock outlives one request by a second. */
  readonly timeoutMs: number;
  readonly logger: Logger;
  /** How long a pair absent from its list (or a currency without a list) is fetched on its own. @defaultValue 600000 */
  readonly absentForMs?: number;
  /** Above this a Redis call counts as unreachable (the pair is then fetched on its own). @defaultValue 1000 */
  readonly commandTimeoutMs?: number;
  /** The longest a reader waits for another worker's list before fetching its own pair. @defaultValue 60000 */
  readonly maxWaitMs?: number;
}

/** Snapshots expire this long after their last write, so a quote currency nobody reads leaves nothing behind. */
const SNAPSHOT_TTL_MS = 600_000;
/** A stored entry is `{"ask","bid"}` or `{"bad"}`: anything longer is not ours and is never parsed. */
const ENTRY_MAX_BYTES = 1024;

const RELEASE_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

interface Snapshot {
  readonly fetchedAt: number;
  readonly entry: string | null;
}

export function createQuoteSnapshots(deps: QuoteSnapshotDeps): QuoteSnapshots {
  const { redis, keys, log } = { ...deps, log: deps.logger };
  const absentForMs = deps.absentForMs ?? 600_000;
  const timeoutMs = deps.commandTimeoutMs ?? 1000;
  const maxWaitMs = deps.maxWaitMs ?? 60_000;
  const lockTtlMs = deps.timeoutMs + 1000;
  /** Pair or currency -> epoch ms until which it is fetched on its own. */
  const ownFetchUntil = new Map<string, number>();
  /** Pair -> `@fetchedAt` of the snapshot it last used: a bot never takes the same snapshot twice. */
  const lastUsed = new Map<string, number>();
  const answered = <T>(promise: Promise<T>): Promise<T> => withTimeout(promise, timeoutMs, 'Redis');

  const readSnapshot = async (quote: string, name: string): Promise<Snapshot | null> => {
    const [fetchedAt, entry] = await answered(redis.hmget(keys.tickerList(quote), '@fetchedAt', name));
    const at = Number(fetchedAt);
    return fetchedAt != null && Number.isSafeInteger(at) && at > 0 ? { fetchedAt: at, entry: entry ?? null } : null;
  };

  /**
   * Younger than the reader's interval less a tenth (at most 250 ms), and not implausibly far in the future (a skewed
   * clock elsewhere). The margin absorbs timer jitter: the bot that fetched finds its own snapshot stale one interval
   * later and fetches again, rather than every other tick by a hair, so one bot keeps the one request per interval.
   */
  const isFresh = (snapshot: Snapshot | null, intervalMs: number, now: number): snapshot is Snapshot =>
    snapshot !== null && now - snapshot.fetchedAt < intervalMs - Math.min(intervalMs / 10, 250) && snapshot.fetchedAt - now < intervalMs;

  /**
   * Fresh, and not the snapshot this bot used last: every tick brings a new price. Without it a leader held back by the
   * budget would write a snapshot its own next tick still finds fresh, and its group would see a new price only every
   * other interval.
   */
  const isNew = (snapshot: Snapshot | null, pair: string, intervalMs: number, now: number): snapshot is Snapshot =>
    isFresh(snapshot, intervalMs, now) && lastUsed.get(pair) !== snapshot.fetchedAt;

  const remember = (what: string, reason: string) => {
    ownFetchUntil.set(what, Date.now() + absentForMs);
    log.info({ what, reason, forMs: absentForMs }, 'fetching with the pair endpoint for a while');
  };

  /** The quote an entry read from Redis stands for; null when the list does not hold the pair. */
  const entryOutcome = (entry: string | null, fetchedAt: Date): TickerOutcome | null => {
    if (entry === null) return null;
    if (Buffer.byteLength(entry) > ENTRY_MAX_BYTES) return { kind: 'bad-answer', reason: `list entry is over ${ENTRY_MAX_BYTES} bytes`, fetchedAt };
    let value: { ask: unknown; bid: unknown; bad?: unknown };
    try {
      value = JSON.parse(entry) as typeof value;
    } catch {
      return { kind: 'bad-answer', reason: 'list entry is not JSON', fetchedAt };
    }
    if (typeof value !== 'object' || value === null) return { kind: 'bad-answer', reason: 'list entry is not an object', fetchedAt };
    if (typeof value.bad === 'string') return { kind: 'bad-answer', reason: value.bad.slice(0, 200), fetchedAt };
    const checked = selectPrice(value, 'ask');
    if (!checked.ok) return { kind: 'bad-answer', reason: `list entry: ${checked.reason}`, fetchedAt };
    return { kind: 'price', ask: value.ask as string, bid: value.bid as string, fetchedAt };
  };

  const fromSnapshot = (snapshot: Snapshot, quote: string, pair: string, grant?: BudgetGrant): ListRead => {
    lastUsed.set(pair, snapshot.fetchedAt);
    const fetchedAt = new Date(snapshot.fetchedAt);
    const outcome = entryOutcome(snapshot.entry, fetchedAt);
    if (outcome === null) {
      remember(pair, `${pair} is not in the ${quote} list`);
      return { kind: 'pair', reason: `${pair} is not in the ${quote} list` };
    }
    return { kind: 'fetched', outcome, quote, ageMs: Math.max(0, Date.now() - snapshot.fetchedAt), ...(grant ? { grant } : {}) };
  };

  const storedEntry = (quote: ListQuote): string => JSON.stringify(quote.ok ? { ask: quote.ask, bid: quote.bid } : { bad: quote.reason.slice(0, 200) });

  /** With the lock held: one budget ticket, one list request, the snapshot written for every reader. */
  const fetchAsLeader = async (quote: string, pair: string, token: string, signal: AbortSignal, onWait?: (waitMs: number) => void, mayRequest?: () => boolean): Promise<ListRead> => {
    const lockKey = keys.tickerListLock(quote);
    const release = () => answered(redis.eval(RELEASE_LUA, 1, lockKey, token)).catch((err: unknown) => log.debug({ err: describeError(err) }, 'list lock not released (it expires)'));
    try {
      const grant = await deps.budget.acquire(signal, (waitMs) => {
        // Readers wait while the lock exists: it lasts as long as the budget holds the leader back.
        redis.set(lockKey, token, 'PX', waitMs + lockTtlMs, 'XX').catch(() => undefined);
        onWait?.(waitMs);
      });
      if (grant.aborted || (mayRequest && !mayRequest())) return { kind: 'aborted' };
      const outcome = await deps.ticker.fetchList(quote);
      if (outcome.kind === 'invalid-pair') {
        // No list for this currency: its bots use their own endpoints (the 404 says nothing about their pairs).
        remember(quote, outcome.reason);
        return { kind: 'pair', reason: outcome.reason };
      }
      if (outcome.kind !== 'list') {
        // The worker handles a failed list like a failed request of its own (backoff, 429 pause): never a price.
        return { kind: 'fetched', outcome, quote, ageMs: 0, grant };
      }
      const fields: Record<string, string> = { '@fetchedAt': String(outcome.fetchedAt.getTime()), '@by': deps.workerId };
      for (const [name, entry] of outcome.entries) fields[name] = storedEntry(entry);
      const key = keys.tickerList(quote);
      await answered(redis.multi().del(key).hset(key, fields).pexpire(key, SNAPSHOT_TTL_MS).exec()).catch((err: unknown) =>
        log.warn({ err: describeError(err), quote }, 'list snapshot not written: the other readers fetch on their own this time'),
      );
      const entry = outcome.entries.get(listNameOf(pair));
      return fromSnapshot({ fetchedAt: outcome.fetchedAt.getTime(), entry: entry === undefined ? null : storedEntry(entry) }, quote, pair, grant);
    } finally {
      await release();
    }
  };

  /** Another worker holds the lock: poll until its snapshot is fresh, or the lock is gone without one. */
  const waitForLeader = async (quote: string, pair: string, name: string, intervalMs: number, signal: AbortSignal, onWait?: (waitMs: number) => void): Promise<ListRead> => {
    const started = Date.now();
    let reported = false;
    for (let polls = 0; Date.now() - started < maxWaitMs; polls++) {
      if (await sleep(polls < 40 ? 25 : 100, signal)) return { kind: 'aborted' };
      const [snapshot, lockLeft] = await Promise.all([readSnapshot(quote, name), answered(redis.pttl(keys.tickerListLock(quote)))]);
      if (isNew(snapshot, pair, intervalMs, Date.now())) return fromSnapshot(snapshot, quote, pair);
      if (lockLeft <= 0) return { kind: 'pair', reason: `the ${quote} list was not fetched` };
      if (!reported && lockLeft > lockTtlMs) {
        // The leader waits for the budget (or a fleet pause): say so in the heartbeat before waiting with it.
        reported = true;
        onWait?.(lockLeft);
      }
    }
    return { kind: 'pair', reason: `waited ${maxWaitMs} ms for the ${quote} list` };
  };

  const isShared = async (quote: string, botId: string, intervalMs: number): Promise<boolean> => {
    const key = keys.tickerListReaders(quote);
    const now = Date.now();
    const liveMs = Math.max(3 * intervalMs, 15_000);
    const replies = await answered(redis.multi().zadd(key, now, botId).zremrangebyscore(key, 0, now - liveMs).zcard(key).pexpire(key, 2 * liveMs).exec());
    const count = Number(replies?.[2]?.[1] ?? 0);
    return deps.mode === 'currency' || count >= 2;
  };

  return {
    async read(bot, signal, onWait, mayRequest) {
      const quote = quoteCurrencyOf(bot.pair);
      const name = listNameOf(bot.pair);
      const now = Date.now();
      for (const what of [bot.pair, quote]) {
        const until = ownFetchUntil.get(what);
        if (until !== undefined && until > now) return { kind: 'pair', reason: `${what} is fetched on its own for now` };
        if (until !== undefined) ownFetchUntil.delete(what);
      }
      try {
        if (!(await isShared(quote, bot.botId, bot.intervalMs))) return { kind: 'pair', reason: `no other bot reads the ${quote} list` };
        const snapshot = await readSnapshot(quote, name);
        if (isNew(snapshot, bot.pair, bot.intervalMs, Date.now())) return fromSnapshot(snapshot, quote, bot.pair);
        const token = `${deps.workerId}:${randomBytes(6).toString('hex')}`;
        const locked = await answered(redis.set(keys.tickerListLock(quote), token, 'PX', lockTtlMs, 'NX'));
        if (locked === 'OK') return await fetchAsLeader(quote, bot.pair, token, signal, onWait, mayRequest);
        return await waitForLeader(quote, bot.pair, name, bot.intervalMs, signal, onWait);
      } catch (err) {
        log.debug({ err: describeError(err), quote }, 'shared list unreachable: fetching the pair on its own');
        return { kind: 'pair', reason: `Redis unreachable: ${describeError(err)}` };
      }
    },
  };
}
