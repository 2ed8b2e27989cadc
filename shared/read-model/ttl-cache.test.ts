import { createTtlCache } from './ttl-cache';

describe('createTtlCache', () => {
  it('shares one computation between concurrent callers and reuses it until the TTL passes', async () => {
    let t = 0;
    let computations = 0;
    const cache = createTtlCache<number>({ ttlMs: 1000, now: () => t });
    const compute = async () => ++computations;
    const [a, b] = await Promise.all([cache.get('k', compute), cache.get('k', compute)]);
    expect([a, b, computations]).toEqual([1, 1, 1]);
    t = 999;
    expect(await cache.get('k', compute)).toBe(1);
    t = 1000;
    expect(await cache.get('k', compute)).toBe(2);
  });

  it('does not keep failures, and evicts the oldest keys beyond maxEntries', async () => {
    const cache = createTtlCache<string>({ ttlMs: 60_000, maxEntries: 2 });
    await expect(cache.get('bad', async () => Promise.reject(new Error('db down')))).rejects.toThrow('db down');
    expect(await cache.get('bad', async () => 'recovered')).toBe('recovered');
    await cache.get('b', async () => 'b');
    await cache.get('c', async () => 'c');
    expect(cache.size).toBe(2);
    expect(await cache.get('bad', async () => 'recomputed')).toBe('recomputed');
  });
});
