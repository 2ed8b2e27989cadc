import fc from 'fast-check';
import { backoffDelay, exponentialDelay, sleep, TimeoutError, withTimeout } from './retry';

describe('exponentialDelay', () => {
  it('doubles from the base on each attempt and stops at the cap', () => {
    expect([1, 2, 3, 4, 5, 6].map((a) => exponentialDelay(a, 100, 1000))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
  it('treats attempt 0 or below as the first', () => expect(exponentialDelay(0, 100, 1000)).toBe(100));
  it('never overflows for huge attempt numbers', () => expect(exponentialDelay(10_000, 100, 5000)).toBe(5000));
});

describe('backoffDelay', () => {
  it('stays within the upper half of the exponential delay, for any attempt and random draw', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
        const exp = exponentialDelay(attempt, 200, 5000);
        const d = backoffDelay(attempt, 200, 5000, () => r);
        return d >= Math.floor(exp / 2) && d <= exp;
      }),
    );
  });
});

describe('withTimeout', () => {
  it('passes the value through when the promise settles first', async () => {
    await expect(withTimeout(Promise.resolve(7), 1000, 'x')).resolves.toBe(7);
  });
  it('rejects with a TimeoutError naming what did not answer', async () => {
    const never = new Promise<never>(() => undefined);
    const err = await withTimeout(never, 20, 'Redis').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toBe('Redis did not answer within 20 ms');
  });
  it("keeps the promise's own rejection", async () => {
    await expect(withTimeout(Promise.reject(new Error('refused')), 1000, 'x')).rejects.toThrow('refused');
  });
});

describe('sleep', () => {
  it('resolves false when it slept the whole time', async () => expect(await sleep(5)).toBe(false));
  it('resolves true at once when the signal aborts', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const slept = sleep(60_000, controller.signal);
    controller.abort();
    expect(await slept).toBe(true);
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});
