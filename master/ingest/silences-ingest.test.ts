import type { AlertMessage } from '../../shared/contract/alert';
import { createLogger } from '../../shared/platform/logger';
import { parseNewReceiver } from '../../shared/read-model/receiver-settings';
import { createReceiversRepository } from '../../shared/read-model/receivers-repository';
import { parseNewSilence } from '../../shared/read-model/silences';
import { createSilencesRepository } from '../../shared/read-model/silences-repository';
import { makeAlert } from '../../test/helpers/alerts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { createMetrics } from '../metrics';
import { createOutbox } from '../notify/outbox';
import { createAlertRepository, COPY_MIN_ROWS } from './alert-repository';
import { createAlertStore, type AlertStore } from './alert-store';

/**
 * The ingest's side of silences, against a real Postgres and the real outbox: each new alert gets the silence active at
 * its observed_at (pending, active, expired early), in the transaction that stores it, and only the others get outbox
 * rows; on both insert paths (one statement, COPY), through a redelivery and through a batch with a bad row.
 */

const T0 = Date.parse('2026-11-29T12:00:00Z');
const M = 60_000;
const at = (ms: number) => new Date(ms).toISOString();

let tdb: TestDatabase;
let tr: TestRedis;
let store: AlertStore;
const ids: Record<'active' | 'pending' | 'expired', string> = { active: '', pending: '', expired: '' };

beforeAll(async () => {
  [tdb, tr] = await Promise.all([createTestDatabase(), createTestRedis()]);
  const receivers = createReceiversRepository(tdb.db);
  await receivers.create(parseNewReceiver({ name: 'desk', kind: 'webhook', target: { url: 'http://127.0.0.1:9/hook', secret: 'silences-ingest-secret' } }), 'test');
  store = createAlertStore({
    db: tdb.db,
    repository: createAlertRepository(tdb.db),
    outbox: createOutbox(tdb.db, receivers),
    redis: tr.redis,
    keys: tr.keys,
    logger: createLogger({ name: 'silences-ingest-test', level: 'silent' }),
    metrics: createMetrics({ defaultMetrics: false }),
  });
  const silences = createSilencesRepository(tdb.db);
  const now = T0 - 120 * M;
  const add = (matchers: object, startsAt: number, endsAt: number) => silences.create(parseNewSilence({ matchers, starts_at: at(startsAt), ends_at: at(endsAt), comment: 'test' }, now), 'test', now);
  ids.active = (await add({ pair: 'BTC-USD' }, T0, T0 + 60 * M)).id;
  ids.pending = (await add({ pair: 'ETH-USD', direction: 'up' }, T0 + 120 * M, T0 + 180 * M)).id;
  const expired = await add({ bot_id: 'sol-1' }, T0 - 60 * M, T0 + 60 * M);
  ids.expired = expired.id;
  await silences.expire(expired.id, 'test', T0 - 30 * M);
});

afterAll(async () => {
  await tr?.cleanup();
  await tdb?.drop();
});

async function silencedBy(alerts: readonly AlertMessage[]): Promise<(string | null)[]> {
  const rows: { id: string; silenced_by: string | null }[] = await tdb.db('alerts').whereIn('id', alerts.map((a) => a.id)).select('id', 'silenced_by');
  const byId = new Map(rows.map((r) => [r.id, r.silenced_by]));
  return alerts.map((a) => byId.get(a.id) ?? null);
}

/** The alert ids the outbox holds rows for. */
async function queuedIds(): Promise<Set<string>> {
  const rows: { alert_ids: string[] }[] = await tdb.db('notifications').select('alert_ids');
  return new Set(rows.flatMap((r) => r.alert_ids));
}

describe('storing alerts while silences exist', () => {
  it('marks each alert with the silence active at its observation, and queues notifications for the others only', async () => {
    const batch = [
      makeAlert({ pair: 'BTC-USD', botId: 'btc-1', observedAt: at(T0 + 10 * M) }), // active
      makeAlert({ pair: 'BTC-USD', botId: 'btc-1', observedAt: at(T0 - 1) }), // just before the active one starts
      makeAlert({ pair: 'BTC-USD', botId: 'btc-1', observedAt: at(T0 + 60 * M) }), // its end is exclusive
      makeAlert({ pair: 'ETH-USD', botId: 'eth-1', direction: 'up', observedAt: at(T0 + 10 * M) }), // pending then
      makeAlert({ pair: 'ETH-USD', botId: 'eth-1', direction: 'up', observedAt: at(T0 + 121 * M) }), // within the pending window
      makeAlert({ pair: 'ETH-USD', botId: 'eth-1', direction: 'down', observedAt: at(T0 + 121 * M) }), // window, other direction
      makeAlert({ pair: 'SOL-USD', botId: 'sol-1', observedAt: at(T0 - 45 * M) }), // before the early expiry
      makeAlert({ pair: 'SOL-USD', botId: 'sol-1', observedAt: at(T0 - 10 * M) }), // after it
    ];
    const result = await store.store(batch);
    expect(result.inserted).toHaveLength(batch.length);
    expect(await silencedBy(batch)).toEqual([ids.active, null, null, null, ids.pending, null, ids.expired, null]);
    const queued = await queuedIds();
    batch.forEach((a, i) => expect([i, queued.has(a.id)]).toEqual([i, [1, 2, 3, 5, 7].includes(i)]));
  });

  it('marks a COPY-sized burst the same way, queueing nothing for it, and a redelivery changes nothing', async () => {
    const burst = Array.from({ length: COPY_MIN_ROWS + 6 }, (_, i) => makeAlert({ pair: 'BTC-USD', botId: `btc-${i % 3}`, observedAt: at(T0 + 20 * M + i) }));
    const before = await tdb.db('notifications').count({ n: '*' }).first();
    const result = await store.store(burst);
    expect(result.inserted).toHaveLength(burst.length);
    expect(new Set(await silencedBy(burst))).toEqual(new Set([ids.active]));
    expect(await tdb.db('notifications').count({ n: '*' }).first()).toEqual(before);
    const again = await store.store(burst);
    expect(again).toMatchObject({ inserted: [], duplicates: burst.length });
    expect(new Set(await silencedBy(burst))).toEqual(new Set([ids.active]));
  });

  it('keeps the marks of the good alerts when a bad one in the batch is isolated', async () => {
    const good = makeAlert({ pair: 'BTC-USD', botId: 'btc-1', observedAt: at(T0 + 30 * M) });
    const other = makeAlert({ pair: 'ADA-USD', botId: 'ada-1', observedAt: at(T0 + 30 * M) });
    // 21 integer digits overflow numeric(38,18): the database refuses this one row.
    const bad = makeAlert({ pair: 'BTC-USD', botId: 'btc-1', observedAt: at(T0 + 31 * M), price: '123456789012345678901.5' });
    const result = await store.store([good, bad, other]);
    expect(result.rejected.map((r) => r.alert.id)).toEqual([bad.id]);
    expect(await silencedBy([good, other])).toEqual([ids.active, null]);
    const queued = await queuedIds();
    expect([queued.has(good.id), queued.has(other.id)]).toEqual([false, true]);
  });
});
