import { createHash, timingSafeEqual } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isLoopbackHost, type ApiScope, type ApiTokenEntry } from '../../shared/config/master-config';
import type { EventTickets } from './event-tickets';

/**
 * Bearer-token authentication for the API (API_TOKEN). Decisions are made on the matched route pattern
 * (`request.routeOptions.url`), never on the raw URL, so `/health/../alerts` or `//alerts` cannot slip through a prefix
 * check. Unmatched URLs need the token too: without it a caller learns nothing, not even which paths exist.
 *
 * The live feed `/events` is opened by EventSource, which cannot send headers: it takes a one-connection ticket from
 * `POST /events/ticket` (see event-tickets.ts) in `?ticket=`, never the token itself.
 *
 * A wrong token or ticket counts as a failed attempt for the caller's address; after `maxFailures` of them within
 * `windowMs` every request from that address that presents a credential answers 429 until the window ends, the right
 * token included (otherwise the limit would still tell a guesser which guess was right). A request with no credential at
 * all is not counted: it tries nothing, and a page that has not asked for the token yet sends several at once.
 *
 * Roles: every accepted token has a name and a scope (API_TOKENS; API_TOKEN is the operator token named `operator`).
 * The caller (`request.caller`, `{ name, scope }`) is resolved before any route runs. Analysts read everything; a write
 * (POST, PUT, PATCH, DELETE, except `POST /events/ticket`, which only opens the live feed) needs the operator scope and
 * is refused with 403 before the route runs, so it changes nothing. With no token configured (the master allows that
 * only on loopback or with API_ALLOW_ANONYMOUS), callers act as `anonymous`: operator from a loopback peer, analyst from
 * anywhere else, so a request from beyond this machine never changes anything without an operator token. Token names
 * appear in logs and the audit; token values never do.
 */

/** Routes anyone may call: liveness/readiness probes, and the dashboard's static page and assets (no data in them). */
const PUBLIC_ROUTES = new Set(['/health', '/ready', '/']);
/** The live feed, authenticated by ticket. */
const TICKET_ROUTE = '/events';
/** POST that reads: it hands out a live-feed ticket. */
const READ_POSTS = new Set(['/events/ticket']);
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Who is calling: a token's name and scope, or `anonymous` when no token is configured. */
export interface Caller {
  readonly name: string;
  readonly scope: ApiScope;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller; null on public routes when tokens are configured. */
    caller: Caller | null;
  }
}

/** The actor recorded for anonymous callers. */
export const ANONYMOUS = 'anonymous';

export interface AuthOptions {
  /** API_TOKEN: one operator token named `operator`. */
  readonly token?: string;
  /** Named tokens with scopes (the master passes API_TOKENS plus API_TOKEN here). When both are empty, authentication is off. */
  readonly tokens?: readonly ApiTokenEntry[];
  /** Where `/events` tickets are taken from. */
  readonly tickets: EventTickets;
  /** Failed attempts per address per window before it is refused. @defaultValue 10 */
  readonly maxFailures?: number;
  /** @defaultValue 60000 */
  readonly windowMs?: number;
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/** True when `given` equals the token, in time independent of where they differ (hashing first equalises lengths). */
export function tokenMatches(given: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(given), expected);
}

export function isPublicRoute(routeUrl: string | undefined): boolean {
  if (routeUrl === undefined) return false;
  return PUBLIC_ROUTES.has(routeUrl) || routeUrl === '/dashboard' || routeUrl.startsWith('/dashboard/');
}

/** True when the request would change something, so it needs the operator scope. */
export function isWrite(req: FastifyRequest): boolean {
  return WRITE_METHODS.has(req.method) && !(req.method === 'POST' && READ_POSTS.has(req.routeOptions.url ?? ''));
}

function bearer(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return undefined;
  return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
}

