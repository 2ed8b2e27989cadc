import { PAIR_RE, parseAlertMessage, type AlertMessage } from '../../shared/contract/alert';
import { describeError } from '../../shared/platform/errors';
import type { Logger } from '../../shared/platform/logger';
import { duplicateRedis, type Redis } from '../../shared/platform/redis';
import { ALERT_CONSUMER_GROUP, type RedisKeys } from '../../shared/contract/redis-keys';
import type { AlertStore } from './alert-store';
import { backoffDelay, createSleeper } from '../../shared/platform/retry';
import { createLoop } from '../../shared/platform/loop';
import type { DeadLetters } from './dead-letter';
import type { MasterMetrics } from '../metrics';

export interface StreamConsumerDeps {
  /** A regular connection (group management, XAUTOCLAIM, XACK); the consumer duplicates it for its blocking reads. */
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly store: AlertStore;
  readonly deadLetters: DeadLetters;
  readonly logger: Logger;
  readonly metrics: MasterMetrics;
  /** Pairs to consume, or `*` for every member of the pairs set. */
  readonly pairs: '*' | readonly string[];
  /** This replica's name in the consumer group. */
  readonly consumerName: string;
  readonly batchMax: number;
  readonly claimIdleMs: number;
  readonly maxAttempts: number;
  /** Longest XREADGROUP BLOCK; a stop interrupts it at once. @defaultValue 2000 */
  readonly blockMs?: number;
  /** How often `*` re-reads the pairs set. @defaultValue 3000 */
  readonly pairsRefreshMs?: number;
  /** How often the stream lag gauge is refreshed. @defaultValue 5000 */
  readonly lagRefreshMs?: number;
  /** On a cluster, the pause after a read of every stream found nothing (no blocking read there). @defaultValue 100 */
  readonly clusterPollMs?: number;
  /**
   * Batches committed concurrently (each in its own transaction, acknowledged after its own commit). 2 lets the next read
   * and parse overlap a commit; 1 is strictly serial. @defaultValue 2
   */
  readonly commitsInFlight?: number;
}

export interface StreamConsumer {
  start(): void;
  /** Stops reading, finishes (commits and acks) the batch in hand, and closes the blocking connection. */
  stop(): Promise<void>;
}

interface Entry {
  readonly stream: string;
  readonly id: string;
  /** Null when the entry was trimmed from the stream while pending. */
  readonly fields: string[] | null;
}

type ReadReply = [stream: string, entries: [id: string, fields: string[] | null][]][] | null;

/** A consumer that has read nothing for this long and holds no pending entries is removed from the group. */
const STALE_CONSUMER_MS = 24 * 3600_000;

/**
 * Consumes the per-pair alert streams with the `tickwatch-master` consumer group: several masters share the entries,
 * each entry is acknowledged only after its row (and its outbox rows) are committed, entries left pending by a dead
 * consumer are reclaimed after `claimIdleMs`, and entries that keep failing or break the contract are dead-lettered.
 *
 * On a Redis Cluster each stream lives in its pair's slot and no command may name two slots: every XREADGROUP and XACK
 * names one stream. A blocking read would hold its node's connection for the whole block, so the consumer reads every
 * stream without BLOCK (concurrently, each on its own node) and pauses `clusterPollMs` when none had anything.
 *
 * Streams of an older version (`stream:alerts:<PAIR>`, before hash tags) are consumed as well for as long as they
 * exist, so no alert written before an upgrade is left behind.
 */
