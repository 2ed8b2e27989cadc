/**
 * Every Redis key and channel Tickwatch uses, in one place. `prefix` (REDIS_KEY_PREFIX, empty by default) namespaces them
 * all, channels included, so tests and several fleets can share one Redis. With the default prefix the alert channel is
 * exactly `alerts:<PAIR>`.
 *
 * Hash tags (the part in braces decides a key's slot in Redis Cluster): every key of one pair carries `{<PAIR>}`, and so
 * does every per-bot key written in the same script as a pair key (the bot lease, checked by the fenced publish); keys
 * read or written together otherwise share a fixed tag (`{fleet}`, `{ratelimit...}`). So no MULTI or script ever spans
 * two slots. The tags are the same on a single Redis, where they change nothing but the names.
 */
export interface RedisKeys {
  readonly prefix: string;
  /**
   * Pub/sub channel a worker publishes each alert on (at-most-once): PUBLISH on one Redis, SPUBLISH on a cluster (the
   * channel's own slot; it keeps its public name, with no tag).
   */
  alertChannel(pair: string): string;
  /** Pattern matching every alert channel (for PSUBSCRIBE; one Redis only: sharded channels have no patterns). */
  readonly alertChannelPattern: string;
  /**
   * Durable stream of alerts for one pair (`stream:alerts:{<PAIR>}`); field `alert` holds the JSON. Trimmed
   * approximately to ALERT_STREAM_MAXLEN.
   */
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
  /**
   * Shared ticker rate budget of one rate group (TICKER_RATE_GROUP: the workers leaving through one egress IP). It
   * shares its group's hash tag with the group's pause, which the same script reads.
   */
  rateBudget(group: string): string;
  /** A rate group's pause after a 429 (Uphold counts per IP): value is the epoch ms until which nobody in it polls. */
  tickerPauseUntil(group: string): string;
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
  /**
   * A runtime bot's lease: value `<workerId>:<generation>` (the fencing token), set NX with a TTL the holder renews. It
   * carries the tag of the bot's pair: the fenced publish checks it in the script that adds to the pair's stream.
   */
  botLease(botId: string, pair: string): string;
  /** Counter behind a bot's lease generations (INCR on every claim, so fencing tokens only grow), beside its lease. */
  botLeaseGeneration(botId: string, pair: string): string;
  /** A worker process's own heartbeat (JSON `{workerId, state, botId?, at}`), expiring unless renewed: alive even while idle. */
  workerHeartbeat(workerId: string): string;
  /**
   * Hash: what a bot's alert rule has published, kept across restarts and lease handovers (`published` count, `lastUp`
   * / `lastDown` observation times in epoch ms, for max_alerts and the cooldown). Written in the script that publishes,
   * so it carries the pair's tag.
   */
  ruleState(pair: string, botId: string): string;
  /**
   * The alert stream's name before hash tags (`stream:alerts:<PAIR>`): the master keeps draining it while it exists, so
   * alerts written by workers of an older version are stored too.
   */
  legacyAlertStream(pair: string): string;
  /** The last-seen hash's name before hash tags: the master merges it into `botsLastSeen` once and deletes it. */
  readonly legacyBotsLastSeen: string;
}

export function createRedisKeys(prefix = ''): RedisKeys {
  const p = prefix;
  return Object.freeze({
    prefix: p,
    alertChannel: (pair: string) => `${p}alerts:${pair}`,
    alertChannelPattern: `${p}alerts:*`,
    alertStream: (pair: string) => `${p}stream:alerts:${pairTag(pair)}`,
    pairsSet: `${p}pairs`,
    deadLetterStream: `${p}stream:dead-letter`,
    storedAlertsChannel: `${p}events:alerts-stored`,
    botStatus: (botId: string) => `${p}bot:{fleet}:${botId}`,
    botsLastSeen: `${p}bots:{fleet}:last-seen`,
    ticks: (pair: string) => `${p}ticks:${pairTag(pair)}`,
    rateBudget: (group: string) => (group === DEFAULT_RATE_GROUP ? `${p}ratelimit:{ticker}` : `${p}ratelimit:{ticker:group:${group}}`),
    tickerPauseUntil: (group: string) => (group === DEFAULT_RATE_GROUP ? `${p}ratelimit:{ticker}:pause-until` : `${p}ratelimit:{ticker:group:${group}}:pause-until`),
    tickerList: (quote: string) => `${p}ticker:list:${quote}`,
    tickerListLock: (quote: string) => `${p}ticker:list-lock:${quote}`,
    tickerListReaders: (quote: string) => `${p}ticker:list-readers:${quote}`,
    eventsTicket: (ticketHash: string) => `${p}events:ticket:${ticketHash}`,
    desiredBots: `${p}bots:desired`,
    botsChangedChannel: `${p}events:bots-changed`,
    botLease: (botId: string, pair: string) => `${p}bot-lease:${pairTag(pair)}:${botId}`,
    botLeaseGeneration: (botId: string, pair: string) => `${p}bot-lease-gen:${pairTag(pair)}:${botId}`,
    workerHeartbeat: (workerId: string) => `${p}worker:{fleet}:${workerId}`,
    ruleState: (pair: string, botId: string) => `${p}rule-state:{${pair}}:${botId}`,
    legacyAlertStream: (pair: string) => `${p}stream:alerts:${pair}`,
    legacyBotsLastSeen: `${p}bots:last-seen`,
  });
}

/** The hash tag of a pair's keys: they all land in one Redis Cluster slot. */
export function pairTag(pair: string): string {
  return `{${pair}}`;
}

/** The rate group of workers that set no TICKER_RATE_GROUP: one budget for the whole fleet on a Redis. */
export const DEFAULT_RATE_GROUP = 'default';

/** A rate group name: no ':', so one group's keys can never be another's (`group:a:pause-until`). */
export const RATE_GROUP_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** Master consumer group on the alert streams. */
export const ALERT_CONSUMER_GROUP = 'tickwatch-master';
