import type { Knex } from '../platform/db';
import {
  maskTarget,
  type QuietHours,
  type ReceiverKind,
  type ReceiverMatch,
  type ReceiverPatch,
  type ReceiverSettings,
  type ReceiverTarget,
} from './receiver-settings';

/**
 * The `receivers` table (migration 20261202000007): receivers added through the API or the CLI (`source = 'api'`) and
 * the ones every master rewrites from its configuration at start (`source = 'config'`, named `default`), which the API
 * refuses to change. Secrets stay in the row's `target`: `ReceiverItem` (what GET answers) carries the masked target,
 * `ReceiverRecord` (what routing and delivery use) the real one.
 */

export const RECEIVER_SOURCES = ['api', 'config'] as const;
export type ReceiverSource = (typeof RECEIVER_SOURCES)[number];

/** A receiver as the API answers and the CLI prints it: the target masked. */
export interface ReceiverItem {
  readonly id: string;
  readonly name: string;
  readonly kind: ReceiverKind;
  readonly target: Record<string, string>;
  readonly match: ReceiverMatch;
  readonly quiet_hours: QuietHours | null;
  readonly digest_seconds: number;
  readonly group_wait_ms: number;
  readonly source: ReceiverSource;
  readonly created_at: string;
  readonly created_by: string;
  readonly updated_at: string;
  readonly updated_by: string;
}

/** A receiver with its real target, for routing and delivery. Never logged, never answered. */
export interface ReceiverRecord {
  readonly id: string;
  readonly name: string;
  readonly kind: ReceiverKind;
  readonly target: ReceiverTarget;
  readonly match: ReceiverMatch;
  readonly quietHours: QuietHours | null;
  readonly digestSeconds: number;
  readonly groupWaitMs: number;
  readonly source: ReceiverSource;
}

/** A receiver the master builds from its configuration. */
export interface ConfigReceiver {
  readonly name: string;
  readonly kind: ReceiverKind;
  /** For email, `to` may list several addresses (comma-separated): each gets its own digest and hourly cap. */
  readonly target: ReceiverTarget;
  readonly digestSeconds: number;
}

export class ReceiverNotFoundError extends Error {
  override readonly name = 'ReceiverNotFoundError';
  constructor(readonly receiver: string) {
    super(`no receiver named ${receiver}`);
  }
}

/** 409: the name is taken, or the receiver is built from the configuration. */
export class ReceiverConflictError extends Error {
  override readonly name = 'ReceiverConflictError';
  constructor(
    readonly reason: 'taken' | 'config',
    message: string,
    readonly receiver: string,
  ) {
    super(message);
  }
}

interface ReceiverRow {
  id: string;
  name: string;
  kind: string;
  target: ReceiverTarget;
  match: ReceiverMatch | null;
  quiet_hours: QuietHours | null;
  digest_seconds: number;
  group_wait_ms: number;
  source: string;
  created_at: Date;
  created_by: string;
  updated_at: Date;
  updated_by: string;
}

function toItem(r: ReceiverRow): ReceiverItem {
  const kind = r.kind as ReceiverKind;
  return {
    id: r.id,
    name: r.name,
    kind,
    target: maskTarget(kind, r.target),
    match: r.match ?? {},
    quiet_hours: r.quiet_hours,
    digest_seconds: r.digest_seconds,
    group_wait_ms: r.group_wait_ms,
    source: r.source as ReceiverSource,
    created_at: new Date(r.created_at).toISOString(),
    created_by: r.created_by,
    updated_at: new Date(r.updated_at).toISOString(),
    updated_by: r.updated_by,
  };
}

export function toReceiverRecord(r: ReceiverRow): ReceiverRecord {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind as ReceiverKind,
    target: r.target,
    match: r.match ?? {},
    quietHours: r.quiet_hours,
    digestSeconds: r.digest_seconds,
    groupWaitMs: r.group_wait_ms,
    source: r.source as ReceiverSource,
  };
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface ReceiversRepository {
  list(): Promise<ReceiverItem[]>;
  /** By name, or by id when `ref` is a UUID. */
  get(ref: string): Promise<ReceiverItem | null>;
  /** Every receiver with its real target (routing and delivery). */
  records(trx?: Knex.Transaction): Promise<ReceiverRecord[]>;
  record(id: string, trx?: Knex.Transaction): Promise<ReceiverRecord | null>;
  create(settings: ReceiverSettings, actor: string): Promise<ReceiverItem>;
  /** `patchFor` turns the request body into a patch once the current kind is known (a target is checked against it). */
  update(ref: string, patchFor: (current: ReceiverItem) => ReceiverPatch, actor: string): Promise<ReceiverItem>;
  remove(ref: string, actor: string): Promise<ReceiverItem>;
  /**
   * Makes the `source = 'config'` rows what the configuration says (insert, update in place keeping the id, delete the
   * ones no longer configured) and gives the pending outbox rows written before receivers existed to the receiver of
   * their channel, so an upgrade loses none of them.
   */
  syncConfig(receivers: readonly ConfigReceiver[]): Promise<void>;
}

