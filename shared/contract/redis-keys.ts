/**
 * Every Redis key and channel Tickwatch uses, in one place. `prefix` (REDIS_KEY_PREFIX, empty by default) namespaces them
 * all, channels included, so tests and several fleets can share one Redis. With the default prefix the alert channel is
 * exactly `alerts:<PAIR>`.
 */
export interface RedisKeys {
  readonly prefix: string;
  /** Pub/sub channel a worker publishes each alert on (at-most-once). */
  alertChannel(pair: string): string;
  /** Pattern matching every alert channel (for PSUBSCRIBE). */
  readonly alertChannelPattern: string;
  /** Durable stream of alerts for one pair; field `alert` holds the JSON. Trimmed approximately to ALERT_STREAM_MAXLEN. */
  alertStream(pair: string): string;
  /** Set of every pair a worker has published for or watches: how a master consuming `*` finds the streams. */
  readonly pairsSet: string;
  /** Stream of messages a master could not ingest, with fields `reason`, `source`, `payload`. */
  readonly deadLetterStream: string;
  /** Pub/sub channel the master publishes on after an alert row is committed (the dashboard's live feed). */
  readonly storedAlertsChannel: string;
  /** Hash with a bot's live status; it expires a few intervals after the last heartbeat. */
  botStatus(botId: string): string;
  /** Hash botId -> last status JSON, never expiring: lets the fleet table show a bot whose heartbeat expired as stale. */
  readonly botsLastSeen: string;
  /** Capped stream of recent ticks (about the last hour) for one pair: fields `price`, `ask`, `bid`, `at`, `botId`. */
  ticks(pair: string): string;
  /** Shared ticker rate budget (fleet-wide). */
  readonly rateBudget: string;
  /** Fleet-wide pause after a 429: value is the epoch ms until which nobody polls. */
  readonly tickerPauseUntil: string;
  /**
   * Hash: the last list of one quote currency (`GET /v0/ticker/<QUOTE>`) shared by the workers quoted in it. Field
   * `@fetchedAt` (epoch ms when the request was sent), `@by` (the fetching worker), and one field per pair quoted in
   * QUOTE by concatenated name (`BTCUSD`) holding `{"ask","bid"}` or `{"bad": reason}`. Expires 10 minutes after a write.
   */
  tickerList(quote: string): string;
  /** Short lock (`SET NX PX`, value the worker id) held by the one worker fetching a quote currency's list. */
  tickerListLock(quote: string): string;
  /** Sorted set botId -> last tick (epoch ms) of bots reading a quote currency: `TICKER_FETCH=auto` shares the list from 2. */
  tickerListReaders(quote: string): string;
  /** A live-feed ticket (by the SHA-256 of its text), valid for one /events connection until the key expires. */
  eventsTicket(ticketHash: string): string;
  /** Hash botId -> desired runtime bot (JSON, `shared/contract/bots.ts`): the master's mirror of the `bots` table, read by generic workers. */
  readonly desiredBots: string;
  /** Pub/sub channel: the master publishes a bot id after changing it, so its holder re-reads at once. */
  readonly botsChangedChannel: string;
  /** A runtime bot's lease: value `<workerId>:<generation>` (the fencing token), set NX with a TTL the holder renews. */
  botLease(botId: string): string;
  /** Counter behind a bot's lease generations (INCR on every claim, so fencing tokens only grow). */
  botLeaseGeneration(botId: string): string;
  /** A worker process's own heartbeat (JSON `{workerId, state, botId?, at}`), expiring unless renewed: alive even while idle. */
  workerHeartbeat(workerId: string): string;
}

export function createRedisKeys(prefix = ''): RedisKeys {
  const p = prefix;
  return Object.freeze({
    prefix: p,
    alertChannel: (pair: string) => `${p}alerts:${pair}`,
    alertChannelPattern: `${p}alerts:*`,
    alertStream: (pair: string) => `${p}stream:alerts:${pair}`,
    pairsSet: `${p}pairs`,
    deadLetterStream: `${p}stream:dead-letter`,
    storedAlertsChannel: `${p}events:alerts-stored`,
    botStatus: (botId: string) => `${p}bot:${botId}`,
    botsLastSeen: `${p}bots:last-seen`,
    ticks: (pair: string) => `${p}ticks:${pair}`,
    rateBudget: `${p}ratelimit:ticker`,
    tickerPauseUntil: `${p}ratelimit:ticker:pause-until`,
    tickerList: (quote: string) => `${p}ticker:list:${quote}`,
    tickerListLock: (quote: string) => `${p}ticker:list-lock:${quote}`,
    tickerListReaders: (quote: string) => `${p}ticker:list-readers:${quote}`,
    eventsTicket: (ticketHash: string) => `${p}events:ticket:${ticketHash}`,
    desiredBots: `${p}bots:desired`,
    botsChangedChannel: `${p}events:bots-changed`,
    botLease: (botId: string) => `${p}bot-lease:${botId}`,
    botLeaseGeneration: (botId: string) => `${p}bot-lease-gen:${botId}`,
    workerHeartbeat: (workerId: string) => `${p}worker:${workerId}`,
  });
}

/** Master consumer group on the alert streams. */
export const ALERT_CONSUMER_GROUP = 'tickwatch-master';
