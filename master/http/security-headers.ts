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

/**
 * The API docs page (`/docs`, Swagger UI) sets inline styles from its script; only there are style attributes allowed.
 * Scripts stay restricted to the server's own files.
 */
export const DOCS_CONTENT_SECURITY_POLICY = { ...CONTENT_SECURITY_POLICY, 'style-src': ["'self'", "'unsafe-inline'"] } as const;

const directives = (policy: Record<string, readonly string[]>) => Object.fromEntries(Object.entries(policy).map(([k, v]) => [k, [...v]]));

/**
 * The headers for answers sent before any hook runs (fastify's refusal of a malformed URL), where helmet cannot act;
 * the same values helmet sends.
 */
export const BASE_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': Object.entries(CONTENT_SECURITY_POLICY)
    .map(([k, v]) => `${k} ${v.join(' ')}`)
    .join(';'),
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
});

export async function registerSecurityHeaders(app: FastifyInstance): Promise<void> {
  app.addHook('onRoute', (route) => {
    if (route.url === '/docs' || route.url.startsWith('/docs/')) {
      route.config = { ...(route.config as object), helmet: { contentSecurityPolicy: { useDefaults: false, directives: directives(DOCS_CONTENT_SECURITY_POLICY) } } } as typeof route.config;
    }
  });
  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: { useDefaults: false, directives: directives(CONTENT_SECURITY_POLICY) },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // The API is plain HTTP behind whatever the operator puts in front; HSTS is that front's decision.
    strictTransportSecurity: false,
  });
}
