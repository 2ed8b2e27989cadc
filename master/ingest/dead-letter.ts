import type { Logger } from '../../shared/platform/logger';
import { describeError } from '../../shared/platform/errors';
import type { Redis } from '../../shared/platform/redis';
import type { RedisKeys } from '../../shared/contract/redis-keys';
import type { MasterMetrics } from '../metrics';

/** Where a rejected message came from. */
export type MessageSource = 'stream' | 'pubsub';

export interface DeadLetterEntry {
  readonly reason: string;
  readonly source: MessageSource;
  /** The stream key (stream mode) or the channel (pubsub mode) the message arrived on. */
  readonly stream: string;
  /** The stream entry id; empty for pub/sub messages. */
  readonly entryId: string;
  /** The message as received, at most 64 KiB of it. */
  readonly payload: string;
}

/** The dead-letter stream keeps about this many entries (approximate trim). */
const DEAD_LETTER_MAXLEN = 100_000;
const MAX_PAYLOAD = 64 * 1024;

export interface DeadLetters {
  /**
   * Appends the message to the dead-letter stream. For a stream entry, the XADD and the XACK of the original go in one
   * MULTI, so the entry is either still pending or dead-lettered and acknowledged, never lost or recorded twice. On a
   * Redis Cluster the two streams are in different slots: XADD first, XACK after, so a crash between them records the
   * entry twice (it is re-read and dead-lettered again), never loses it.
   */
  add(entry: DeadLetterEntry, ack?: { group: string }): Promise<void>;
}

export function createDeadLetters(deps: { redis: Redis; keys: RedisKeys; logger: Logger; metrics: MasterMetrics }): DeadLetters {
  const log = deps.logger.child({ component: 'dead-letter' });
  return {
    async add(entry, ack) {
      const payload = entry.payload.length > MAX_PAYLOAD ? `${entry.payload.slice(0, MAX_PAYLOAD)}…(truncated)` : entry.payload;
      const fields = ['reason', entry.reason, 'source', entry.source, 'stream', entry.stream, 'entryId', entry.entryId, 'payload', payload, 'at', new Date().toISOString()];
      if (deps.redis.isCluster) {
        // The dead-letter stream and the pair's stream are in different slots: added first, acknowledged after, so a
        // crash in between dead-letters the entry twice rather than losing it.
        try {
          await deps.redis.xadd(deps.keys.deadLetterStream, 'MAXLEN', '~', DEAD_LETTER_MAXLEN, '*', ...fields);
          if (ack && entry.entryId) await deps.redis.xack(entry.stream, ack.group, entry.entryId);
        } catch (err) {
          throw new Error(`dead-lettering failed: ${describeError(err)}`, { cause: err });
        }
      } else {
        const multi = deps.redis.multi().xadd(deps.keys.deadLetterStream, 'MAXLEN', '~', DEAD_LETTER_MAXLEN, '*', ...fields);
        if (ack && entry.entryId) multi.xack(entry.stream, ack.group, entry.entryId);
        const result = await multi.exec();
        const failed = result?.find(([err]) => err);
        if (!result || failed) throw new Error(`dead-lettering failed: ${String(failed?.[0] ?? 'MULTI aborted')}`);
      }
      deps.metrics.deadLettered.inc({ source: entry.source });
      log.warn({ reason: entry.reason, source: entry.source, stream: entry.stream, entryId: entry.entryId, payload: payload.slice(0, 300) }, 'message dead-lettered');
    },
  };
}