function queryValue(req: FastifyRequest, name: string): string | undefined {
  const value = (req.query as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value : undefined;
}

function unauthorized(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(401).header('www-authenticate', 'Bearer realm="tickwatch"').send({ error: 'unauthorized', message });
}

function forbidden(reply: FastifyReply): FastifyReply {
  return reply.code(403).send({ error: 'forbidden', message: 'needs the operator scope', required_scope: 'operator' });
}

/** Every accepted token: `tokens`, plus `token` as `operator` unless a named entry already carries it. */
function acceptedTokens(options: AuthOptions): { name: string; scope: ApiScope; digest: Buffer }[] {
  const entries = [...(options.tokens ?? [])].map((t) => ({ name: t.name, scope: t.scope, token: t.token }));
  if (options.token && !entries.some((e) => e.token === options.token)) entries.push({ name: 'operator', scope: 'operator', token: options.token });
  return entries.map((e) => ({ name: e.name, scope: e.scope, digest: digest(e.token) }));
}

/**
 * Registers the caller resolution and scope check (an `onRequest` hook) and, when tokens are configured, the token
 * check and its failed-attempt limit on `app`.
 */
export async function registerAuth(app: FastifyInstance, options: AuthOptions): Promise<void> {
  app.decorateRequest('caller', null);
  const tokens = acceptedTokens(options);
  if (tokens.length === 0) {
    app.addHook('onRequest', async (req, reply) => {
      const loopback = isLoopbackHost(req.ip);
      req.caller = { name: ANONYMOUS, scope: loopback ? 'operator' : 'analyst' };
      if (isWrite(req) && !loopback) {
        req.log.warn({ ip: req.ip, route: req.routeOptions.url ?? null, method: req.method }, 'refused an anonymous write from beyond loopback');
        return forbidden(reply);
      }
    });
    return;
  }

  const maxFailures = options.maxFailures ?? 10;
  const windowMs = options.windowMs ?? 60_000;
  await app.register(rateLimit, { global: false });
  // One counter per client address (req.ip: the peer, since the API trusts no proxy header).
  const failures = app.createRateLimit({ max: maxFailures, timeWindow: windowMs, keyGenerator: (req) => req.ip });

  /** Seconds the caller must wait, or 0 when it may present a credential. */
  const lockedFor = async (req: FastifyRequest): Promise<number> => {
    const state = await failures(req, { increment: false });
    return !state.isAllowed && state.remaining === 0 ? Math.max(1, state.ttlInSeconds) : 0;
  };

  const refuse = async (req: FastifyRequest, reply: FastifyReply, reason: 'invalid token' | 'invalid ticket', message: string) => {
    const state = await failures(req);
    const count = state.isAllowed ? undefined : state.max - state.remaining;
    // Never the credential itself: who, where and how many times is what an operator needs.
    req.log.warn({ ip: req.ip, route: req.routeOptions.url ?? null, reason, failures: count }, 'authentication failed');
    if (!state.isAllowed && state.remaining === 0) {
      req.log.warn({ ip: req.ip, maxFailures, windowMs }, 'too many failed authentication attempts; refusing this address for the rest of the window');
    }
    return unauthorized(reply, message);
  };

  /** The token `credential` is, compared with every accepted token in constant time each. */
  const match = (credential: string): Caller | null => {
    let found: Caller | null = null;
    for (const t of tokens) if (tokenMatches(credential, t.digest) && found === null) found = { name: t.name, scope: t.scope };
    return found;
  };

  app.addHook('onRequest', async (req, reply) => {
    const route = req.routeOptions.url;
    if (isPublicRoute(route)) return;

    const isFeed = route === TICKET_ROUTE;
    const credential = isFeed ? queryValue(req, 'ticket') : bearer(req);
    if (credential === undefined) {
      if (isFeed && queryValue(req, 'token') !== undefined) {
        return unauthorized(reply, 'the live feed does not take the API token in its URL: POST /events/ticket with Authorization: Bearer <token>, then open /events?ticket=<ticket>');
      }
      return unauthorized(reply, isFeed ? 'missing ?ticket=: POST /events/ticket with Authorization: Bearer <token> for one' : 'missing Authorization: Bearer <token>');
    }

    const wait = await lockedFor(req);
    if (wait > 0) {
      req.log.debug({ ip: req.ip, route: route ?? null }, 'refused a credential from an address over the failed-attempt limit');
      return reply
        .code(429)
        .header('retry-after', String(wait))
        .send({ error: 'too_many_requests', message: `too many failed authentication attempts from this address; retry in ${wait} s` });
    }

    if (isFeed) {
      if (await options.tickets.consume(credential)) return;
      return refuse(req, reply, 'invalid ticket', 'invalid, used or expired ticket: POST /events/ticket for a new one');
    }
    const caller = match(credential);
    if (!caller) return refuse(req, reply, 'invalid token', 'invalid token');
    req.caller = caller;
    if (isWrite(req) && caller.scope !== 'operator') {
      req.log.warn({ caller: caller.name, scope: caller.scope, route: route ?? null, method: req.method }, 'refused a write without the operator scope');
      return forbidden(reply);
    }
  });
}
