import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from '../../shared/platform/redis';
import type { RedisKeys } from '../../shared/contract/redis-keys';

/**
 * Tickets for the live feed. EventSource cannot send an Authorization header, and a token in a URL ends up in browser
 * history, proxy logs and Referer headers; so a caller holding the token asks for a ticket (`POST /events/ticket`) and
 * opens `/events?ticket=...` with it. A ticket is random, opens one connection, and expires after `ttlMs` if unused.
 *
 * Tickets live in Redis (only their SHA-256, never the ticket itself), so any master behind a balancer accepts a ticket
 * another one issued, and taking one is a single GETDEL: two connections can never share it.
 */
export interface EventTickets {
  /** A fresh ticket and when it stops being accepted. */
  issue(): Promise<{ readonly ticket: string; readonly expiresAt: Date }>;
  /** True exactly once per issued, unexpired ticket; false for anything else. */
  consume(ticket: string): Promise<boolean>;
  readonly ttlMs: number;
}

export interface EventTicketsDeps {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  /** @defaultValue 60000 */
  readonly ttlMs?: number;
  /** @defaultValue Date.now */
  readonly now?: () => number;
}

/** 32 random bytes, base64url: 43 characters. */
const TICKET_RE = /^[A-Za-z0-9_-]{43}$/;

const hash = (ticket: string) => createHash('sha256').update(ticket, 'utf8').digest('hex');

export function createEventTickets(deps: EventTicketsDeps): EventTickets {
  const ttlMs = deps.ttlMs ?? 60_000;
  const now = deps.now ?? Date.now;
  return {
    ttlMs,
    async issue() {
      const ticket = randomBytes(32).toString('base64url');
      await deps.redis.set(deps.keys.eventsTicket(hash(ticket)), '1', 'PX', ttlMs);
      return { ticket, expiresAt: new Date(now() + ttlMs) };
    },
    async consume(ticket) {
      if (!TICKET_RE.test(ticket)) return false;
      return (await deps.redis.getdel(deps.keys.eventsTicket(hash(ticket)))) !== null;
    },
  };
}
