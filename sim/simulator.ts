import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { PAIR_RE } from '../shared/contract/alert';
import { Decimal, parsePositiveDecimal } from '../shared/contract/decimal';
import type { Logger } from '../shared/platform/logger';
import { SimScriptSchema, type Fault, type FaultKind, type ScriptStep, type SimScript } from './script';
import { createSeededRandom } from './random';

/** How the simulator is set up. Everything is optional; the defaults give a quiet, fault-free BTC-USD and ETH-USD. */
export interface TickerSimulatorOptions {
  /** @defaultValue 0 (a free port) */
  readonly port?: number;
  /** @defaultValue "127.0.0.1" */
  readonly host?: string;
  /** Starting mid price per pair. @defaultValue { "BTC-USD": "67000", "ETH-USD": "3500" } */
  readonly pairs?: Readonly<Record<string, string>>;
  /** Seed of the random walk and of random faults; equal seeds and request sequences give equal prices. @defaultValue random */
  readonly seed?: number;
  /** Largest move of one random-walk step, in percent of the price. 0 keeps prices still. @defaultValue "0.05" */
  readonly volatilityPercent?: string;
  /** ask - bid, in percent of the mid. @defaultValue "0.02" */
  readonly spreadPercent?: string;
  /** One random-walk step per this many ms (computed lazily on request). @defaultValue 1000 */
  readonly stepMs?: number;
  /** Scripted sequences; scripted pairs ignore the random walk. */
  readonly script?: SimScript;
  /** Requests allowed per client IP per `rateWindowMs`; 0 turns the limit off. @defaultValue 250 */
  readonly rateLimit?: number;
  /** The rate-limit window (sliding). @defaultValue 60000 */
  readonly rateWindowMs?: number;
  /** Random faults on every request. @defaultValue none */
  readonly faultRates?: FaultRates;
  /**
   * Entries left out of every currency list, by Uphold's concatenated name (`BTCUSD`, `USDBTC`): imitates a direction
   * Uphold does not list. The pair endpoint still answers. @defaultValue none
   */
  readonly omitFromLists?: readonly string[];
  /** Requests kept in `requestLog` (oldest dropped first). @defaultValue 100000 */
  readonly requestLogMax?: number;
  readonly logger?: Logger;
}

/** Probabilities (0..1) of random faults and a fixed added latency. */
export interface FaultRates {
  readonly serverErrorRate?: number;
  readonly malformedRate?: number;
  readonly latencyMs?: number;
}

/** One request as the simulator saw it. */
export interface RequestLogEntry {
  /** Epoch ms when the request arrived. */
  readonly at: number;
  readonly path: string;
  readonly ip: string;
  /** HTTP status answered; 0 when the connection was reset or left hanging. */
  readonly status: number;
  /** The fault applied, if any. */
  readonly fault?: FaultKind;
  /** The request's User-Agent header (workers send `tickwatch-worker/<workerId>`), when it had one. */
  readonly userAgent?: string;
  /** `pair`: `GET /v0/ticker/<PAIR>`; `list`: `GET /v0/ticker/<CURRENCY>`; absent for a path that is neither (404) or a request rejected before it was read (429). */
  readonly kind?: 'pair' | 'list';
}

export interface TickerSimulator {
  /** Base URL to give the worker as TICKER_BASE_URL, e.g. `http://127.0.0.1:8090/v0/ticker`. */
  readonly url: string;
  readonly port: number;
  /** Every request, in arrival order (bounded). */
  readonly requestLog: readonly RequestLogEntry[];
  /** Requests received and not answered yet (latency, hang): lets a test act while a request is in flight. */
  readonly pending: number;
  /** Sets a pair's price (adding the pair if new); `bid` defaults to `ask`. Clears any script for that pair. */
  setPrice(pair: string, ask: string, bid?: string): void;
  /** Replaces a pair's script (steps consumed one per request). */
  setScript(pair: string, steps: readonly ScriptStep[]): void;
  /** Removes a pair: it answers 404 from now on. */
  removePair(pair: string): void;
  /** Leaves a list entry (`BTCUSD`, `USDBTC`) out of every currency list, or (`omitted` false) puts it back. */
  omitFromLists(name: string, omitted?: boolean): void;
  /** Applies `fault` to the next `times` requests (for `pair` only, when given). */
  injectFault(fault: Fault | FaultKind, options?: { pair?: string; times?: number }): void;
  /** Changes the random fault rates. */
  setFaultRates(rates: FaultRates): void;
  /** Requests answered for a path segment (pair or currency), e.g. `countRequests('BTC-USD')`. */
  countRequests(segment?: string, status?: number): number;
  close(): Promise<void>;
}

