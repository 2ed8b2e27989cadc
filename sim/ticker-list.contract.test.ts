import { Decimal } from '../shared/contract/decimal';
import { createTickerSimulator, type TickerSimulator } from './simulator';

type Entry = { ask: string; bid: string; currency: string; pair: string };

async function getJson<T>(sim: TickerSimulator, segment: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`${sim.url}/${segment}`);
  return { status: res.status, body: (await res.json()) as T };
}

describe('ticker simulator: currency lists against the pair endpoint', () => {
  let sim: TickerSimulator;
  const pairs = { 'BTC-USD': '67000', 'ETH-USD': '3500', 'XRP-USD': '0.52', 'BTC-EUR': '62000', 'USD-JPY': '151.3' };
  beforeAll(async () => {
    // Random-walk prices that do not step during the test: every request reads the same simulator instant.
    sim = await createTickerSimulator({ pairs, seed: 7, stepMs: 3_600_000, volatilityPercent: '1', rateLimit: 0 });
    sim.setPrice('ETH-USD', '3500.123456789012345678', '3499.5');
  });
  afterAll(async () => {
    await sim?.close();
  });

  it.each(Object.keys(pairs))('%s: the list of its quote currency gives exactly the pair endpoint quote', async (pair) => {
    const [base, quote] = pair.split('-') as [string, string];
    const own = await getJson<{ ask: string; bid: string; currency: string }>(sim, pair);
    const list = await getJson<Entry[]>(sim, quote);
    expect(own.status).toBe(200);
    expect(list.status).toBe(200);
    const entry = list.body.find((e) => e.pair === `${base}${quote}` && e.currency === quote);
    expect(entry).toEqual({ ask: own.body.ask, bid: own.body.bid, currency: quote, pair: `${base}${quote}` });
  });

  it.each(Object.keys(pairs))('%s: the list of its base currency holds the reciprocal, ask and bid swapped', async (pair) => {
    const [base, quote] = pair.split('-') as [string, string];
    const own = await getJson<{ ask: string; bid: string }>(sim, pair);
    const list = await getJson<Entry[]>(sim, base);
    const inverse = list.body.find((e) => e.pair === `${quote}${base}`);
    expect(inverse?.currency).toBe(base);
    expect(inverse?.ask).toBe(new Decimal(1).div(own.body.bid).toFixed(18, Decimal.ROUND_UP));
    expect(inverse?.bid).toBe(new Decimal(1).div(own.body.ask).toFixed(18, Decimal.ROUND_DOWN));
  });

  it('leaves out an omitted entry (the pair endpoint still answers) and puts it back', async () => {
    sim.omitFromLists('BTCUSD');
    const without = await getJson<Entry[]>(sim, 'USD');
    expect(without.body.map((e) => e.pair)).not.toContain('BTCUSD');
    expect(without.body.map((e) => e.pair)).toContain('USDBTC');
    expect((await getJson(sim, 'BTC-USD')).status).toBe(200);
    sim.omitFromLists('BTCUSD', false);
    expect((await getJson<Entry[]>(sim, 'USD')).body.map((e) => e.pair)).toContain('BTCUSD');
  });

  it('logs list and pair requests with their kind, against one rate limit', async () => {
    const limited = await createTickerSimulator({ pairs: { 'BTC-USD': '1' }, rateLimit: 3, rateWindowMs: 60_000 });
    try {
      const statuses = [];
      for (const segment of ['USD', 'BTC-USD', 'USD', 'BTC-USD']) statuses.push((await fetch(`${limited.url}/${segment}`)).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      expect(limited.requestLog.map((e) => [e.path, e.kind, e.status])).toEqual([
        ['/v0/ticker/USD', 'list', 200],
        ['/v0/ticker/BTC-USD', 'pair', 200],
        ['/v0/ticker/USD', 'list', 200],
        ['/v0/ticker/BTC-USD', undefined, 429],
      ]);
    } finally {
      await limited.close();
    }
  });

  it('applies injected faults to a list request', async () => {
    sim.injectFault({ fault: 'server-error', status: 503 }, { pair: 'USD' });
    sim.injectFault('malformed', { pair: 'USD' });
    const first = await fetch(`${sim.url}/USD`);
    const second = await fetch(`${sim.url}/USD`);
    expect(first.status).toBe(503);
    expect(await second.text()).toMatch(/^<html>/);
    expect((await fetch(`${sim.url}/USD`)).status).toBe(200);
  });
});
