import { AlertMessageSchema, buildAlertMessage, type AlertMessage } from '../shared/contract/alert';
import { describeError } from '../shared/platform/errors';
import { maskUrlPasswords } from '../shared/platform/secrets';
import { writeBotStatus, type BotSource, type BotState, type BotStatus } from '../shared/contract/fleet-status';
import type { Logger } from '../shared/platform/logger';
import type { Redis } from '../shared/platform/redis';
import { createRedisKeys, type RedisKeys } from '../shared/contract/redis-keys';
import { botConfigSnapshot, type WorkerConfig } from '../shared/config/worker-config';
import { carryOver, evaluate, finishedReason, INITIAL_RULE_STATE, type FinishedReason, type RuleMove, type RuleSettings, type RuleState } from './rules';
import { createPoller, type TickResult } from './poller';
import { createAlertPublisher } from './publisher';
import { createRateBudget, type RateBudget } from './rate-budget';
import { createTickerClient, type TickerClient, type TickerOutcome } from './ticker-client';
import { createQuoteSnapshots, type QuoteSnapshots } from './quote-snapshot';
import type { BudgetGrant } from './rate-budget';
import { backoffDelay, withTimeout } from '../shared/platform/retry';

export interface WorkerDeps {
  readonly config: WorkerConfig;
  readonly logger: Logger;
  /** A fail-fast connection (`createRedis(..., { failFast: true })`): polling must never wait for Redis. */
  readonly redis: Redis;
  /** @defaultValue createRedisKeys(config.redisKeyPrefix) */
  readonly keys?: RedisKeys;
  /** @defaultValue an axios client for config.tickerBaseUrl */
  readonly ticker?: TickerClient;
  /** The shared budget's window; tests shorten it. @defaultValue 60000 */
  readonly rateWindowMs?: number;
  /** Retry period while the ticker says the pair does not exist. @defaultValue 60000 */
  readonly invalidPairRetryMs?: number;
  /** Consecutive failures after which the bot reports `unhealthy` (degraded before). @defaultValue 5 */
  readonly unhealthyAfter?: number;
  /** Longest backoff after transient errors. @defaultValue max(60000, intervalMs) */
  readonly maxBackoffMs?: number;
  /** Bound on flushing queued alerts at shutdown. @defaultValue 5000 */
  readonly flushTimeoutMs?: number;
  /** At start, how long to wait for Redis before polling anyway (the budget then runs locally). @defaultValue 2000 */
  readonly startupRedisWaitMs?: number;
  /** @defaultValue Math.random (jitter) */
  readonly random?: () => number;
  /**
   * Set for a runtime bot, which the worker watches only while it holds the bot's lease. Absent for a bot the worker
   * was started with (PAIR): source `compose`.
   */
  readonly hold?: BotHold;
}

/** A runtime bot held through a lease: its version and the fencing token the worker holds it with. */
export interface BotHold {
  /** The bot version of `config`. */
  readonly version: number;
  readonly leaseKey: string;
  readonly token: string;
  readonly generation: number;
  /**
   * False once the holder's local lease deadline has passed (it could not renew in time): from then on no request is
   * sent and no alert is handed to the publisher, before any other worker can hold the bot.
   */
  valid(): boolean;
}

export interface Worker {
  start(): Promise<void>;
  /**
   * Stops polling, waits for the request in flight, flushes queued alerts (bounded), writes a last `stopped` status
   * (not when `leaseLost`: another worker may be reporting for the bot by then).
   */
  stop(options?: { leaseLost?: boolean }): Promise<void>;
  /**
   * New settings of a runtime bot (same bot id and pair), applied at the next tick: the threshold and reference mode
   * keep the reference price; a new price field resets it (the next price of that field becomes the reference, without
   * an alert); a new interval re-plans the waiting tick at once.
   */
  reconfigure(config: WorkerConfig, version: number): void;
  /** The version of the settings in use (the runtime bot's; 0 for a compose bot). */
  readonly version: number;
  /** The status the next heartbeat will carry. */
  status(): BotStatus;
}

/** Resolves when the connection is ready or after `ms`, whichever comes first. */
function waitForReady(redis: Redis, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    redis.on('ready', done);
  });
}

