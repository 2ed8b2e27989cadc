import type { Knex } from '../platform/db';
import type { PriceField, ReferenceMode, Rule } from '../contract/alert';
import type { DesiredBot } from '../contract/bots';
import { BadRequestError } from './bad-request';
import { MAX_PAGE_LIMIT } from './query-params';
import { checkRule, RULE_FIELDS, type BotPatch, type BotSettings, type NewBot } from './bot-settings';
import type { FleetItem } from './fleet-view';

/**
 * The `bots` table (desired state) and its `bot_audit` trail, over knex with parameterised queries only. Every change
 * and its audit row commit in one transaction, and every change adds one to the bot's version. Used by the HTTP API
 * and the CLI alike, so both refuse the same things the same way.
 */

export const BOT_SOURCES = ['api', 'compose'] as const;
export type BotSource = (typeof BOT_SOURCES)[number];
/** `exhausted` / `expired`: the master disabled a runtime bot that used up its max_alerts or passed its expires_at. */
export const AUDIT_ACTIONS = ['create', 'update', 'pause', 'resume', 'delete', 'compose-sync', 'fleet-remove', 'exhausted', 'expired'] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** A bot in the wire shape (snake_case), as the API answers it and the audit records it. */
export interface BotItem extends BotSettings {
  readonly bot_id: string;
  readonly enabled: boolean;
  readonly source: BotSource;
  readonly service: string | null;
  readonly version: number;
  readonly created_at: string;
  readonly updated_at: string;
  readonly created_by: string;
  readonly updated_by: string;
}

export interface AuditItem {
  readonly at: string;
  readonly actor: string;
  readonly action: AuditAction;
  readonly bot_id: string;
  /** The bot before the change; for `fleet-remove`, the heartbeat the operator removed from the fleet. */
  readonly before: BotItem | FleetItem | null;
  readonly after: BotItem | null;
}

/** The actor of the master's own changes (a finished bot disabled). */
export const SYSTEM_ACTOR = 'system';

/** No bot with this id (404). */
export class BotNotFoundError extends Error {
  override readonly name = 'BotNotFoundError';
  constructor(readonly botId: string) {
    super(`no bot with id ${botId}`);
  }
}

/** The change cannot be made to this bot as it is (409): the id is taken, compose owns it, or it changed meanwhile. */
export class BotConflictError extends Error {
  override readonly name = 'BotConflictError';
  constructor(
    readonly reason: 'taken' | 'compose' | 'version',
    message: string,
    readonly bot: BotItem,
  ) {
    super(message);
  }
}

interface BotRow {
  bot_id: string;
  pair: string;
  interval_ms: number;
  threshold_percent: string;
  price_field: string;
  reference_mode: string;
  rule: string;
  window_ms: number | null;
  pending_polls: number;
  cooldown_ms: string | number;
  max_alerts: number | null;
  expires_at: Date | null;
  enabled: boolean;
  source: string;
  service: string | null;
  version: string | number;
  created_at: Date;
  updated_at: Date;
  created_by: string;
  updated_by: string;
}

export function toBotItem(r: BotRow): BotItem {
  return {
    bot_id: r.bot_id,
    pair: r.pair,
    interval_ms: Number(r.interval_ms),
    threshold_percent: r.threshold_percent,
    price_field: r.price_field as PriceField,
    reference_mode: r.reference_mode as ReferenceMode,
    rule: r.rule as Rule,
    window_ms: r.window_ms === null ? null : Number(r.window_ms),
    pending_polls: Number(r.pending_polls),
    cooldown_ms: Number(r.cooldown_ms),
    max_alerts: r.max_alerts === null ? null : Number(r.max_alerts),
    expires_at: r.expires_at === null ? null : new Date(r.expires_at).toISOString(),
    enabled: r.enabled,
    source: r.source as BotSource,
    service: r.service,
    version: Number(r.version),
    created_at: new Date(r.created_at).toISOString(),
    updated_at: new Date(r.updated_at).toISOString(),
    created_by: r.created_by,
    updated_by: r.updated_by,
  };
}

