import { randomUUID } from 'node:crypto';
import type { Knex } from '../platform/db';
import { silenceState, silencingFor, type NewSilence, type SilenceItem, type SilenceMatchers, type SilenceState, type SilenceWindow } from './silences';

/**
 * The `silences` table (migration 20261202000006) and `alerts.silenced_by`, over knex with parameterised queries only.
 * Used by the HTTP API and the CLI (create, list, expire) and by the ingest (which silence mutes each new alert), so all
 * three read a silence the same way. Rows are never deleted: an expiry records when and by whom, so the table is its own
 * audit trail.
 */

export const SILENCE_PAGE_DEFAULT = 100;
export const SILENCE_PAGE_MAX = 1000;

/** A silence able to mute alerts, as the ingest reads it. */
export interface ActiveSilence extends SilenceWindow {
  readonly id: string;
}

export interface SilencesRepository {
  /** Stores a checked silence (parseNewSilence) created by `actor`; its state is reported at `now`. */
  create(silence: NewSilence, actor: string, now: number): Promise<SilenceItem>;
  /** Silences newest first (created_at), in `state` at `now` when given, at most `limit`. */
  list(options: { state?: SilenceState; limit: number }, now: number): Promise<SilenceItem[]>;
  get(id: string, now: number): Promise<SilenceItem | null>;
  /**
   * Ends a silence at `now`, recording `actor`. Null for an unknown id. A silence that is already expired is returned
   * unchanged (`changed: false`), so expiring twice is harmless and keeps the first expiry's who and when.
   */
  expire(id: string, actor: string, now: number): Promise<{ silence: SilenceItem; changed: boolean } | null>;
  /**
   * Inside the ingest transaction: sets `silenced_by` on each of these just-inserted alerts that a silence active at the
   * alert's observed_at matches. Returns alert id -> silence id for the silenced ones.
   */
  markSilenced(trx: Knex.Transaction, alerts: readonly { id: string; pair: string; botId: string; direction: string; observedAt: string }[]): Promise<Map<string, string>>;
}

interface SilenceRow {
  id: string;
  matchers: SilenceMatchers | string;
  starts_at: Date;
  ends_at: Date;
  comment: string;
  created_by: string;
  created_at: Date;
  expired_at: Date | null;
  expired_by: string | null;
}

const COLUMNS = ['id', 'matchers', 'starts_at', 'ends_at', 'comment', 'created_by', 'created_at', 'expired_at', 'expired_by'] as const;

const matchersOf = (value: SilenceMatchers | string): SilenceMatchers => (typeof value === 'string' ? (JSON.parse(value) as SilenceMatchers) : value);

function toWindow(row: Pick<SilenceRow, 'matchers' | 'starts_at' | 'ends_at' | 'expired_at'>): SilenceWindow {
  return {
    matchers: matchersOf(row.matchers),
    startsAt: row.starts_at.getTime(),
    endsAt: row.ends_at.getTime(),
    expiredAt: row.expired_at ? row.expired_at.getTime() : null,
  };
}

export function toSilenceItem(row: SilenceRow, now: number): SilenceItem {
  const window = toWindow(row);
  return {
    id: row.id,
    matchers: window.matchers,
    starts_at: row.starts_at.toISOString(),
    ends_at: row.ends_at.toISOString(),
    comment: row.comment,
    created_by: row.created_by,
    created_at: row.created_at.toISOString(),
    expired_at: row.expired_at ? row.expired_at.toISOString() : null,
    expired_by: row.expired_by,
    state: silenceState(window, now),
  };
}

/** The WHERE clause of a state at `at`, mirroring silenceState (an expiry counts from expired_at). */
function whereState(q: Knex.QueryBuilder, state: SilenceState, at: Date): Knex.QueryBuilder {
  const notOver = (b: Knex.QueryBuilder) => b.where('ends_at', '>', at).andWhere((e) => e.whereNull('expired_at').orWhere('expired_at', '>', at));
  if (state === 'expired') return q.where((b) => b.where('ends_at', '<=', at).orWhere('expired_at', '<=', at));
  if (state === 'pending') return notOver(q.where('starts_at', '>', at));
  return notOver(q.where('starts_at', '<=', at));
}

export function createSilencesRepository(db: Knex): SilencesRepository {
  const get = async (q: Knex | Knex.Transaction, id: string): Promise<SilenceRow | undefined> => q<SilenceRow>('silences').select(...COLUMNS).where({ id }).first();

  return {
    async create(silence, actor, now) {
      const [row] = await db<SilenceRow>('silences')
        .insert({
          id: randomUUID(),
          matchers: JSON.stringify(silence.matchers),
          starts_at: silence.startsAt,
          ends_at: silence.endsAt,
          comment: silence.comment,
          created_by: actor,
          created_at: new Date(now),
        } as never)
        .returning([...COLUMNS]);
      return toSilenceItem(row as SilenceRow, now);
    },

    async list({ state, limit }, now) {
      let q = db<SilenceRow>('silences').select(...COLUMNS);
      if (state) q = whereState(q, state, new Date(now));
      const rows: SilenceRow[] = await q.orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit);
      return rows.map((r) => toSilenceItem(r, now));
    },

    async get(id, now) {
      const row = await get(db, id);
      return row ? toSilenceItem(row, now) : null;
    },

    async expire(id, actor, now) {
      return db.transaction(async (trx) => {
        const row: SilenceRow | undefined = await trx<SilenceRow>('silences').select(...COLUMNS).where({ id }).forUpdate().first();
        if (!row) return null;
        if (silenceState(toWindow(row), now) === 'expired') return { silence: toSilenceItem(row, now), changed: false };
        const [updated] = await trx<SilenceRow>('silences')
          .where({ id })
          .update({ expired_at: new Date(now), expired_by: actor } as never)
          .returning([...COLUMNS]);
        return { silence: toSilenceItem(updated as SilenceRow, now), changed: true };
      });
    },

    async markSilenced(trx, alerts) {
      const silenced = new Map<string, string>();
      if (alerts.length === 0) return silenced;
      let first = Infinity;
      let last = -Infinity;
      const observed = alerts.map((a) => Date.parse(a.observedAt));
      for (const t of observed) {
        if (t < first) first = t;
        if (t > last) last = t;
      }
      // Only silences whose window meets the batch's observation span: the live ones, a handful, through silences_ends_at_idx.
      const rows: Pick<SilenceRow, 'id' | 'matchers' | 'starts_at' | 'ends_at' | 'expired_at'>[] = await trx('silences')
        .select('id', 'matchers', 'starts_at', 'ends_at', 'expired_at')
        .where('ends_at', '>', new Date(first))
        .andWhere('starts_at', '<=', new Date(last))
        .andWhere((b) => b.whereNull('expired_at').orWhere('expired_at', '>', new Date(first)))
        .orderBy([{ column: 'created_at' }, { column: 'id' }]);
      if (rows.length === 0) return silenced;
      const candidates: ActiveSilence[] = rows.map((r) => ({ id: r.id, ...toWindow(r) }));
      alerts.forEach((a, i) => {
        const s = silencingFor(candidates, { pair: a.pair, botId: a.botId, direction: a.direction, observedAt: observed[i]! });
        if (s) silenced.set(a.id, s.id);
      });
      if (silenced.size === 0) return silenced;
      await trx.raw('UPDATE alerts SET silenced_by = v.silence FROM unnest(?::uuid[], ?::uuid[]) AS v(id, silence) WHERE alerts.id = v.id', [
        [...silenced.keys()],
        [...silenced.values()],
      ]);
      return silenced;
    },
  };
}