export function createStreamConsumer(deps: StreamConsumerDeps): StreamConsumer {
  const group = ALERT_CONSUMER_GROUP;
  const log = deps.logger.child({ component: 'stream-consumer', consumer: deps.consumerName });
  const blockMs = deps.blockMs ?? 2000;
  const pairsRefreshMs = deps.pairsRefreshMs ?? 3000;
  const lagRefreshMs = deps.lagRefreshMs ?? 5000;
  const claimEveryMs = Math.max(500, Math.min(deps.claimIdleMs / 2, 10_000));
  const sleeper = createSleeper();
  const commitsInFlight = deps.commitsInFlight ?? 2;
  const cluster = deps.redis.isCluster;
  const clusterPollMs = deps.clusterPollMs ?? 100;

  /** stream key -> pair, for every stream whose group exists. */
  const streams = new Map<string, string>();
  const rejectedPairs = new Set<string>();
  let blocking: Redis | undefined;
  let blockingId: number | undefined;
  let blocked = false;
  let nextPairsRefresh = 0;
  let nextClaim = 0;
  let nextLag = 0;
  /** Batch commits running (each with its ack); at most `commitsInFlight`. */
  const inFlight = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  /** False until this consumer's own pending entries (from a previous run or a failed ack) have been re-read. */
  let historyDrained = false;

  async function ensureGroup(pair: string): Promise<void> {
    const stream = deps.keys.alertStream(pair);
    if (!streams.has(stream)) {
      await createGroup(pair, stream, true);
      streams.set(stream, pair);
      historyDrained = false;
    }
    // The pre-tag stream of this pair, if workers of an older version wrote one: drained like the others.
    const legacy = deps.keys.legacyAlertStream(pair);
    if (legacy !== stream && !streams.has(legacy) && (await deps.redis.exists(legacy)) === 1) {
      await createGroup(pair, legacy, false);
      streams.set(legacy, pair);
      historyDrained = false;
      log.info({ pair, stream: legacy }, 'draining an alert stream of the older name (before hash tags) as well');
    }
  }

  async function createGroup(pair: string, stream: string, mkstream: boolean): Promise<void> {
    try {
      // From id 0: a master that was down (or a group created after workers started) catches up on everything kept.
      if (mkstream) await deps.redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
      else await deps.redis.xgroup('CREATE', stream, group, '0');
      log.info({ pair, stream }, 'consumer group created');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
  }

  /**
   * XREADGROUP over `streams`: one call for all of them on a single Redis, one call per stream (concurrently) on a
   * cluster, where the streams live in different slots.
   */
  async function readGroup(conn: Redis, streamKeys: readonly string[], id: '0' | '>', block?: number): Promise<Entry[]> {
    if (!cluster) {
      const ids = streamKeys.map(() => id);
      const reply = (
        block === undefined
          ? await conn.xreadgroup('GROUP', group, deps.consumerName, 'COUNT', deps.batchMax, 'STREAMS', ...streamKeys, ...ids)
          : await conn.xreadgroup('GROUP', group, deps.consumerName, 'COUNT', deps.batchMax, 'BLOCK', block, 'STREAMS', ...streamKeys, ...ids)
      ) as ReadReply;
      return flatten(reply);
    }
    const replies = await Promise.all(streamKeys.map((key) => conn.xreadgroup('GROUP', group, deps.consumerName, 'COUNT', deps.batchMax, 'STREAMS', key, id) as Promise<ReadReply>));
    return replies.flatMap(flatten);
  }

  async function refreshPairs(): Promise<void> {
    let pairs: readonly string[];
    if (deps.pairs === '*') {
      const members = await deps.redis.smembers(deps.keys.pairsSet);
      pairs = members.filter((p) => {
        if (PAIR_RE.test(p)) return true;
        if (!rejectedPairs.has(p)) log.warn({ member: p }, 'ignoring a pairs-set member that is not a pair name');
        rejectedPairs.add(p);
        return false;
      });
    } else {
      pairs = deps.pairs;
    }
    for (const pair of [...pairs].sort()) await ensureGroup(pair);
  }

  async function deliveryCounts(stream: string, ids: readonly string[]): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    if (ids.length === 0) return counts;
    const sorted = [...ids].sort(compareIds);
    const pending = (await deps.redis.xpending(stream, group, sorted[0]!, sorted[sorted.length - 1]!, ids.length * 2 + 10, deps.consumerName)) as [string, string, number, number][];
    for (const [id, , , count] of pending) counts.set(id, Number(count));
    return counts;
  }

  async function ack(byStream: Map<string, string[]>): Promise<void> {
    if (byStream.size === 0) return;
    if (cluster) {
      await Promise.all([...byStream].map(([stream, ids]) => deps.redis.xack(stream, group, ...ids)));
      return;
    }
    const pipeline = deps.redis.pipeline();
    for (const [stream, ids] of byStream) pipeline.xack(stream, group, ...ids);
    const results = await pipeline.exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw new Error(`XACK failed: ${String(failed?.[0] ?? 'pipeline aborted')}`);
  }

  /**
   * Stores one batch, retrying while Postgres is unavailable; once stopping, gives up after the try in flight (the
   * entries stay pending in Redis). While retrying, the entries are re-claimed with JUSTID, which resets their idle time
   * without counting a delivery: another replica does not steal them, and an outage does not push them to the dead letters.
   */
  async function storeWithRetry(batch: readonly { entry: Entry; alert: AlertMessage }[]) {
    let lastTouch = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        return await deps.store.store(batch.map((b) => b.alert));
      } catch (err) {
        if (!loop.active) throw err;
        await sleeper.sleep(backoffDelay(attempt, 200, 5000));
        if (Date.now() - lastTouch > deps.claimIdleMs / 3) {
          lastTouch = Date.now();
          await touch(batch.map((b) => b.entry)).catch(() => undefined);
        }
      }
    }
  }

  async function touch(entries: readonly Entry[]): Promise<void> {
    // One XCLAIM per stream, concurrently: on a cluster the streams are on different nodes.
    await Promise.all(
      [...new Set(entries.map((e) => e.stream))].map((stream) =>
        deps.redis.call('XCLAIM', stream, group, deps.consumerName, '0', ...entries.filter((e) => e.stream === stream).map((e) => e.id), 'JUSTID'),
      ),
    );
  }

  /** Parses, dead-letters, stores and acknowledges a set of entries. `redelivered` entries get their delivery count checked. */
  async function processEntries(entries: readonly Entry[], redelivered: boolean): Promise<void> {
    if (entries.length === 0) return;
    const toAck = new Map<string, string[]>();
    const addAck = (e: Entry) => (toAck.get(e.stream) ?? toAck.set(e.stream, []).get(e.stream)!).push(e.id);
    const valid: { entry: Entry; alert: AlertMessage }[] = [];

    let counts = new Map<string, number>();
    if (redelivered) {
      for (const stream of new Set(entries.map((e) => e.stream))) {
        const ids = entries.filter((e) => e.stream === stream).map((e) => e.id);
        for (const [id, n] of await deliveryCounts(stream, ids)) counts.set(`${stream} ${id}`, n);
      }
    }

    for (const entry of entries) {
      if (entry.fields === null) {
        addAck(entry); // trimmed away while pending: nothing left to store
        continue;
      }
      const payload = fieldValue(entry.fields, 'alert');
      const deliveries = counts.get(`${entry.stream} ${entry.id}`) ?? 1;
      let reason: string | undefined;
      if (deliveries > deps.maxAttempts) {
        reason = `delivered ${deliveries} times (STREAM_MAX_ATTEMPTS=${deps.maxAttempts}) without being stored`;
      } else if (payload === undefined) {
        reason = 'stream entry has no "alert" field';
      } else {
        const parsed = parseAlertMessage(payload);
        if (parsed.ok) valid.push({ entry, alert: parsed.alert });
        else reason = parsed.reason;
      }
      if (reason !== undefined) {
        await deps.deadLetters.add({ reason, source: 'stream', stream: entry.stream, entryId: entry.id, payload: payload ?? JSON.stringify(entry.fields) }, { group });
      }
    }

    for (let i = 0; i < valid.length; i += deps.batchMax) {
      const batch = valid.slice(i, i + deps.batchMax);
      await launch(() => commitAndAck(batch));
    }
    await ack(toAck);
    // Reclaimed and re-read entries are rare: finish them before going on, so the caller sees their outcome.
    if (redelivered) await drain();
  }

  /** Stores one batch, dead-letters what the database refused, and acknowledges the rest: never before the commit. */
  async function commitAndAck(batch: readonly { entry: Entry; alert: AlertMessage }[]): Promise<void> {
    const result = await storeWithRetry(batch);
    const rejected = new Map(result.rejected.map((r) => [r.alert, r.reason]));
    const batchAck = new Map<string, string[]>();
    for (const { entry, alert } of batch) {
      const why = rejected.get(alert);
      if (why !== undefined) {
        await deps.deadLetters.add({ reason: why, source: 'stream', stream: entry.stream, entryId: entry.id, payload: fieldValue(entry.fields!, 'alert') ?? '' }, { group });
      } else {
        (batchAck.get(entry.stream) ?? batchAck.set(entry.stream, []).get(entry.stream)!).push(entry.id);
      }
    }
    await ack(batchAck);
  }

  /**
   * Starts a batch's commit without waiting for it, once fewer than `commitsInFlight` are running: the next XREADGROUP
   * and the parsing of the next batch overlap the current commit (Postgres works on the other core). Each batch still
   * acks only its own entries after its own commit. A failed batch's error surfaces at the next launch or drain; its
   * entries stay pending and are re-read from this consumer's history.
   */
  async function launch(task: () => Promise<void>): Promise<void> {
    while (inFlight.size >= commitsInFlight) await Promise.race(inFlight);
    throwFailure();
    const p: Promise<void> = task().then(
      () => void inFlight.delete(p),
      (err: unknown) => {
        inFlight.delete(p);
        failure ??= { err };
      },
    );
    inFlight.add(p);
  }

  /** Waits for every commit in flight; rethrows the first failure among them. */
  async function drain(): Promise<void> {
    while (inFlight.size > 0) await Promise.race(inFlight);
    throwFailure();
  }

  function throwFailure(): void {
    if (!failure) return;
    const { err } = failure;
    failure = undefined;
    throw err;
  }

  async function readHistory(): Promise<void> {
    // Our own pending entries: left by a crash of a previous run under this name, or by a failed XACK.
    for (;;) {
      const keys = [...streams.keys()];
      if (keys.length === 0 || !loop.active) break;
      const entries = await readGroup(deps.redis, keys, '0');
      if (entries.length === 0) break;
      log.info({ count: entries.length }, 'retrying entries this consumer read earlier but never acknowledged');
      await processEntries(entries, true);
    }
    historyDrained = true;
  }

  async function claimIdle(): Promise<void> {
    for (const stream of streams.keys()) {
      let cursor = '0-0';
      do {
        const [next, claimed] = (await deps.redis.xautoclaim(stream, group, deps.consumerName, deps.claimIdleMs, cursor, 'COUNT', deps.batchMax)) as [string, [string, string[] | null][], string[]?];
        const entries = claimed.map(([id, fields]) => ({ stream, id, fields }));
        if (entries.length > 0) {
          log.info({ stream, count: entries.length }, 'reclaimed entries left pending by a stopped consumer');
          await processEntries(entries, true);
        }
        cursor = next;
      } while (cursor !== '0-0' && loop.active);
    }
  }

  async function refreshLagAndConsumers(): Promise<void> {
    for (const [stream, pair] of streams) {
      const groups = (await deps.redis.xinfo('GROUPS', stream)) as unknown[][];
      for (const g of groups) {
        const info = toRecord(g);
        // The gauge is the current stream's: an older-name stream being drained must not overwrite it.
        if (info.name === group && info.lag !== null && info.lag !== undefined && stream === deps.keys.alertStream(pair)) deps.metrics.streamLag.set({ pair }, Number(info.lag));
      }
      const consumers = (await deps.redis.xinfo('CONSUMERS', stream, group)) as unknown[][];
      for (const c of consumers) {
        const info = toRecord(c);
        // Every restart under a new default name (hostname-pid) leaves an empty consumer behind; forget old empty ones.
        if (info.name !== deps.consumerName && Number(info.pending) === 0 && Number(info.idle) > STALE_CONSUMER_MS) {
          await deps.redis.xgroup('DELCONSUMER', stream, group, String(info.name));
        }
      }
    }
  }

  async function readNew(): Promise<void> {
    const keys = [...streams.keys()];
    const now = Date.now();
    const wait = Math.max(1, Math.min(blockMs, nextClaim - now, (deps.pairs === '*' ? nextPairsRefresh : Infinity) - now));
    if (cluster) {
      const entries = await readGroup(blocking!, keys, '>');
      if (entries.length === 0) await sleeper.sleep(Math.min(wait, clusterPollMs));
      else await processEntries(entries, false);
      return;
    }
    blocked = true;
    let entries: Entry[];
    try {
      entries = await readGroup(blocking!, keys, '>', wait);
    } finally {
      blocked = false;
    }
    await processEntries(entries, false);
  }

  /** One round: refresh the streams, re-read our own pending entries, reclaim idle ones, then one blocking read. */
  async function round(): Promise<number> {
    const now = Date.now();
    if (now >= nextPairsRefresh) {
      await refreshPairs();
      nextPairsRefresh = now + (deps.pairs === '*' ? pairsRefreshMs : 60_000);
    }
    if (streams.size === 0) return pairsRefreshMs;
    if (!historyDrained) {
      await drain();
      await readHistory();
    }
    if (Date.now() >= nextClaim) {
      // Commits in flight finish first: a reclaim never races the batches this consumer is storing.
      await drain();
      await claimIdle();
      nextClaim = Date.now() + claimEveryMs;
    }
    if (Date.now() >= nextLag) {
      nextLag = Date.now() + lagRefreshMs;
      await refreshLagAndConsumers();
    }
    if (!loop.active) return 0;
    await readNew();
    throwFailure();
    return 0;
  }

  async function onRoundError(err: unknown, failures: number): Promise<void> {
    // Nothing is re-read while a commit of the same entries may still be running.
    await settle();
    failure = undefined;
    if (!loop.active) return;
    if (String((err as Error).message).includes('NOGROUP')) {
      // The stream (and its group) vanished, e.g. Redis restarted without persistence: recreate the groups.
      streams.clear();
      nextPairsRefresh = 0;
    }
    historyDrained = false;
    if (failures === 1) log.warn({ err: describeError(err) }, 'stream consumption failed; retrying with backoff');
  }

  const loop = createLoop({
    round,
    onError: onRoundError,
    onRecover: () => log.info('stream consumption resumed'),
    backoff: { baseMs: 200, maxMs: 5000 },
    async interrupt() {
      sleeper.wakeAll();
      // A blocked XREADGROUP returns at once (as if timed out), so nothing it could have read is left in flight.
      if (blocked && blockingId !== undefined) await deps.redis.client('UNBLOCK', blockingId).catch(() => undefined);
    },
    async finally() {
      // Shutdown: the batches in hand finish their commit and ack (or, if Postgres is down, stay pending for later).
      await settle();
      failure = undefined;
      if (blocking) {
        const conn = blocking;
        blocking = undefined;
        await conn.quit().catch(() => conn.disconnect());
      }
    },
  });

  /** Waits for every commit in flight, whatever their outcome (errors were, or will be, reported by the loop). */
  async function settle(): Promise<void> {
    while (inFlight.size > 0) await Promise.race(inFlight);
  }

  return {
    start() {
      if (loop.active) return;
      const conn = duplicateRedis(deps.redis, 'ingest');
      blocking = conn;
      let down = false;
      conn.on('error', (err: unknown) => {
        if (!down) log.warn({ err: describeError(err) }, 'ingest connection to redis lost; reconnecting');
        down = true;
      });
      conn.on('ready', () => {
        if (down) log.info('ingest connection to redis back');
        down = false;
        // Only a single Redis blocks (and is unblocked by id at stop); a cluster connection has no one client id.
        if (conn.isCluster) return;
        conn.client('ID').then(
          (id) => (blockingId = Number(id)),
          () => (blockingId = undefined),
        );
      });
      loop.start();
    },
    stop: () => loop.stop(),
  };
}

function flatten(reply: ReadReply): Entry[] {
  const out: Entry[] = [];
  for (const [stream, entries] of reply ?? []) for (const [id, fields] of entries) out.push({ stream, id, fields });
  return out;
}

function fieldValue(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

function toRecord(flat: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1;
}
