import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Redis } from '../shared/platform/redis';
import type { RedisKeys } from '../shared/contract/redis-keys';
import { alertCsvChunks } from '../shared/read-model/alert-csv';
import type { AlertItem, AlertQueries } from '../shared/read-model/alert-queries';
import type { AlertFilter, Ordering } from '../shared/read-model/query-params';
import { readFleetItems, removeBot } from '../shared/read-model/fleet-view';
import type { Knex } from '../shared/platform/db';
import { describeError } from '../shared/platform/errors';
import { announceBotChange, forgetRuleState, reconcileDesiredBots } from '../shared/read-model/bots-mirror';
import type { BotItem, BotsRepository } from '../shared/read-model/bots-repository';
import { describeMatchers, type SilenceItem } from '../shared/read-model/silences';
import type { SilencesRepository } from '../shared/read-model/silences-repository';
import type { ReceiversRepository } from '../shared/read-model/receivers-repository';
import type { CliCommand } from './args';
import { alertTable, botsTable, fleetTable, receiversTable, silencesTable, statsTable } from './render';

/** What the commands need: the API's own query modules over a database, Redis for the fleet, and where to write. */
export interface CliDeps {
  readonly queries: AlertQueries;
  /** Opened on demand: only `fleet` needs Redis. */
  readonly redis: () => { redis: Redis; keys: RedisKeys };
  readonly out: Writable;
  readonly now: number;
  /** FLEET_RETENTION in ms: stopped or expired bots older than this are left out of `fleet`. @defaultValue 24h */
  readonly fleetRetentionMs?: number;
  /** The bots table, for `bots ...` (the repository the API uses). */
  readonly bots?: { readonly db: Knex; readonly repository: BotsRepository; readonly actor: string };
  /** The silences table, for `silences ...` (the repository the API uses). */
  readonly silences?: { readonly repository: SilencesRepository; readonly actor: string };
  /** The receivers table, for `receivers ...` (the repository the API uses). */
  readonly receivers?: { readonly repository: ReceiversRepository; readonly actor: string };
  /** Where a warning goes (stderr); stdout stays for output. */
  readonly warn?: (message: string) => void;
}

/** `silences expire` named no silence. */
export class UnknownSilenceError extends Error {
  override readonly name = 'UnknownSilenceError';
}

/** One line about a silence for the terminal. */
const describeSilence = (s: SilenceItem) => `${s.id} (${describeMatchers(s.matchers)}, ${s.starts_at} to ${s.expired_at ?? s.ends_at}) ${s.state}`;

/** `fleet remove` named a bot that never reported (or was removed already). */
export class UnknownBotError extends Error {
  override readonly name = 'UnknownBotError';
}

