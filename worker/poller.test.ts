import { createLogger } from '../shared/platform/logger';
import { createPoller, type TickResult } from './poller';

const logger = createLogger({ name: 'test', level: 'silent' });

/** Advances fake time in small steps so awaited promises inside ticks get to run. */
async function advance(ms: number, step = 10): Promise<void> {
  for (let t = 0; t < ms; t += step) await jest.advanceTimersByTimeAsync(step);
}

describe('poller', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('ticks at a fixed rate from the planned start, so request time does not accumulate as drift', async () => {
    const starts: number[] = [];
    const poller = createPoller({
      intervalMs: 1000,
      logger,
      tick: async () => {
        starts.push(Date.now());
        await new Promise((r) => setTimeout(r, 300)); // each request takes 300 ms
        return { next: 'on-schedule' };
      },
    });
    poller.start();
    await advance(5_050);
    const stopped = poller.stop();
    await advance(300); // the tick in flight finishes
    await stopped;
    expect(starts.map((t) => t - 1_000_000)).toEqual([0, 1000, 2000, 3000, 4000, 5000]);
  });

  it('never runs two ticks at once: a slow answer delays to the next slot, it does not stack', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const starts: number[] = [];
    const poller = createPoller({
      intervalMs: 1000,
      logger,
      tick: async () => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        starts.push(Date.now() - 1_000_000);
        await new Promise((r) => setTimeout(r, starts.length === 1 ? 2500 : 10));
        inFlight--;
        return { next: 'on-schedule' };
      },
    });
    poller.start();
    await advance(4_500);
    await poller.stop();
    expect(maxInFlight).toBe(1);
    // The first tick overran slots 1000 and 2000; the next runs at 3000, on the original grid.
    expect(starts).toEqual([0, 3000, 4000]);
  });

  it('waits the delay a tick asks for (backoff), then keeps the rate from there', async () => {
    const starts: number[] = [];
    const results: TickResult[] = [{ next: 'delay', delayMs: 2500 }, { next: 'on-schedule' }, { next: 'on-schedule' }];
    const poller = createPoller({
      intervalMs: 1000,
      logger,
      tick: async () => {
        starts.push(Date.now() - 1_000_000);
        return results.shift() ?? { next: 'on-schedule' };
      },
    });
    poller.start();
    await advance(4_600);
    await poller.stop();
    expect(starts).toEqual([0, 2500, 3500, 4500]);
  });

  it('stop() waits for the tick in flight and schedules nothing after it', async () => {
    let finished = false;
    let ticks = 0;
    const poller = createPoller({
      intervalMs: 100,
      logger,
      tick: async () => {
        ticks++;
        await new Promise((r) => setTimeout(r, 500));
        finished = true;
        return { next: 'on-schedule' };
      },
    });
    poller.start();
    await advance(50);
    const stopped = poller.stop();
    let resolved = false;
    void stopped.then(() => (resolved = true));
    await advance(200);
    expect(resolved).toBe(false);
    await advance(400);
    expect(resolved).toBe(true);
    expect(finished).toBe(true);
    await advance(1000);
    expect(ticks).toBe(1);
    expect(poller.running).toBe(false);
  });

  it('aborts waits before the request when stopping', async () => {
    let aborted = false;
    const poller = createPoller({
      intervalMs: 100,
      logger,
      tick: (signal) =>
        new Promise<TickResult>((resolve) => {
          signal.addEventListener('abort', () => {
            aborted = true;
            resolve({ next: 'on-schedule' });
          });
        }),
    });
    poller.start();
    await advance(20);
    await poller.stop();
    expect(aborted).toBe(true);
  });

  it('survives a tick that throws, retrying after one interval', async () => {
    const starts: number[] = [];
    const poller = createPoller({
      intervalMs: 1000,
      logger,
      tick: async () => {
        starts.push(Date.now() - 1_000_000);
        if (starts.length === 1) throw new Error('boom');
        return { next: 'on-schedule' };
      },
    });
    poller.start();
    await advance(2_050);
    await poller.stop();
    expect(starts).toEqual([0, 1000, 2000]);
  });
});