/** The mirror entry of a runtime bot (camelCase, as workers read it). */
export function toDesiredBot(b: BotItem): DesiredBot {
  return {
    botId: b.bot_id,
    pair: b.pair,
    intervalMs: b.interval_ms,
    thresholdPercent: b.threshold_percent,
    priceField: b.price_field,
    referenceMode: b.reference_mode,
    rule: b.rule,
    windowMs: b.window_ms,
    pendingPolls: b.pending_polls,
    cooldownMs: b.cooldown_ms,
    maxAlerts: b.max_alerts,
    expiresAt: b.expires_at,
    enabled: b.enabled,
    version: b.version,
  };
}

const SETTING_KEYS = ['pair', 'interval_ms', 'threshold_percent', 'price_field', 'reference_mode', ...RULE_FIELDS] as const;

/** The refusal for a compose bot, naming the service that declares it. */
function composeOwned(bot: BotItem): BotConflictError {
  const service = bot.service ?? bot.bot_id;
  return new BotConflictError('compose', `bot ${bot.bot_id} is declared by the compose service ${service}: change it in docker-compose.yml, not through the API`, bot);
}

/** Default and largest page of GET /audit. */
export const AUDIT_PAGE_DEFAULT = 50;
export const AUDIT_PAGE_MAX = MAX_PAGE_LIMIT;

/** An audit page cursor: the id of the last row shown, opaque to clients. */
export function encodeAuditCursor(id: string): string {
  return Buffer.from(`audit:${id}`, 'utf8').toString('base64url');
}
export function decodeAuditCursor(cursor: string, parameter = 'cursor'): string {
  const text = /^[A-Za-z0-9_-]{1,40}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const id = /^audit:([1-9]\d{0,17})$/.exec(text)?.[1];
  if (!id) throw new BadRequestError(parameter, cursor, 'a next_cursor from an earlier GET /audit answer');
  return id;
}

export interface ComposeSettings extends BotSettings {
  readonly bot_id: string;
  readonly service: string | null;
}

export interface BotsRepository {
  list(options?: { source?: BotSource }): Promise<BotItem[]>;
  get(botId: string): Promise<BotItem | null>;
  /** Throws BotConflictError('taken') when the id exists. */
  create(bot: NewBot, actor: string): Promise<BotItem>;
  /**
   * Applies `patch`; a patch that changes nothing returns the bot as it is (no new version, no audit row).
   * Throws BotNotFoundError, BotConflictError('compose') or, with `expectedVersion`, BotConflictError('version').
   */
  update(botId: string, patch: BotPatch, actor: string, expectedVersion?: number): Promise<BotItem>;
  /**
   * Disables a runtime bot that is done (`exhausted`: it published its max_alerts; `expired`: its expires_at passed),
   * by actor `system`, with an audit row whose action is the reason. Only at `version` (the settings that finished) and
   * while enabled: null when the bot changed meanwhile, is paused already, or is gone.
   */
  finish(botId: string, reason: 'exhausted' | 'expired', version: number): Promise<BotItem | null>;
  /** Deletes a runtime bot and returns it as it was. Same refusals as `update`. */
  remove(botId: string, actor: string, expectedVersion?: number): Promise<BotItem>;
  /**
   * Records a compose bot from its heartbeat: creates the row, or updates its settings when they differ. A runtime bot
   * with the same id is left alone ('conflict'). Safe to run from several masters at once.
   */
  upsertCompose(bot: ComposeSettings, actor: string): Promise<'created' | 'updated' | 'unchanged' | 'conflict'>;
  /** Deletes a compose bot's row (its worker left the fleet); false when there is no such compose row. */
  removeCompose(botId: string, actor: string): Promise<boolean>;
  /** Audit rows newest first, `limit` per page, optionally for one bot. */
  audit(options: { botId?: string; cursor?: string; limit?: number }): Promise<{ items: AuditItem[]; nextCursor: string | null }>;
  /** Records that `actor` removed a bot's heartbeat from the fleet (DELETE /fleet, `alerts fleet remove`). */
  recordFleetRemoval(botId: string, actor: string, removed: FleetItem | null): Promise<void>;
}

