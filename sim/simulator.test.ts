import { startService } from '../test/helpers/process';
import { loadSimConfig } from './config';
import { parseSimScript } from './script';
import { createTickerSimulator, type TickerSimulator } from './simulator';

const PLAIN = /^\d+(\.\d{1,18})?$/;

async function get(sim: TickerSimulator, segment: string): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(`${sim.url}/${segment}`);
  return { status: res.status, body: await res.text(), headers: res.headers };
}

describe('ticker simulator', () => {
  let sim: TickerSimulator;
  afterEach(async () => {
    await sim?.close();
  });

  describe('Uphold contract', () => {
    beforeEach(async () => {
      sim = await createTickerSimulator({ pairs: { 'BTC-USD': '67000', 'ETH-USD': '3500', 'BTC-EUR': '62000' }, seed: 1 });
    });
    it('answers a pair with ask, bid and currency as plain decimal strings and no pair field', async () => {
      const res = await get(sim, 'BTC-USD');
      expect(res.status).toBe(200);
      const body = JSON.parse(res.body);
      expect(Object.keys(body).sort()).toEqual(['ask', 'bid', 'currency']);
      expect(body.ask).toMatch(PLAIN);
      expect(body.bid).toMatch(PLAIN);
      expect(Number(body.ask)).toBeGreaterThanOrEqual(Number(body.bid));
      expect(body.currency).toBe('USD');
    });
    it('answers a single currency with an array of both directions of every pair touching it, named as Uphold does', async () => {
      const res = await get(sim, 'USD');
      expect(res.status).toBe(200);
      const body = JSON.parse(res.body) as { pair: string; currency: string }[];
      expect(body.map((b) => `${b.pair} in ${b.currency}`).sort()).toEqual(['BTCUSD in USD', 'ETHUSD in USD', 'USDBTC in BTC', 'USDETH in ETH']);
    });
    it('answers an unknown pair with 404 not_found', async () => {
      const res = await get(sim, 'DOGE-XYZ');
      expect(res.status).toBe(404);
      expect(JSON.parse(res.body)).toEqual({ code: 'not_found', message: 'Not Found' });
    });
    it('serves a price set by the test exactly', async () => {
      sim.setPrice('BTC-USD', '0.000000012345678912', '0.000000012345678911');
      expect(JSON.parse((await get(sim, 'BTC-USD')).body)).toEqual({ ask: '0.000000012345678912', bid: '0.000000012345678911', currency: 'USD' });
    });
    it('logs every request with its status', async () => {
      await get(sim, 'BTC-USD');
      await get(sim, 'NOPE-USD');
      expect(sim.requestLog.map((e) => [e.path, e.status])).toEqual([
        ['/v0/ticker/BTC-USD', 200],
        ['/v0/ticker/NOPE-USD', 404],
      ]);
      expect(sim.countRequests('BTC-USD')).toBe(1);
    });
  });

  describe('random walk', () => {
    it('moves prices over time, always as plain decimal strings', async () => {
      const series = async (seed: number) => {
        const s = await createTickerSimulator({ pairs: { 'BTC-USD': '100' }, seed, stepMs: 1, volatilityPercent: '1' });
        const out: string[] = [];
        for (let i = 0; i < 5; i++) {
          await new Promise((r) => setTimeout(r, 3));
          out.push(JSON.parse((await get(s, 'BTC-USD')).body).ask);
        }
        await s.close();
        return out;
      };
      sim = await createTickerSimulator({ pairs: {} });
      const a = await series(42);
      expect(new Set(a).size).toBeGreaterThan(1);
      expect(a.every((p) => PLAIN.test(p))).toBe(true);
    });
  });

  describe('when over the rate limit', () => {
    it('answers 429 too_many_requests with Retry-After, per window', async () => {
      sim = await createTickerSimulator({ pairs: { 'BTC-USD': '1' }, rateLimit: 3, rateWindowMs: 2000 });
      const statuses: number[] = [];
      let last: Awaited<ReturnType<typeof get>> | undefined;
      for (let i = 0; i < 5; i++) {
        last = await get(sim, 'BTC-USD');
        statuses.push(last.status);
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      expect(JSON.parse(last!.body)).toEqual({ code: 'too_many_requests', message: 'Too Many Requests' });
      expect(Number(last!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    });
  });

  describe('fault injection', () => {
    beforeEach(async () => {
      sim = await createTickerSimulator({ pairs: { 'BTC-USD': '100' }, volatilityPercent: '0' });
    });
    it.each([
      ['server-error', 500, (b: string) => expect(JSON.parse(b).code).toBe('internal_server_error')],
      ['malformed', 200, (b: string) => expect(() => JSON.parse(b)).toThrow()],
      ['zero', 200, (b: string) => expect(JSON.parse(b).ask).toBe('0')],
      ['negative', 200, (b: string) => expect(JSON.parse(b).ask).toMatch(/^-/)],
      ['non-numeric', 200, (b: string) => expect(JSON.parse(b).ask).toBe('NaN')],
      ['missing-field', 200, (b: string) => expect(JSON.parse(b).ask).toBeUndefined()],
      ['exponent', 200, (b: string) => expect(JSON.parse(b).ask).toMatch(/e/)],
      ['array-body', 200, (b: string) => expect(Array.isArray(JSON.parse(b))).toBe(true)],
      ['not-found', 404, (b: string) => expect(JSON.parse(b).code).toBe('not_found')],
      ['rate-limit', 429, (b: string) => expect(JSON.parse(b).code).toBe('too_many_requests')],
    ] as const)('%s answers %d once, then the price again', async (fault, status, check) => {
      sim.injectFault(fault);
      const res = await get(sim, 'BTC-USD');
      expect(res.status).toBe(status);
      check(res.body);
      expect(JSON.parse((await get(sim, 'BTC-USD')).body)).toMatchObject({ ask: expect.stringMatching(/^100/) });
    });
    it('sends Retry-After with an injected 429', async () => {
      sim.injectFault({ fault: 'rate-limit', retryAfterSeconds: 7 });
      expect((await get(sim, 'BTC-USD')).headers.get('retry-after')).toBe('7');
    });
    it('adds latency', async () => {
      sim.injectFault({ fault: 'latency', ms: 300 });
      const started = Date.now();
      expect((await get(sim, 'BTC-USD')).status).toBe(200);
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    });
    it('resets the connection', async () => {
      sim.injectFault('reset');
      await expect(get(sim, 'BTC-USD')).rejects.toThrow();
    });
    it('leaves a request hanging until the client gives up', async () => {
      sim.injectFault('hang');
      await expect(fetch(`${sim.url}/BTC-USD`, { signal: AbortSignal.timeout(200) })).rejects.toThrow();
      expect(sim.requestLog.at(-1)).toMatchObject({ status: 0, fault: 'hang' });
    });
    it('targets one pair only when asked', async () => {
      sim.setPrice('ETH-USD', '5');
      sim.injectFault('server-error', { pair: 'ETH-USD', times: 2 });
      expect((await get(sim, 'BTC-USD')).status).toBe(200);
      expect((await get(sim, 'ETH-USD')).status).toBe(500);
      expect((await get(sim, 'ETH-USD')).status).toBe(500);
      expect((await get(sim, 'ETH-USD')).status).toBe(200);
    });
  });

  describe('scripts', () => {
    it('serves the scripted steps in order, one per request, then keeps the last price', async () => {
      const script = parseSimScript(JSON.stringify({ pairs: { 'BTC-USD': ['100', { fault: 'server-error', status: 503 }, { ask: '101', bid: '100.5' }] } }));
      sim = await createTickerSimulator({ script });
      const answers: string[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await get(sim, 'BTC-USD');
        answers.push(res.status === 200 ? `${JSON.parse(res.body).ask}/${JSON.parse(res.body).bid}` : String(res.status));
      }
      expect(answers).toEqual(['100/100', '503', '101/100.5', '101/100.5']);
    });
    it('rejects a bad script naming the step', () => {
      expect(() => parseSimScript('{"pairs":{"BTC-USD":["-5"]}}')).toThrow(/pairs\.BTC-USD\.0/);
      expect(() => parseSimScript('not json')).toThrow(/not valid JSON/);
    });
  });

  describe('configuration', () => {
    it('reads pairs, port and limits from the environment', () => {
      expect(loadSimConfig({ SIM_PAIRS: 'btc-usd=67000, ETH-USD=3500', SIM_PORT: '0', SIM_RATE_LIMIT_PER_MIN: '0' })).toMatchObject({
        pairs: { 'BTC-USD': '67000', 'ETH-USD': '3500' },
        port: 0,
        rateLimitPerMin: 0,
      });
    });
    it.each([
      ['SIM_PORT', { SIM_PORT: '70000' }],
      ['SIM_PAIRS', { SIM_PAIRS: 'BTC-USD' }],
      ['SIM_PAIRS', { SIM_PAIRS: 'BTC-USD=-1' }],
      ['SIM_ERROR_RATE', { SIM_ERROR_RATE: '2' }],
      ['SIM_RATE_LIMIT_PER_MIN', { SIM_RATE_LIMIT_PER_MIN: 'lots' }],
    ])('rejects a bad %s', (name, env) => {
      expect(() => loadSimConfig(env)).toThrow(new RegExp(name));
    });
    it('npm run sim exits 2 with one line naming a bad variable', async () => {
      const proc = startService('sim/main.ts', { SIM_PORT: 'eighty' });
      expect(await proc.exited).toBe(2);
      expect(proc.output().trim().split('\n')).toHaveLength(1);
      expect(proc.output()).toMatch(/SIM_PORT="eighty" is invalid/);
    });
    it('npm run sim serves the configured pairs', async () => {
      const proc = startService('sim/main.ts', { SIM_PORT: '0', SIM_PAIRS: 'ABC-USD=5', LOG_LEVEL: 'info' });
      try {
        await proc.waitForOutput('ticker simulator listening');
        const port = /"port":(\d+)/.exec(proc.output())![1];
        const res = await fetch(`http://127.0.0.1:${port}/v0/ticker/ABC-USD`);
        expect(res.status).toBe(200);
      } finally {
        expect(await proc.stop()).toBe(0);
      }
    });
  });
});