/** The rule settings of a bot's configuration. */
export function ruleSettings(config: WorkerConfig): RuleSettings {
  return {
    thresholdPercent: config.thresholdPercent,
    priceField: config.priceField,
    referenceMode: config.referenceMode,
    rule: config.rule,
    windowMs: config.windowMs,
    pendingPolls: config.pendingPolls,
    cooldownMs: config.cooldownMs,
    maxAlerts: config.maxAlerts,
    expiresAt: config.expiresAt === null ? null : Date.parse(config.expiresAt),
  };
}

/** Keeps about the last hour of ticks per pair for charts. */
export function tickStreamMaxLen(intervalMs: number): number {
  return Math.ceil(3_600_000 / intervalMs);
}

/**
 * One bot: polls the ticker for one pair, runs the detector, publishes alerts, and reports its status.
 * Effects (HTTP, Redis) wrap around the pure `decide`.
 */
export function createWorker(deps: WorkerDeps): Worker {
  const { redis, hold } = deps;
  let config = deps.config;
  let version = hold?.version ?? 0;
  let pendingSettings: { config: WorkerConfig; version: number } | undefined;
  const source: BotSource = hold ? 'api' : 'compose';
  const keys = deps.keys ?? createRedisKeys(config.redisKeyPrefix);
  const log = deps.logger.child({ pair: config.pair, botId: config.botId, ...(hold ? { leaseGeneration: hold.generation } : {}) });
  const random = deps.random ?? Math.random;
  const unhealthyAfter = deps.unhealthyAfter ?? 5;
  const maxBackoffFor = (intervalMs: number) => deps.maxBackoffMs ?? Math.max(60_000, intervalMs);
  let maxBackoffMs = maxBackoffFor(config.intervalMs);
  const invalidPairRetryMs = deps.invalidPairRetryMs ?? 60_000;
  let snapshot = botConfigSnapshot(config, hold?.version);
  let settings = ruleSettings(config);
  const ticker = deps.ticker ?? createTickerClient({ baseUrl: config.tickerBaseUrl, pair: config.pair, timeoutMs: config.tickerTimeoutMs, userAgent: `tickwatch-worker/${config.workerId}` });
  const budget: RateBudget = createRateBudget({ redis, keys, group: config.tickerRateGroup, limit: config.tickerRateLimitPerMin, windowMs: deps.rateWindowMs, logger: log });
  // The shared list of the quote currency (TICKER_FETCH auto or currency); the pair endpoint otherwise and as fallback.
  const snapshots: QuoteSnapshots | undefined =
    config.tickerFetch === 'pair' ? undefined : createQuoteSnapshots({ redis, keys, ticker, budget, mode: config.tickerFetch, workerId: config.workerId, timeoutMs: config.tickerTimeoutMs, logger: log });
  let fetchMode: string | undefined;
  /** When the last price decided on was fetched (epoch ms). */
  let lastDecidedFetchAt: number | undefined;
  let priceAgeMs: number | undefined;
  const publisher = createAlertPublisher({
    redis,
    keys,
    streamMaxLen: config.alertStreamMaxLen,
    queueMax: config.alertQueueMax,
    waitReplicas: config.redisWaitReplicas,
    waitMs: config.redisWaitMs,
    onRuleRefused: (alert, reason) => {
      // Counted as published when it was decided; Redis knows better (an earlier run published it).
      ruleState = { ...ruleState, alertsPublished: Math.max(0, ruleState.alertsPublished - 1) };
      if (reason === 'exhausted') ruleState = { ...ruleState, alertsPublished: Math.max(ruleState.alertsPublished, config.maxAlerts ?? 0) };
      else ruleState = { ...ruleState, suppressed: ruleState.suppressed + 1 };
      log.info({ alertId: alert.id, reason }, 'alert refused by the rule state in redis');
    },
    logger: log,
    ...(hold ? { fence: { leaseKey: hold.leaseKey, token: hold.token } } : {}),
  });
  let ticksMaxLen = tickStreamMaxLen(config.intervalMs);

  const startedAt = new Date().toISOString();
  /** The rule's state between polls (reference, window, streak, cooldown times, alert count): see rules.ts. */
  let ruleState: RuleState = INITIAL_RULE_STATE;
  /** Set once the rule is done (max_alerts published, expires_at passed): no more polls, no more alerts. */
  let finished: { reason: FinishedReason; detail: string } | null = null;
  let lastPrice: string | undefined;
  let lastPriceAt: string | undefined;
  let lastFetchAt: string | undefined;
  let lastError: string | undefined;
  let consecutiveErrors = 0;
  let invalidPair = false;
  let stopped = false;
  let rateLimited = false;
  let effectiveIntervalMs = config.intervalMs;
  let lastRequestAt: number | undefined;
  let nextDelayMs = config.intervalMs;
  /** Last backoff step logged, so repeated failures log once per step rather than once per tick. */
  let loggedStep = 0;
  let loggedReason: string | undefined;
  let heartbeatPending = false;

  const state = (): BotState => {
    // A finished bot keeps saying why after it stopped (the master disabled it for that reason).
    if (finished) return finished.reason;
    if (stopped) return 'stopped';
    if (invalidPair) return 'invalid-pair';
    if (consecutiveErrors === 0) return 'ok';
    return consecutiveErrors >= unhealthyAfter ? 'unhealthy' : 'degraded';
  };

  const status = (): BotStatus => {
    const stats = publisher.stats();
    return {
      botId: config.botId,
      pair: config.pair,
      status: state(),
      lastPrice,
      lastFetchAt,
      lastPriceAt,
      referencePrice: ruleState.reference ?? undefined,
      consecutiveErrors,
      lastError,
      startedAt,
      heartbeatAt: new Date().toISOString(),
      // A few intervals, and always longer than the wait until the next tick (backoff, budget), so a healthy but
      // slowed bot is never reported stale.
      ttlMs: Math.max(3 * Math.max(config.intervalMs, effectiveIntervalMs, nextDelayMs), 15_000),
      rateLimited,
      effectiveIntervalMs: Math.max(1, Math.round(effectiveIntervalMs)),
      fetch: fetchMode,
      priceAgeMs,
      alertsPublished: stats.published,
      alertsDropped: stats.dropped,
      alertsQueued: stats.queued,
      alertsSuppressed: ruleState.suppressed,
      statusReason: finished?.detail,
      config: snapshot,
      workerId: config.workerId,
      source,
      service: config.service,
      botVersion: hold ? version : undefined,
      leaseGeneration: hold?.generation,
    };
  };

  /** Fire-and-forget: the heartbeat never delays polling, and a slow Redis never piles heartbeats up. */
  const heartbeat = (final = false): Promise<void> => {
    if (heartbeatPending && !final) return Promise.resolve();
    heartbeatPending = true;
    return writeBotStatus(redis, keys, status())
      .catch((err: unknown) => log.debug({ err: describeError(err) }, 'heartbeat not written'))
      .finally(() => {
        heartbeatPending = false;
      });
  };

  const recordTick = (outcome: Extract<TickerOutcome, { kind: 'price' }>, price: string) => {
    redis
      .xadd(keys.ticks(config.pair), 'MAXLEN', '~', String(ticksMaxLen), '*', 'price', price, 'ask', outcome.ask, 'bid', outcome.bid, 'at', outcome.fetchedAt.toISOString(), 'botId', config.botId)
      .catch((err: unknown) => log.debug({ err: describeError(err) }, 'tick not recorded'));
  };

  const buildAlert = (decision: RuleMove, observedAt: Date): AlertMessage | null => {
    const alert = buildAlertMessage(decision, snapshot, observedAt);
    // The contract is checked on the way out too: a bug here must not put a bad message on the wire.
    const checked = AlertMessageSchema.safeParse(alert);
    if (!checked.success) {
      log.error({ alert, issues: checked.error.issues.slice(0, 3) }, 'built an alert that breaks the contract; not published');
      return null;
    }
    return checked.data;
  };

  const backoffMs = (failures: number): { delay: number; step: number; capped: boolean } => {
    const capped = config.intervalMs * 2 ** Math.min(failures, 30) >= maxBackoffMs;
    // Jitter in [base/2, base]: workers that failed together do not retry together.
    return { delay: Math.max(config.intervalMs, backoffDelay(failures + 1, config.intervalMs, maxBackoffMs, random)), step: capped ? Math.ceil(Math.log2(maxBackoffMs / config.intervalMs)) + 1 : failures, capped };
  };

  const onFailure = (outcome: Exclude<TickerOutcome, { kind: 'price' }>): TickResult => {
    consecutiveErrors++;
    lastError = outcome.reason;
    const wasInvalidPair = invalidPair;
    invalidPair = outcome.kind === 'invalid-pair';
    if (outcome.kind === 'invalid-pair') {
      if (!wasInvalidPair) log.error({ reason: outcome.reason, retryInMs: invalidPairRetryMs }, 'the ticker does not know this pair: check PAIR; retrying slowly');
      else log.debug({ reason: outcome.reason }, 'pair still unknown');
      return { next: 'delay', delayMs: invalidPairRetryMs };
    }
    if (outcome.kind === 'rate-limited') {
      void budget.pause(outcome.retryAfterMs);
      log.warn({ reason: outcome.reason, retryAfterMs: outcome.retryAfterMs }, 'ticker rate limit hit: waiting Retry-After');
      return { next: 'delay', delayMs: Math.max(outcome.retryAfterMs, config.intervalMs) };
    }
    const { delay, step, capped } = backoffMs(consecutiveErrors);
    const becameUnhealthy = consecutiveErrors === unhealthyAfter;
    if (step > loggedStep || outcome.kind !== loggedReason || becameUnhealthy) {
      const fields = { kind: outcome.kind, reason: outcome.reason, consecutiveErrors, retryInMs: delay, status: state() };
      const message = becameUnhealthy
        ? 'ticker keeps failing: bot unhealthy'
        : capped
          ? 'ticker request failed; backoff at its maximum (repeats logged at debug)'
          : 'ticker request failed; backing off';
      if (consecutiveErrors >= unhealthyAfter) log.error(fields, message);
      else log.warn(fields, message);
      loggedStep = step;
      loggedReason = outcome.kind;
    } else {
      log.debug({ kind: outcome.kind, reason: outcome.reason, consecutiveErrors, retryInMs: delay }, 'ticker request failed');
    }
    return { next: 'delay', delayMs: delay };
  };

  const onPrice = (outcome: Extract<TickerOutcome, { kind: 'price' }>): TickResult => {
    if (consecutiveErrors > 0) log.info({ after: consecutiveErrors, lastError }, 'ticker recovered');
    if (invalidPair) log.info('the ticker knows this pair again');
    consecutiveErrors = 0;
    invalidPair = false;
    loggedStep = 0;
    loggedReason = undefined;
    const evaluation = evaluate(ruleState, outcome, outcome.fetchedAt.getTime(), settings);
    const decision = evaluation.outcome;
    if (decision.kind === 'invalid') {
      // The client validated the quote; reaching this would be a bug, and it must still never alert.
      lastError = decision.reason;
      log.error({ reason: decision.reason }, 'detector rejected a quote the client accepted');
      return { next: 'on-schedule' };
    }
    ruleState = evaluation.state;
    if (decision.kind === 'finished') {
      finish(decision.reason);
      return { next: 'on-schedule' };
    }
    lastPrice = decision.price;
    lastPriceAt = outcome.fetchedAt.toISOString();
    recordTick(outcome, decision.price);
    if (decision.kind === 'reference-set') log.info({ reference: decision.price }, 'reference price set');
    if (decision.kind === 'suppressed') log.info({ direction: decision.direction, price: decision.price, referencePrice: decision.referencePrice, cooldownUntil: new Date(decision.cooldownUntil).toISOString(), suppressed: ruleState.suppressed }, 'alert suppressed: its direction is cooling down');
    if (decision.kind === 'pending') log.debug({ direction: decision.direction, price: decision.price, count: decision.count, of: settings.pendingPolls }, 'move pending');
    if (decision.kind === 'alert') {
      const alert = buildAlert(decision, outcome.fetchedAt);
      if (alert && !mayAct('publish')) {
        log.warn({ alertId: alert.id }, 'lease deadline passed during the request: alert not published (the next holder watches the bot)');
      } else if (alert) {
        log.info({ alertId: alert.id, direction: alert.direction, price: alert.price, referencePrice: alert.referencePrice, changePercent: alert.changePercent }, 'price oscillation alert');
        publisher.publish(alert);
      }
      if (decision.finished) finish(decision.finished);
    }
    return { next: 'on-schedule' };
  };

  /** The rule is done: logged once; the bot stops polling and its heartbeat says why. */
  const finish = (reason: FinishedReason) => {
    if (finished?.reason === reason) return;
    const detail =
      reason === 'exhausted' ? `published ${ruleState.alertsPublished} of max_alerts ${config.maxAlerts ?? 0}` : `expires_at ${config.expiresAt ?? ''} has passed`;
    finished = { reason, detail };
    log.info({ reason, detail }, reason === 'exhausted' ? 'bot exhausted: it published its max_alerts and stops alerting' : 'bot expired: it stops alerting');
  };

  /** Restores what earlier runs of this bot published (count, cooldown times), when its rule uses them. */
  const restoreRuleState = async () => {
    if (config.maxAlerts === null && config.cooldownMs === 0) return;
    try {
      const saved = await withTimeout(redis.hgetall(keys.ruleState(config.pair, config.botId)), 1000, 'Redis (rule state)');
      const number = (text: string | undefined) => (text !== undefined && /^\d{1,16}$/.test(text) ? Number(text) : null);
      ruleState = {
        ...ruleState,
        alertsPublished: Math.max(ruleState.alertsPublished, number(saved.published) ?? 0),
        lastAlertAt: { up: number(saved.lastUp) ?? ruleState.lastAlertAt.up, down: number(saved.lastDown) ?? ruleState.lastAlertAt.down },
      };
      if (ruleState.alertsPublished > 0) log.info({ alertsPublished: ruleState.alertsPublished, maxAlerts: config.maxAlerts }, 'rule state restored');
    } catch (err) {
      // The publish script checks the same state in Redis, so an alert over the limit is refused there anyway.
      log.warn({ err: describeError(err) }, 'rule state not read; redis will refuse alerts over max_alerts or inside the cooldown');
    }
  };

  /** Settings given by `reconfigure` take effect here, at the start of a tick. */
  const applyPendingSettings = () => {
    if (!pendingSettings) return;
    const next = pendingSettings;
    pendingSettings = undefined;
    const previous = config;
    config = next.config;
    version = next.version;
    snapshot = botConfigSnapshot(config, version);
    const previousSettings = settings;
    settings = ruleSettings(config);
    maxBackoffMs = maxBackoffFor(config.intervalMs);
    ticksMaxLen = tickStreamMaxLen(config.intervalMs);
    // A reference in one price field means nothing in another: the next price of the new field becomes the reference.
    const resetReference = previous.priceField !== config.priceField || previous.rule !== config.rule;
    ruleState = carryOver(ruleState, previousSettings, settings);
    // New limits may end the bot, or (raised) let it alert again.
    const done = finishedReason(ruleState, settings, Date.now());
    if (done) finish(done);
    else finished = null;
    log.info({ version, intervalMs: config.intervalMs, thresholdPercent: config.thresholdPercent, priceField: config.priceField, referenceMode: config.referenceMode, referenceKept: !resetReference }, 'settings applied');
  };

  /** Refused past the local lease deadline: the request would race the next holder's. */
  const mayAct = (what: string): boolean => {
    if (!hold || hold.valid()) return true;
    log.debug({ what }, 'lease deadline passed: not acting for this bot');
    return false;
  };

  const tick = async (signal: AbortSignal): Promise<TickResult> => {
    applyPendingSettings();
    if (!mayAct('poll')) return { next: 'on-schedule' };
    const done = finishedReason(ruleState, settings, Date.now());
    if (done || finished) {
      // Done: no request (it would only spend the shared budget), but the heartbeat keeps saying why.
      if (done) finish(done);
      nextDelayMs = config.intervalMs;
      void heartbeat();
      return { next: 'on-schedule' };
    }
    const onWait = (waitMs: number) => {
      // A long wait for the shared budget is reported before it starts, so the heartbeat never expires during it.
      if (waitMs <= config.intervalMs / 10) return;
      rateLimited = true;
      nextDelayMs = waitMs;
      void heartbeat();
    };
    let outcome: TickerOutcome | undefined;
    let grant: BudgetGrant | undefined;
    if (snapshots) {
      const read = await snapshots.read({ pair: config.pair, botId: config.botId, intervalMs: config.intervalMs }, signal, onWait, () => mayAct('poll'));
      if (read.kind === 'aborted') return { next: 'on-schedule' };
      if (read.kind === 'fetched') {
        outcome = read.outcome;
        grant = read.grant;
        fetchMode = `list:${read.quote}`;
        priceAgeMs = Math.round(read.ageMs);
      }
    }
    if (outcome) {
      if (!mayAct('poll')) return { next: 'on-schedule' };
      const readAt = Date.now();
      if (lastRequestAt !== undefined) effectiveIntervalMs = readAt - lastRequestAt;
      lastRequestAt = readAt;
    } else {
      grant = await budget.acquire(signal, onWait);
      if (grant.aborted || !mayAct('poll')) return { next: 'on-schedule' };
      const requestAt = Date.now();
      if (lastRequestAt !== undefined) effectiveIntervalMs = requestAt - lastRequestAt;
      lastRequestAt = requestAt;
      outcome = await ticker.fetchQuote();
      fetchMode = 'pair';
      priceAgeMs = 0;
    }
    // Slowed by the shared budget (or a fleet pause) by more than a tenth of an interval.
    rateLimited = grant !== undefined && grant.mode === 'shared' && grant.waitedMs > config.intervalMs / 10;
    // When the price was fetched: for a list, when the worker that fetched it sent the request.
    lastFetchAt = outcome.fetchedAt.toISOString();
    // A list snapshot read again (still younger than the interval) is no new observation: decided once, alerted once.
    const seenBefore = outcome.kind === 'price' && outcome.fetchedAt.getTime() === lastDecidedFetchAt;
    if (outcome.kind === 'price') lastDecidedFetchAt = outcome.fetchedAt.getTime();
    const result = seenBefore ? { next: 'on-schedule' as const } : outcome.kind === 'price' ? onPrice(outcome) : onFailure(outcome);
    nextDelayMs = result.next === 'delay' ? result.delayMs : config.intervalMs;
    void heartbeat();
    return result;
  };

  const poller = createPoller({ intervalMs: config.intervalMs, tick, logger: log });
  let pollerIntervalMs = config.intervalMs;
  const addPair = () => {
    redis.sadd(keys.pairsSet, config.pair).catch((err: unknown) => log.debug({ err: describeError(err) }, 'pair not registered yet'));
  };
  let stopping: Promise<void> | undefined;

  return {
    async start() {
      // Registered now if Redis is up, and on every (re)connect otherwise.
      redis.on('ready', addPair);
      if (redis.status === 'ready') addPair();
      else await waitForReady(redis, deps.startupRedisWaitMs ?? 2000);
      // Stopped while waiting for Redis (a runtime bot given up at once): it must not start polling afterwards.
      if (stopping) return;
      await restoreRuleState();
      if (stopping) return;
      poller.start();
      log.info({ intervalMs: config.intervalMs, thresholdPercent: config.thresholdPercent, priceField: config.priceField, referenceMode: config.referenceMode, tickerBaseUrl: maskUrlPasswords(config.tickerBaseUrl), rateLimitPerMin: config.tickerRateLimitPerMin }, 'worker started');
    },
    stop(options = {}) {
      stopping ??= (async () => {
        await poller.stop();
        redis.off('ready', addPair);
        ticker.close();
        const left = await publisher.flush(deps.flushTimeoutMs ?? 5000);
        if (left > 0) log.error({ unpublished: left }, 'redis unreachable at shutdown: queued alerts were not published');
        publisher.close();
        stopped = true;
        // Bounded: a hung Redis must not hold the shutdown.
        if (!options.leaseLost) await withTimeout(heartbeat(true), 1000, 'Redis (final heartbeat)').catch((err: unknown) => log.warn({ err: describeError(err) }, 'final heartbeat not written'));
        log.info(publisher.stats(), 'worker stopped');
      })();
      return stopping;
    },
    status,
    reconfigure(next, nextVersion) {
      if (next.botId !== config.botId || next.pair !== config.pair) throw new Error('reconfigure keeps the bot id and pair: start another bot for a new pair');
      pendingSettings = { config: next, version: nextVersion };
      if (next.intervalMs !== pollerIntervalMs) {
        pollerIntervalMs = next.intervalMs;
        poller.setIntervalMs(next.intervalMs);
      }
    },
    get version() {
      return pendingSettings?.version ?? version;
    },
  };
}