/** Writes respecting back-pressure, so a huge export piped into a slow reader holds one batch at a time. */
async function write(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

/** Keyset batches of matching alerts, cut at `limit` rows. */
async function* batches(queries: AlertQueries, filter: AlertFilter, ordering: Ordering, limit: number | 'all'): AsyncGenerator<AlertItem[]> {
  let left = limit === 'all' ? Infinity : limit;
  const batchSize = Math.min(left, 1000);
  for await (const batch of queries.streamAlerts(filter, { ordering, batchSize })) {
    const kept = batch.length > left ? batch.slice(0, left) : batch;
    left -= kept.length;
    yield kept;
    if (left <= 0) return;
  }
}

/** One line about a bot for the terminal. */
const describeBot = (b: BotItem) =>
  `${b.bot_id} (${b.pair}, every ${b.interval_ms} ms, threshold ${b.threshold_percent} %, ${b.price_field}, ${b.reference_mode}${b.enabled ? '' : ', paused'}) version ${b.version}`;

/**
 * After a change committed: the Redis mirror rewritten from the table and the bot announced, as the API does. When Redis
 * is unreachable the change stands (it is in Postgres) and a master's reconcile loop mirrors it within BOTS_RECONCILE_MS.
 */
async function mirrorChange(deps: CliDeps, db: Knex, botId: string, createdOrRemoved?: BotItem): Promise<void> {
  try {
    const { redis, keys } = deps.redis();
    // A bot created or removed starts (or leaves) no count of published alerts behind.
    if (createdOrRemoved) await forgetRuleState(redis, keys, createdOrRemoved);
    await reconcileDesiredBots(db, redis, keys);
    await announceBotChange(redis, keys, botId);
  } catch (err) {
    deps.warn?.(`the change is saved, but the Redis mirror was not updated (${describeError(err)}); a running master updates it within BOTS_RECONCILE_MS`);
  }
}

/** Runs one command to completion. Errors (database or Redis down) propagate to main. */
export async function runCommand(command: Exclude<CliCommand, { kind: 'help' }>, deps: CliDeps): Promise<void> {
  const { out, now } = deps;
  switch (command.kind) {
    case 'alerts': {
      const source = batches(deps.queries, command.filter, command.ordering, command.limit);
      if (command.format === 'csv') {
        for await (const chunk of alertCsvChunks(source)) await write(out, chunk);
      } else if (command.format === 'json') {
        let first = true;
        await write(out, '[');
        for await (const batch of source) {
          for (const item of batch) {
            await write(out, `${first ? '\n' : ',\n'}  ${JSON.stringify(item)}`);
            first = false;
          }
        }
        await write(out, first ? ']\n' : '\n]\n');
      } else {
        const items: AlertItem[] = [];
        for await (const batch of source) items.push(...batch);
        await write(out, items.length ? `${alertTable(items, now)}\n${items.length} alert(s)\n` : 'No alerts match.\n');
      }
      return;
    }
    case 'stats': {
      const stats = await deps.queries.stats({ since: command.since, until: command.until, pairs: command.pairs });
      if (command.format === 'json') {
        await write(out, `${JSON.stringify({ since: command.since, until: command.until ?? null, window: command.window, ...stats }, null, 2)}\n`);
      } else {
        await write(out, `${statsTable(stats, command, now)}\n`);
      }
      return;
    }
    case 'fleet': {
      const { redis, keys } = deps.redis();
      const bots = await readFleetItems(redis, keys, now, deps.fleetRetentionMs);
      await write(out, command.format === 'json' ? `${JSON.stringify(bots, null, 2)}\n` : `${fleetTable(bots, now)}\n`);
      return;
    }
    case 'bots-list': {
      const bots = await botsDeps(deps).repository.list();
      await write(out, command.format === 'json' ? `${JSON.stringify(bots, null, 2)}\n` : `${botsTable(bots, now)}\n`);
      return;
    }
    case 'bots-add': {
      const { db, repository, actor } = botsDeps(deps);
      const bot = await repository.create(command.bot, actor);
      await mirrorChange(deps, db, bot.bot_id, bot);
      await write(out, `added bot ${describeBot(bot)}\n`);
      return;
    }
    case 'bots-set': {
      const { db, repository, actor } = botsDeps(deps);
      const bot = await repository.update(command.botId, command.patch, actor);
      await mirrorChange(deps, db, bot.bot_id);
      const verb = Object.keys(command.patch).length === 1 && command.patch.enabled !== undefined ? (command.patch.enabled ? 'resumed' : 'paused') : 'changed';
      await write(out, `${verb} bot ${describeBot(bot)}\n`);
      return;
    }
    case 'bots-remove': {
      const { db, repository, actor } = botsDeps(deps);
      const bot = await repository.remove(command.botId, actor);
      await mirrorChange(deps, db, bot.bot_id, bot);
      await write(out, `removed bot ${bot.bot_id}\n`);
      return;
    }
    case 'silences-list': {
      const silences = await silencesDeps(deps).repository.list({ state: command.state, limit: command.limit }, now);
      await write(out, command.format === 'json' ? `${JSON.stringify(silences, null, 2)}\n` : `${silencesTable(silences, now)}\n`);
      return;
    }
    case 'silences-add': {
      const { repository, actor } = silencesDeps(deps);
      const silence = await repository.create(command.silence, actor, now);
      await write(out, command.format === 'json' ? `${JSON.stringify(silence, null, 2)}\n` : `added silence ${describeSilence(silence)}\n`);
      return;
    }
    case 'silences-expire': {
      const { repository, actor } = silencesDeps(deps);
      const result = await repository.expire(command.id, actor, now);
      if (!result) throw new UnknownSilenceError(`no silence has id ${command.id}`);
      const line = result.changed ? `expired silence ${describeSilence(result.silence)}` : `silence ${describeSilence(result.silence)} was already expired (by ${result.silence.expired_by ?? 'its end time'})`;
      await write(out, command.format === 'json' ? `${JSON.stringify(result.silence, null, 2)}\n` : `${line}\n`);
      return;
    }
    case 'receivers-list': {
      const receivers = await receiversDeps(deps).repository.list();
      await write(out, command.format === 'json' ? `${JSON.stringify(receivers, null, 2)}\n` : `${receiversTable(receivers, now)}\n`);
      return;
    }
    case 'receivers-add': {
      const { repository, actor } = receiversDeps(deps);
      const receiver = await repository.create(command.receiver, actor);
      await write(out, `added receiver ${receiver.name} (${receiver.kind})\n`);
      return;
    }
    case 'receivers-set': {
      const { repository, actor } = receiversDeps(deps);
      const receiver = await repository.update(command.name, (current) => command.patchFor(current.kind), actor);
      await write(out, `changed receiver ${receiver.name} (${receiver.kind})\n`);
      return;
    }
    case 'receivers-remove': {
      const { repository, actor } = receiversDeps(deps);
      const receiver = await repository.remove(command.name, actor);
      await write(out, `removed receiver ${receiver.name}\n`);
      return;
    }
    case 'fleet-remove': {
      const { redis, keys } = deps.redis();
      const { removed, last } = await removeBot(redis, keys, command.botId);
      if (!removed) throw new UnknownBotError(`no bot has reported with id ${command.botId}`);
      const { repository, actor } = botsDeps(deps);
      await repository.recordFleetRemoval(command.botId, actor, last);
      await write(out, `removed bot ${command.botId} from the fleet\n`);
      return;
    }
  }
}

function receiversDeps(deps: CliDeps): NonNullable<CliDeps['receivers']> {
  if (!deps.receivers) throw new Error('receivers commands need the receivers table');
  return deps.receivers;
}

function silencesDeps(deps: CliDeps): NonNullable<CliDeps['silences']> {
  if (!deps.silences) throw new Error('silences commands need the silences table');
  return deps.silences;
}

function botsDeps(deps: CliDeps): NonNullable<CliDeps['bots']> {
  if (!deps.bots) throw new Error('bots commands need the bots table');
  return deps.bots;
}
