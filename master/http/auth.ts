import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Bearer-token authentication for the API (API_TOKEN). Decisions are made on the matched route pattern
 * (`request.routeOptions.url`), never on the raw URL, so `/health/../alerts` or `//alerts` cannot slip through a prefix
 * check. Unmatched URLs need the token too: without it a caller learns nothing, not even which paths exist.
 */

/** Routes anyone may call: liveness/readiness probes, and the dashboard's static page and assets (no data in them). */
const PUBLIC_ROUTES = new Set(['/health', '/ready', '/']);
/** EventSource cannot send headers, so the live feed alone also accepts `?token=`. */
const QUERY_TOKEN_ROUTES = new Set(['/events']);

export interface AuthOptions {
  /** When undefined or empty, authentication is off. */
  readonly token?: string;
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

/** Returns the `onRequest` hook enforcing the token, or undefined when no token is configured. */
export function createAuthHook(options: AuthOptions): ((req: FastifyRequest, reply: FastifyReply) => Promise<void>) | undefined {
  if (!options.token) return undefined;
  const expected = digest(options.token);
  return async (req, reply) => {
    const route = req.routeOptions.url;
    if (isPublicRoute(route)) return;
    const header = req.headers.authorization;
    let given: string | undefined;
    if (typeof header === 'string') {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      given = m?.[1];
    }
    if (given === undefined && route !== undefined && QUERY_TOKEN_ROUTES.has(route)) {
      const q = (req.query as Record<string, unknown> | undefined)?.token;
      if (typeof q === 'string') given = q;
    }
    if (given !== undefined && tokenMatches(given, expected)) return;
    await reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="tickwatch"')
      .send({ error: 'unauthorized', message: given === undefined ? 'missing Authorization: Bearer <token>' : 'invalid token' });
  };
}
