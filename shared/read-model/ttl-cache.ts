/**
 * A small in-process cache for answers many clients poll (GET /stats): entries live `ttlMs`, concurrent misses for the
 * same key share one computation (no stampede on the database when the entry expires under load), failures are not
 * cached, and the oldest entries are evicted beyond `maxEntries`. Per process on purpose: masters stay stateless and a
 * couple of seconds of staleness is what a dashboard polling every few seconds sees anyway.
 */
export interface TtlCache<T> {
  get(key: string, compute: () => Promise<T>): Promise<T>;
  readonly size: number;
}

export function createTtlCache<T>(options: { ttlMs: number; maxEntries?: number; now?: () => number }): TtlCache<T> {
  const now = options.now ?? Date.now;
  const maxEntries = options.maxEntries ?? 1000;
  const entries = new Map<string, { expires: number; value: Promise<T> }>();
  return {
    get size() {
      return entries.size;
    },
    get(key, compute) {
      const t = now();
      const hit = entries.get(key);
      if (hit && hit.expires > t) return hit.value;
      if (hit) entries.delete(key);
      const value = compute();
      entries.set(key, { expires: t + options.ttlMs, value });
      value.catch(() => {
        if (entries.get(key)?.value === value) entries.delete(key);
      });
      while (entries.size > maxEntries) {
        const oldest = entries.keys().next().value;
        if (oldest === undefined) break;
        entries.delete(oldest);
      }
      return value;
    },
  };
}