interface PairState {
  mid: Decimal;
  lastStepAt: number;
  /** An explicit quote set by a script or setPrice, served as is. */
  fixed?: { ask: string; bid: string };
  script?: ScriptStep[];
  scriptIndex: number;
}

const STATUS_CODES: Record<number, string> = {
  404: 'not_found',
  429: 'too_many_requests',
  500: 'internal_server_error',
  502: 'bad_gateway',
  503: 'service_unavailable',
  504: 'gateway_timeout',
};

/** Digits after the point for a simulated price: about 8 significant digits, at least 2, at most 18. */
function decimalsFor(price: Decimal): number {
  const intDigits = price.gte(1) ? price.trunc().toFixed().length : 0;
  const leadingZeros = price.lt(1) && price.gt(0) ? -Math.floor(Math.log10(price.toNumber())) - 1 : 0;
  return Math.min(18, Math.max(2, 8 - intDigits + leadingZeros));
}

/**
 * A local stand-in for `https://api.uphold.com/v0/ticker` with Uphold's contract (see docs/uphold-ticker-api.md):
 * random-walk or scripted prices, the per-IP rate limit, and injectable faults. Resolves once listening.
 */
export async function createTickerSimulator(options: TickerSimulatorOptions = {}): Promise<TickerSimulator> {
  const logger = options.logger;
  const random = createSeededRandom(options.seed ?? Math.floor(Math.random() * 2 ** 32));
  const volatility = new Decimal(options.volatilityPercent ?? '0.05').div(100);
  const spread = new Decimal(options.spreadPercent ?? '0.02').div(100);
  const stepMs = options.stepMs ?? 1000;
  const rateLimit = options.rateLimit ?? 250;
  const rateWindowMs = options.rateWindowMs ?? 60_000;
  const requestLogMax = options.requestLogMax ?? 100_000;
  let faultRates: FaultRates = options.faultRates ?? {};
  const pairs = new Map<string, PairState>();
  const injected: { fault: Fault; pair?: string; remaining: number }[] = [];
  const requestLog: RequestLogEntry[] = [];
  /** Arrival times of counted requests per IP, oldest first (a sliding-log limiter). */
  const hits = new Map<string, number[]>();
  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();
  const omitted = new Set<string>((options.omitFromLists ?? []).map((n) => n.toUpperCase()));
  const repeatScripts = options.script ? SimScriptSchema.parse(options.script).repeat : false;

  const addPair = (pair: string, mid: string) => {
    const value = parsePositiveDecimal(mid);
    if (!PAIR_RE.test(pair) || value === null) throw new Error(`invalid simulator pair ${pair}=${mid}: expected PAIR=positive decimal`);
    pairs.set(pair, { mid: value, lastStepAt: Date.now(), scriptIndex: 0 });
  };
  for (const [pair, mid] of Object.entries(options.pairs ?? (options.script ? {} : { 'BTC-USD': '67000', 'ETH-USD': '3500' }))) addPair(pair, mid);
  if (options.script) {
    for (const [pair, steps] of Object.entries(SimScriptSchema.parse(options.script).pairs)) {
      if (!pairs.has(pair)) pairs.set(pair, { mid: new Decimal(1), lastStepAt: Date.now(), scriptIndex: 0 });
      pairs.get(pair)!.script = [...steps];
    }
  }

  const quoteCurrency = (pair: string) => pair.split('-')[1]!;
  const baseCurrency = (pair: string) => pair.split('-')[0]!;

  /**
   * A currency's list as Uphold gives it: for each pair touching the currency both directions, `BASEQUOTE` in QUOTE
   * and `QUOTEBASE` in BASE, the reciprocal with ask and bid swapped (ask = 1 / bid, bid = 1 / ask, 18 dp, rounded
   * away from the mid).
   */
  const listFor = (currency: string, now: number, corrupt?: (q: { ask: string; bid: string }) => Record<string, unknown>): Record<string, unknown>[] => {
    const body: Record<string, unknown>[] = [];
    for (const [p, state] of pairs) {
      if (quoteCurrency(p) !== currency && baseCurrency(p) !== currency) continue;
      walk(state, now);
      const direct = quoteOf(state);
      const inverse = { ask: new Decimal(1).div(direct.bid).toFixed(18, Decimal.ROUND_UP), bid: new Decimal(1).div(direct.ask).toFixed(18, Decimal.ROUND_DOWN) };
      const entries = [
        { pair: `${baseCurrency(p)}${quoteCurrency(p)}`, currency: quoteCurrency(p), quote: direct },
        { pair: `${quoteCurrency(p)}${baseCurrency(p)}`, currency: baseCurrency(p), quote: inverse },
      ];
      for (const e of entries) {
        if (omitted.has(e.pair)) continue;
        body.push({ ...(corrupt ? corrupt(e.quote) : e.quote), currency: e.currency, pair: e.pair });
      }
    }
    return body;
  };

  /** The fault kinds that corrupt the numbers of an answer (a list's entries, or the pair's own quote). */
  const corruptions: Partial<Record<FaultKind, (q: { ask: string; bid: string }) => Record<string, unknown>>> = {
    zero: () => ({ ask: '0', bid: '0.00' }),
    negative: (q) => ({ ask: `-${q.ask}`, bid: `-${q.bid}` }),
    'non-numeric': () => ({ ask: 'NaN', bid: 'n/a' }),
    'missing-field': (q) => ({ bid: q.bid }),
    exponent: (q) => ({ ask: new Decimal(q.ask).toExponential(), bid: new Decimal(q.bid).toExponential() }),
  };

  /**
   * Applies the latency and the faults that replace the whole answer (server error, HTML, 404, 429). Returns the status
   * sent, 0 when the client went away meanwhile, or undefined when the caller answers (normally or corrupted).
   */
  const answerStatusFault = async (res: ServerResponse, fault: Fault | undefined): Promise<number | undefined> => {
    const latency = (fault?.fault === 'latency' ? (fault.ms ?? 1000) : 0) + (faultRates.latencyMs ?? 0);
    if (latency > 0) await new Promise((r) => setTimeout(r, latency));
    if (res.destroyed) return 0;
    switch (fault?.fault) {
      case 'server-error': {
        const status = fault.status ?? 500;
        sendError(res, status);
        return status;
      }
      case 'malformed':
        send(res, 200, '<html><body>Bad gateway</body></html', { 'content-type': 'text/html' });
        return 200;
      case 'not-found':
        sendError(res, 404);
        return 404;
      case 'rate-limit':
        sendError(res, 429, { 'retry-after': String(fault.retryAfterSeconds ?? 2) });
        return 429;
      default:
        return undefined;
    }
  };

  /** Answers a list request with `fault` applied; returns the status, 0 when the client went away. */
  const answerList = async (res: ServerResponse, currency: string, fault: Fault | undefined, now: number): Promise<number> => {
    const sent = await answerStatusFault(res, fault);
    if (sent !== undefined) return sent;
    if (fault?.fault === 'array-body') {
      // The list's own wrong shape: an object where the array belongs.
      send(res, 200, JSON.stringify({ ask: '1', bid: '1', currency }));
      return 200;
    }
    send(res, 200, JSON.stringify(listFor(currency, now, fault ? corruptions[fault.fault] : undefined)));
    return 200;
  };

  /** Walks the price forward by the steps elapsed since the last request (lazily; no timers). */
  const walk = (state: PairState, now: number) => {
    const steps = Math.min(Math.floor((now - state.lastStepAt) / stepMs), 1000);
    if (steps <= 0) return;
    state.lastStepAt += steps * stepMs;
    if (volatility.isZero()) return;
    for (let i = 0; i < steps; i++) {
      const move = volatility.times(random() * 2 - 1);
      state.mid = state.mid.times(move.plus(1));
    }
  };

  const quoteOf = (state: PairState): { ask: string; bid: string } => {
    if (state.fixed) return state.fixed;
    const dp = decimalsFor(state.mid);
    const half = state.mid.times(spread).div(2);
    return { ask: state.mid.plus(half).toFixed(dp, Decimal.ROUND_UP), bid: state.mid.minus(half).toFixed(dp, Decimal.ROUND_DOWN) };
  };

  /** Consumes a script step: either sets the price (and returns no fault) or returns the fault to apply. */
  const advanceScript = (state: PairState): Fault | undefined => {
    const steps = state.script;
    if (!steps || steps.length === 0) return undefined;
    if (state.scriptIndex >= steps.length) {
      if (!repeatScripts) return undefined;
      state.scriptIndex = 0;
    }
    const step = steps[state.scriptIndex++]!;
    if (typeof step === 'string') state.fixed = { ask: step, bid: step };
    else if ('fault' in step) return step;
    else state.fixed = { ask: step.ask, bid: step.bid };
    return undefined;
  };

  const takeInjected = (segment: string): Fault | undefined => {
    const index = injected.findIndex((f) => f.pair === undefined || f.pair === segment);
    if (index < 0) return undefined;
    const entry = injected[index]!;
    if (--entry.remaining <= 0) injected.splice(index, 1);
    return entry.fault;
  };

  const randomFault = (): Fault | undefined => {
    if (faultRates.serverErrorRate && random() < faultRates.serverErrorRate) return { fault: 'server-error' };
    if (faultRates.malformedRate && random() < faultRates.malformedRate) return { fault: 'malformed' };
    return undefined;
  };

  /** Seconds to wait (Retry-After) when this IP is over the limit; otherwise counts the request and returns null. Rejected requests are not counted. */
  const overLimit = (ip: string, now: number): number | null => {
    if (rateLimit <= 0) return null;
    const list = hits.get(ip) ?? [];
    while (list.length > 0 && list[0]! <= now - rateWindowMs) list.shift();
    if (list.length >= rateLimit) {
      hits.set(ip, list);
      return Math.max(1, Math.ceil((list[0]! + rateWindowMs - now) / 1000));
    }
    list.push(now);
    hits.set(ip, list);
    return null;
  };

  const log = (entry: RequestLogEntry) => {
    requestLog.push(entry);
    if (requestLog.length > requestLogMax) requestLog.splice(0, requestLog.length - requestLogMax);
  };

  const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
  };
  const sendError = (res: ServerResponse, status: number, headers: Record<string, string> = {}) => {
    const code = STATUS_CODES[status] ?? 'error';
    const message = code.split('_').map((w) => w[0]!.toUpperCase() + w.slice(1)).join(' ');
    send(res, status, JSON.stringify({ code, message }), headers);
  };

  /** Answers a faulted request and returns its status, or -1 when there is no fault to apply (answer normally). */
  const answerPair = async (res: ServerResponse, state: PairState, fault: Fault | undefined, currency: string): Promise<number> => {
    const sent = await answerStatusFault(res, fault);
    if (sent !== undefined) return sent;
    const quote = quoteOf(state);
    if (fault?.fault === 'array-body') {
      send(res, 200, JSON.stringify([{ ...quote, currency }]));
      return 200;
    }
    const corrupt = fault ? corruptions[fault.fault] : undefined;
    if (!corrupt) return -1;
    send(res, 200, JSON.stringify({ ...corrupt(quote), currency }));
    return 200;
  };

  let pending = 0;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const now = Date.now();
    const ip = (req.socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
    const path = (req.url ?? '/').split('?')[0]!;
    const match = /^\/v0\/ticker\/([^/]+)\/?$/.exec(path);
    const userAgent = req.headers['user-agent'];
    const record = (status: number, fault?: FaultKind, kind?: 'pair' | 'list') =>
      log({ at: now, path, ip, status, ...(fault ? { fault } : {}), ...(userAgent ? { userAgent } : {}), ...(kind ? { kind } : {}) });
    if (req.method !== 'GET' || !match) {
      sendError(res, 404);
      record(404);
      return;
    }
    const retryAfter = overLimit(ip, now);
    if (retryAfter !== null) {
      sendError(res, 429, { 'retry-after': String(retryAfter) });
      record(429);
      return;
    }
    const segment = decodeURIComponent(match[1]!).toUpperCase();
    const pairName = pairs.has(segment) ? segment : [...pairs.keys()].find((p) => p.replace('-', '') === segment);
    const isList = pairName === undefined && /^[A-Z0-9]+$/.test(segment) && [...pairs.keys()].some((p) => quoteCurrency(p) === segment || baseCurrency(p) === segment);
    const kind = pairName !== undefined ? 'pair' : isList ? 'list' : undefined;
    let fault = takeInjected(segment) ?? randomFault();
    if (fault?.fault === 'reset') {
      record(0, 'reset', kind);
      req.socket.destroy();
      return;
    }
    if (fault?.fault === 'hang') {
      record(0, 'hang', kind);
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }

    if (pairName !== undefined) {
      const state = pairs.get(pairName)!;
      walk(state, now);
      fault = advanceScript(state) ?? fault;
      const faulted = await answerPair(res, state, fault, quoteCurrency(pairName));
      if (faulted >= 0) {
        record(faulted, fault?.fault, 'pair');
        return;
      }
      send(res, 200, JSON.stringify({ ...quoteOf(state), currency: quoteCurrency(pairName) }));
      record(200, fault?.fault, 'pair');
      return;
    }
    // A single currency: every pair touching it, both directions, with Uphold's `pair` field (scripts are not consumed).
    if (isList) {
      record(await answerList(res, segment, fault, now), fault?.fault, 'list');
      return;
    }
    sendError(res, 404);
    record(404, fault?.fault);
  };

  const server = http.createServer((req, res) => {
    pending++;
    res.once('close', () => pending--);
    handle(req, res).catch((err: unknown) => {
      logger?.error({ err: String(err) }, 'simulator request failed');
      if (!res.headersSent) sendError(res, 500);
    });
  });
  server.keepAliveTimeout = 5000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const displayHost = (options.host ?? '127.0.0.1') === '0.0.0.0' ? '127.0.0.1' : (options.host ?? '127.0.0.1');
  let closing: Promise<void> | undefined;

  return {
    url: `http://${displayHost}:${port}/v0/ticker`,
    port,
    requestLog,
    get pending() {
      return pending;
    },
    setPrice(pair, ask, bid = ask) {
      if (parsePositiveDecimal(ask) === null || parsePositiveDecimal(bid) === null) throw new Error(`setPrice(${pair}): ask and bid must be positive plain decimals`);
      if (!pairs.has(pair)) addPair(pair, ask);
      const state = pairs.get(pair)!;
      state.script = undefined;
      state.fixed = { ask, bid };
    },
    setScript(pair, steps) {
      if (!pairs.has(pair)) addPair(pair, '1');
      const state = pairs.get(pair)!;
      state.script = SimScriptSchema.parse({ pairs: { [pair]: steps } }).pairs[pair];
      state.scriptIndex = 0;
    },
    removePair(pair) {
      pairs.delete(pair);
    },
    omitFromLists(name, isOmitted = true) {
      if (isOmitted) omitted.add(name.toUpperCase());
      else omitted.delete(name.toUpperCase());
    },
    injectFault(fault, opts = {}) {
      const value: Fault = typeof fault === 'string' ? { fault } : fault;
      injected.push({ fault: value, pair: opts.pair, remaining: opts.times ?? 1 });
    },
    setFaultRates(rates) {
      faultRates = rates;
    },
    countRequests(segment, status) {
      return requestLog.filter((e) => (segment === undefined || e.path.endsWith(`/${segment}`)) && (status === undefined || e.status === status)).length;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}
