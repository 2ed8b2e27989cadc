import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';

/**
 * Security headers on every answer (API, dashboard, docs, errors, 404s), through @fastify/helmet's `onRequest` hook.
 *
 * The Content-Security-Policy allows only this server's own files: the dashboard loads its scripts, styles and uPlot from
 * `/dashboard/`, talks to its own origin, and needs no inline script or style attribute (dynamic sizes are set through
 * the CSSOM, which the policy allows). `data:` images cover the page's empty favicon and the docs' inline icons.
 * `frame-ancestors 'none'` (and X-Frame-Options) keeps the pages out of other sites' frames; no Referer leaves the site.
 */
export const CONTENT_SECURITY_POLICY = {
  'default-src': ["'self'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  'style-src': ["'self'"],
  'img-src': ["'self'", 'data:'],
  'font-src': ["'self'"],
  'connect-src': ["'self'"],
  'object-src': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
} as const;

export async function registerSecurityHeaders(app: FastifyInstance): Promise<void> {
  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: Object.fromEntries(Object.entries(CONTENT_SECURITY_POLICY).map(([k, v]) => [k, [...v]])),
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // The API is plain HTTP behind whatever the operator puts in front; HSTS is that front's decision.
    strictTransportSecurity: false,
  });
}