export function createBotsRepository(db: Knex): BotsRepository {
  const writeAudit = (trx: Knex.Transaction, actor: string, action: AuditAction, botId: string, before: BotItem | null, after: BotItem | null) =>
    trx('bot_audit').insert({
      actor,
      action,
      bot_id: botId,
      before: before === null ? null : JSON.stringify(before),
      after: after === null ? null : JSON.stringify(after),
    });

  /** The row locked for this transaction, refused when missing or owned by compose. */
  async function lockRuntime(trx: Knex.Transaction, botId: string, expectedVersion?: number): Promise<BotItem> {
    const row = (await trx<BotRow>('bots').where({ bot_id: botId }).forUpdate().first()) as BotRow | undefined;
    if (!row) throw new BotNotFoundError(botId);
    const bot = toBotItem(row);
    if (bot.source === 'compose') throw composeOwned(bot);
    if (expectedVersion !== undefined && bot.version !== expectedVersion) {
      throw new BotConflictError('version', `bot ${botId} is at version ${bot.version}, not ${expectedVersion}: read it again and retry`, bot);
    }
    return bot;
  }

  return {
    async list(options = {}) {
      const q = db<BotRow>('bots').select('*').orderBy('bot_id');
      if (options.source) q.where({ source: options.source });
      return ((await q) as BotRow[]).map(toBotItem);
    },

    async get(botId) {
      const row = (await db<BotRow>('bots').where({ bot_id: botId }).first()) as BotRow | undefined;
      return row ? toBotItem(row) : null;
    },

    async create(bot, actor) {
      return db.transaction(async (trx) => {
        const inserted = (await trx('bots')
          .insert({ ...bot, enabled: true, source: 'api', service: null, version: 1, created_by: actor, updated_by: actor })
          .onConflict('bot_id')
          .ignore()
          .returning('*')) as BotRow[];
        if (inserted.length === 0) {
          const existing = (await trx<BotRow>('bots').where({ bot_id: bot.bot_id }).first()) as BotRow;
          const item = toBotItem(existing);
          if (item.source === 'compose') throw composeOwned(item);
          throw new BotConflictError('taken', `a bot with id ${bot.bot_id} exists already (pair ${item.pair}): choose another bot_id, or change that bot with PATCH`, item);
        }
        const after = toBotItem(inserted[0]!);
        await writeAudit(trx, actor, 'create', after.bot_id, null, after);
        return after;
      });
    },

    async update(botId, patch, actor, expectedVersion) {
      return db.transaction(async (trx) => {
        const before = await lockRuntime(trx, botId, expectedVersion);
        const changes: Record<string, unknown> = {};
        for (const key of [...SETTING_KEYS, 'enabled'] as const) {
          if (patch[key] !== undefined && patch[key] !== before[key]) changes[key] = patch[key];
        }
        if (Object.keys(changes).length === 0) return before;
        checkRule({ ...before, ...changes } as BotItem);
        const [row] = (await trx('bots')
          .where({ bot_id: botId })
          .update({ ...changes, version: trx.raw('version + 1'), updated_at: trx.fn.now(), updated_by: actor })
          .returning('*')) as BotRow[];
        const after = toBotItem(row!);
        const onlyEnabled = Object.keys(changes).length === 1 && 'enabled' in changes;
        const action: AuditAction = onlyEnabled ? (after.enabled ? 'resume' : 'pause') : 'update';
        await writeAudit(trx, actor, action, botId, before, after);
        return after;
      });
    },

    async finish(botId, reason, version) {
      return db.transaction(async (trx) => {
        const row = (await trx<BotRow>('bots').where({ bot_id: botId, source: 'api', enabled: true, version }).forUpdate().first()) as BotRow | undefined;
        if (!row) return null;
        const [updated] = (await trx('bots')
          .where({ bot_id: botId })
          .update({ enabled: false, version: trx.raw('version + 1'), updated_at: trx.fn.now(), updated_by: SYSTEM_ACTOR })
          .returning('*')) as BotRow[];
        const after = toBotItem(updated!);
        await writeAudit(trx, SYSTEM_ACTOR, reason, botId, toBotItem(row), after);
        return after;
      });
    },

    async remove(botId, actor, expectedVersion) {
      return db.transaction(async (trx) => {
        const before = await lockRuntime(trx, botId, expectedVersion);
        await trx('bots').where({ bot_id: botId }).delete();
        await writeAudit(trx, actor, 'delete', botId, before, null);
        return before;
      });
    },

    async upsertCompose(bot, actor) {
      return db.transaction(async (trx) => {
        const inserted = (await trx('bots')
          .insert({
            bot_id: bot.bot_id,
            pair: bot.pair,
            interval_ms: bot.interval_ms,
            threshold_percent: bot.threshold_percent,
            price_field: bot.price_field,
            reference_mode: bot.reference_mode,
            rule: bot.rule,
            window_ms: bot.window_ms,
            pending_polls: bot.pending_polls,
            cooldown_ms: bot.cooldown_ms,
            max_alerts: bot.max_alerts,
            expires_at: bot.expires_at,
            enabled: true,
            source: 'compose',
            service: bot.service,
            version: 1,
            created_by: actor,
            updated_by: actor,
          })
          .onConflict('bot_id')
          .ignore()
          .returning('*')) as BotRow[];
        if (inserted.length > 0) {
          const after = toBotItem(inserted[0]!);
          await writeAudit(trx, actor, 'compose-sync', after.bot_id, null, after);
          return 'created';
        }
        const row = (await trx<BotRow>('bots').where({ bot_id: bot.bot_id }).forUpdate().first()) as BotRow | undefined;
        if (!row) return 'unchanged';
        const before = toBotItem(row);
        if (before.source !== 'compose') return 'conflict';
        const changes: Record<string, unknown> = {};
        for (const key of SETTING_KEYS) if (bot[key] !== before[key]) changes[key] = bot[key];
        if (bot.service !== null && bot.service !== before.service) changes.service = bot.service;
        if (Object.keys(changes).length === 0) return 'unchanged';
        const [updated] = (await trx('bots')
          .where({ bot_id: bot.bot_id })
          .update({ ...changes, version: trx.raw('version + 1'), updated_at: trx.fn.now(), updated_by: actor })
          .returning('*')) as BotRow[];
        await writeAudit(trx, actor, 'compose-sync', bot.bot_id, before, toBotItem(updated!));
        return 'updated';
      });
    },

    async removeCompose(botId, actor) {
      return db.transaction(async (trx) => {
        const row = (await trx<BotRow>('bots').where({ bot_id: botId, source: 'compose' }).forUpdate().first()) as BotRow | undefined;
        if (!row) return false;
        await trx('bots').where({ bot_id: botId, source: 'compose' }).delete();
        await writeAudit(trx, actor, 'delete', botId, toBotItem(row), null);
        return true;
      });
    },

    async recordFleetRemoval(botId, actor, removed) {
      await db('bot_audit').insert({ actor, action: 'fleet-remove', bot_id: botId, before: removed === null ? null : JSON.stringify(removed), after: null });
    },
    async audit({ botId, cursor, limit = AUDIT_PAGE_DEFAULT }) {
      const q = db('bot_audit').select('id', 'at', 'actor', 'action', 'bot_id', 'before', 'after').orderBy('id', 'desc').limit(limit + 1);
      if (botId !== undefined) q.where({ bot_id: botId });
      if (cursor !== undefined) q.where('id', '<', decodeAuditCursor(cursor));
      const rows = (await q) as { id: string; at: Date; actor: string; action: AuditAction; bot_id: string; before: BotItem | null; after: BotItem | null }[];
      const page = rows.slice(0, limit);
      return {
        items: page.map((r) => ({ at: new Date(r.at).toISOString(), actor: r.actor, action: r.action, bot_id: r.bot_id, before: r.before, after: r.after })),
        nextCursor: rows.length > limit ? encodeAuditCursor(String(page[page.length - 1]!.id)) : null,
      };
    },
  };
}
