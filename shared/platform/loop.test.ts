import { createLoop } from './loop';

const tick = () => new Promise((r) => setImmediate(r));

describe('createLoop', () => {
  it('runs rounds one after another, never overlapping, until stopped', async () => {
    let inRound = 0;
    let maxInRound = 0;
    let rounds = 0;
    const loop = createLoop({
      async round() {
        inRound++;
        maxInRound = Math.max(maxInRound, inRound);
        await tick();
        inRound--;
        rounds++;
        return 0;
      },
      onError: () => undefined,
    });
    loop.start();
    loop.start();
    while (rounds < 20) await tick();
    await loop.stop();
    const after = rounds;
    await tick();
    expect(maxInRound).toBe(1);
    expect(rounds).toBe(after);
  });

  it('stop() waits for the round in flight and returns the same promise every time', async () => {
    let release!: () => void;
    let finished = false;
    const loop = createLoop({
      round: () =>
        new Promise<number>((resolve) => {
          release = () => {
            finished = true;
            resolve(1000);
          };
        }),
      onError: () => undefined,
    });
    loop.start();
    await tick();
    const first = loop.stop();
    expect(loop.stop()).toBe(first);
    expect(loop.active).toBe(false);
    release();
    await first;
    expect(finished).toBe(true);
  });

  it('cuts a long wait short on stop and on wake, and does not lose a wake that arrives mid-round', async () => {
    let rounds = 0;
    let wakeDuringRound = false;
    const loop = createLoop({
      async round() {
        rounds++;
        if (wakeDuringRound) {
          wakeDuringRound = false;
          loop.wake();
        }
        return 60_000;
      },
      onError: () => undefined,
    });
    loop.start();
    await tick();
    expect(rounds).toBe(1);
    loop.wake();
    await tick();
    expect(rounds).toBe(2);
    wakeDuringRound = true;
    loop.wake();
    await tick();
    await tick();
    expect(rounds).toBe(4);
    const started = Date.now();
    await loop.stop();
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('reports a failure streak once per failure, backs off, and says when it recovered', async () => {
    jest.useFakeTimers();
    try {
      const failures: number[] = [];
      let recovered = 0;
      let calls = 0;
      const loop = createLoop({
        async round() {
          calls++;
          if (calls <= 3) throw new Error(`down ${calls}`);
          return 60_000;
        },
        onError: (_err, n) => void failures.push(n),
        onRecover: () => recovered++,
        backoff: { baseMs: 100, maxMs: 1000 },
      });
      loop.start();
      await jest.advanceTimersByTimeAsync(5000);
      expect(failures).toEqual([1, 2, 3]);
      expect(recovered).toBe(1);
      expect(calls).toBe(4);
      const stopped = loop.stop();
      await jest.advanceTimersByTimeAsync(0);
      await stopped;
    } finally {
      jest.useRealTimers();
    }
  });

  it('runs interrupt before waiting for the round and finally after it', async () => {
    const order: string[] = [];
    let release!: () => void;
    const loop = createLoop({
      round: () => new Promise<number>((resolve) => (release = () => (order.push('round ended'), resolve(0)))),
      onError: () => undefined,
      interrupt: () => {
        order.push('interrupt');
        release();
      },
      finally: () => void order.push('finally'),
    });
    loop.start();
    await tick();
    await loop.stop();
    expect(order).toEqual(['interrupt', 'round ended', 'finally']);
  });
});