export function createReceiversRepository(db: Knex): ReceiversRepository {
  const byRef = (q: Knex.QueryBuilder, ref: string) => (UUID_RE.test(ref) ? q.where('id', ref.toLowerCase()) : q.where('name', ref));

  async function lockedRow(trx: Knex.Transaction, ref: string): Promise<ReceiverRow> {
    const row: ReceiverRow | undefined = await byRef(trx('receivers').select('*'), ref).forUpdate().first();
    if (!row) throw new ReceiverNotFoundError(ref);
    if (row.source === 'config') {
      throw new ReceiverConflictError('config', `receiver ${row.name} is built from the master's configuration (MAIL_TO, WEBHOOK_URL): change it there, not through the API`, row.name);
    }
    return row;
  }

  return {
    async list() {
      const rows: ReceiverRow[] = await db('receivers').select('*').orderBy('name');
      return rows.map(toItem);
    },
    async get(ref) {
      const row: ReceiverRow | undefined = await byRef(db('receivers').select('*'), ref).first();
      return row ? toItem(row) : null;
    },
    async records(trx) {
      const rows: ReceiverRow[] = await (trx ?? db)('receivers').select('*');
      return rows.map(toReceiverRecord);
    },
    async record(id, trx) {
      const row: ReceiverRow | undefined = await (trx ?? db)('receivers').where({ id }).first();
      return row ? toReceiverRecord(row) : null;
    },
    async create(s, actor) {
      const [row] = (await db('receivers')
        .insert({
          name: s.name,
          kind: s.kind,
          target: JSON.stringify(s.target),
          match: JSON.stringify(s.match),
          quiet_hours: s.quiet_hours === null ? null : JSON.stringify(s.quiet_hours),
          digest_seconds: s.digest_seconds,
          group_wait_ms: s.group_wait_ms,
          source: 'api',
          created_by: actor,
          updated_by: actor,
        })
        .onConflict('name')
        .ignore()
        .returning('*')) as ReceiverRow[];
      if (!row) throw new ReceiverConflictError('taken', `a receiver named ${s.name} exists`, s.name);
      return toItem(row);
    },
    async update(ref, patchFor, actor) {
      return db.transaction(async (trx) => {
        const row = await lockedRow(trx, ref);
        const patch = patchFor(toItem(row));
        const changes: Record<string, unknown> = {};
        if (patch.kind !== undefined) changes.kind = patch.kind;
        if (patch.target !== undefined) changes.target = JSON.stringify(patch.target);
        if (patch.match !== undefined) changes.match = JSON.stringify(patch.match);
        if (patch.quiet_hours !== undefined) changes.quiet_hours = patch.quiet_hours === null ? null : JSON.stringify(patch.quiet_hours);
        if (patch.digest_seconds !== undefined) changes.digest_seconds = patch.digest_seconds;
        if (patch.group_wait_ms !== undefined) changes.group_wait_ms = patch.group_wait_ms;
        if (Object.keys(changes).length === 0) return toItem(row);
        const [updated] = (await trx('receivers')
          .where({ id: row.id })
          .update({ ...changes, updated_by: actor, updated_at: trx.fn.now() })
          .returning('*')) as ReceiverRow[];
        return toItem(updated!);
      });
    },
    async remove(ref) {
      return db.transaction(async (trx) => {
        const row = await lockedRow(trx, ref);
        await trx('receivers').where({ id: row.id }).delete();
        return toItem(row);
      });
    },
    async syncConfig(receivers) {
      await db.transaction(async (trx) => {
        // One master at a time rewrites them (masters starting together would otherwise race on the unique name).
        await trx.raw('SELECT pg_advisory_xact_lock(hashtextextended(?, 0))', ['tickwatch:receivers:config']);
        const names = receivers.map((r) => r.name);
        await trx('receivers').where({ source: 'config' }).whereNotIn('name', names).delete();
        for (const r of receivers) {
          const values = { kind: r.kind, target: JSON.stringify(r.target), match: '{}', quiet_hours: null, digest_seconds: r.digestSeconds, group_wait_ms: 0, source: 'config' };
          const [row] = (await trx('receivers')
            .insert({ name: r.name, ...values, created_by: 'config', updated_by: 'config' })
            .onConflict('name')
            .merge({ ...values, updated_by: 'config', updated_at: trx.fn.now() })
            .returning(['id', 'kind'])) as { id: string; kind: string }[];
          await trx('notifications').whereNull('receiver_id').where({ status: 'pending', channel: row!.kind }).update({ receiver_id: row!.id, receiver_name: r.name });
        }
      });
    },
  };
}
