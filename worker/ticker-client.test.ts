import http from 'node:http';
import { createTickerSimulator, type TickerSimulator } from '../sim/simulator';
import { createTickerClient, parseRetryAfter, type TickerClient } from './ticker-client';

describe('ticker client (against the simulator)', () => {
  let sim: TickerSimulator;
  let client: TickerClient;
  beforeEach(async () => {
    // Generous timeout: CI machines are loaded, and only the hang case should ever reach it.
    sim = await createTickerSimulator({ pairs: { 'BTC-USD': '100' }, volatilityPercent: '0', rateLimit: 0 });
    sim.setPrice('BTC-USD', '100.5', '99.5');
    client = createTickerClient({ baseUrl: sim.url, pair: 'BTC-USD', timeoutMs: 2000, defaultRetryAfterMs: 12_000 });
  });
  afterEach(async () => {
    client?.close();
    await sim?.close();
  });

  it('returns the quote as exact strings', async () => {
    expect(await client.fetchQuote()).toMatchObject({ kind: 'price', ask: '100.5', bid: '99.5' });
  });

  it.each([
    ['server-error', 'transient', /500 internal_server_error/],
    ['reset', 'transient', /network error/],
    ['hang', 'transient', /timed out after 2000 ms/],
    ['malformed', 'bad-answer', /not JSON/],
    ['array-body', 'bad-answer', /an array/],
    ['zero', 'bad-answer', /ask is not a positive plain decimal string \(got "0"\)/],
    ['negative', 'bad-answer', /ask .*"-100.5"/],
    ['non-numeric', 'bad-answer', /ask .*"NaN"/],
    ['missing-field', 'bad-answer', /ask .*got nothing/],
    ['exponent', 'bad-answer', /ask .*e\+/],
    ['not-found', 'invalid-pair', /404 not_found: the ticker does not know pair BTC-USD/],
  ] as const)('classifies %s as %s with a clear reason', async (fault, kind, reason) => {
    sim.injectFault(fault);
    const outcome = await client.fetchQuote();
    expect(outcome.kind).toBe(kind);
    expect(outcome).toMatchObject({ reason: expect.stringMatching(reason) });
    expect(await client.fetchQuote()).toMatchObject({ kind: 'price' });
  });

  it('reads Retry-After from a 429', async () => {
    sim.injectFault({ fault: 'rate-limit', retryAfterSeconds: 2 });
    expect(await client.fetchQuote()).toMatchObject({ kind: 'rate-limited', retryAfterMs: 2000 });
  });

  it('classifies an unknown pair as invalid-pair', async () => {
    const other = createTickerClient({ baseUrl: sim.url, pair: 'NOPE-USD', timeoutMs: 2000 });
    expect(await other.fetchQuote()).toMatchObject({ kind: 'invalid-pair' });
    other.close();
  });

  it('never throws when nothing listens', async () => {
    const dead = createTickerClient({ baseUrl: 'http://127.0.0.1:1/v0/ticker', pair: 'BTC-USD', timeoutMs: 300 });
    expect(await dead.fetchQuote()).toMatchObject({ kind: 'transient', reason: expect.stringMatching(/network error.*ECONNREFUSED/) });
    dead.close();
  });
});

describe('ticker client (answers the simulator never gives)', () => {
  let server: http.Server;
  let answer: (res: http.ServerResponse) => void;
  let url: string;
  beforeAll(async () => {
    server = http.createServer((_req, res) => answer(res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v0/ticker`;
  });
  afterAll(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  const fetchWith = async (respond: (res: http.ServerResponse) => void) => {
    answer = respond;
    const client = createTickerClient({ baseUrl: url, pair: 'BTC-USD', timeoutMs: 500, defaultRetryAfterMs: 12_000 });
    try {
      return await client.fetchQuote();
    } finally {
      client.close();
    }
  };

  it('uses the default wait when a 429 has no Retry-After', async () => {
    expect(await fetchWith((res) => res.writeHead(429).end())).toMatchObject({ kind: 'rate-limited', retryAfterMs: 12_000, reason: expect.stringMatching(/missing/) });
  });
  it('treats other 4xx as a bad answer naming the status', async () => {
    expect(await fetchWith((res) => res.writeHead(403).end('{"code":"forbidden"}'))).toMatchObject({ kind: 'bad-answer', reason: 'unexpected status 403 forbidden' });
  });
  it('rejects JSON null and numbers', async () => {
    expect(await fetchWith((res) => res.writeHead(200).end('null'))).toMatchObject({ kind: 'bad-answer', reason: expect.stringMatching(/null/) });
    expect(await fetchWith((res) => res.writeHead(200).end('{"ask":100,"bid":"1"}'))).toMatchObject({ kind: 'bad-answer', reason: expect.stringMatching(/number 100/) });
  });
});

describe('when the ticker sends its headers and then a byte every 200 ms', () => {
  let server: http.Server;
  let url: string;
  const trickles = new Set<NodeJS.Timeout>();
  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(' ');
      // A body that never ends: the socket is never idle long enough for an idle timeout to fire.
      const timer = setInterval(() => res.write(' '), 200);
      trickles.add(timer);
      res.on('close', () => {
        clearInterval(timer);
        trickles.delete(timer);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v0/ticker`;
  });
  afterAll(async () => {
    for (const t of trickles) clearInterval(t);
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('gives up at the request deadline and reports a timeout', async () => {
    const client = createTickerClient({ baseUrl: url, pair: 'BTC-USD', timeoutMs: 1000 });
    try {
      expect(await client.fetchQuote()).toMatchObject({ kind: 'transient', reason: 'timed out after 1000 ms' });
    } finally {
      client.close();
    }
  });
});

describe('parseRetryAfter', () => {
  const now = new Date('2026-11-29T20:00:00Z');
  it.each([
    ['2', 2000],
    [' 30 ', 30_000],
    ['Sun, 29 Nov 2026 20:00:05 GMT', 5000],
    ['Sun, 29 Nov 2026 19:00:00 GMT', 0],
    ['soon', null],
    ['', null],
    [undefined, null],
  ])('%p -> %p', (header, expected) => {
    expect(parseRetryAfter(header, now)).toBe(expected);
  });
});
