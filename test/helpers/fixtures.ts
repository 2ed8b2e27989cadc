import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Knex } from '../../shared/platform/db';
import { createSeededRandom } from '../../sim/random';
import type { AlertItem } from '../../shared/read-model/alert-queries';
import { alertCopyLine, alertCopySql } from '../../shared/read-model/alert-table';

/**
 * Bulk fixture alerts for tests and the bench: deterministic (seeded), plausible rows generated lazily and loaded with
 * COPY, so a million rows cost seconds and constant memory.
 */

/** One row of the `alerts` table, as fixtures generate it (`received_at` is left to the database). */
/** A row as written: received_at is the database's default, silenced_by is left null (no silence). */
export type FixtureAlert = Omit<AlertItem, 'received_at' | 'silenced_by'>;

export interface FixtureOptions {
  /** How many alerts. */
  readonly count: number;
  /** Pairs, drawn uniformly (or by `pairWeights`). @defaultValue ["BTC-USD", "ETH-USD", "XRP-USD", "SOL-EUR"] */
  readonly pairs?: readonly string[];
  /** Relative weight of each pair (same order as `pairs`); lets tests have a rare pair. */
  readonly pairWeights?: readonly number[];
  /** Observed times are spread over [start, end). @defaultValue end - 7 days */
  readonly start?: Date;
  /** @defaultValue now */
  readonly end?: Date;
  /** Observed times are rounded down to this many ms; 1000 makes many ties, exercising the id tie-breaker. @defaultValue 1 */
  readonly timeResolutionMs?: number;
  /** PRNG seed: the same seed gives the same rows. @defaultValue 1 */
  readonly seed?: number;
  /** Prefix of generated ids' last group, to tell batches apart. @defaultValue none */
  readonly botPrefix?: string;
}

const DEFAULT_PAIRS = ['BTC-USD', 'ETH-USD', 'XRP-USD', 'SOL-EUR'];
const BASE_PRICE: Record<string, number> = { 'BTC-USD': 65_000, 'ETH-USD': 3_400, 'XRP-USD': 0.62, 'SOL-EUR': 140 };

function uuidFrom(random: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16));
  hex[12] = '4';
  hex[16] = ((Math.floor(random() * 4) + 8) as number).toString(16);
  const h = hex.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Generates `count` fixture alerts lazily. Change magnitudes are mostly near the threshold with a long tail. */
export function* generateFixtureAlerts(options: FixtureOptions): Generator<FixtureAlert> {
  const random = createSeededRandom(options.seed ?? 1);
  const pairs = options.pairs ?? DEFAULT_PAIRS;
  const weights = options.pairWeights ?? pairs.map(() => 1);
  const totalWeight = weights.reduce((a, b) => a + b, 0);
  const end = (options.end ?? new Date()).getTime();
  const start = (options.start ?? new Date(end - 7 * 86_400_000)).getTime();
  const resolution = options.timeResolutionMs ?? 1;
  const span = Math.max(1, end - start);
  for (let i = 0; i < options.count; i++) {
    let pick = random() * totalWeight;
    let pairIndex = 0;
    while (pairIndex < pairs.length - 1 && pick >= (weights[pairIndex] ?? 1)) pick -= weights[pairIndex++] ?? 1;
    const pair = pairs[pairIndex] as string;
    const threshold = [0.01, 0.05, 0.1][Math.floor(random() * 3)] as number;
    const magnitude = threshold * (1 + -Math.log(1 - random()) * 0.8);
    const up = random() < 0.5;
    const change = up ? magnitude : -magnitude;
    const reference = (BASE_PRICE[pair] ?? 100) * (0.9 + random() * 0.2);
    const price = reference * (1 + change / 100);
    const observedMs = Math.floor((start + Math.floor((i / options.count) * span + random() * (span / options.count))) / resolution) * resolution;
    const botId = `${options.botPrefix ?? 'fixture'}-${pair.toLowerCase()}`;
    yield {
      id: uuidFrom(random),
      bot_id: botId,
      pair,
      direction: up ? 'up' : 'down',
      price: price.toFixed(8),
      reference_price: reference.toFixed(8),
      change_percent: change.toFixed(18),
      threshold_percent: String(threshold),
      observed_at: new Date(Math.min(observedMs, end - 1)).toISOString(),
      config: {
        botId,
        pair,
        intervalMs: 5000,
        thresholdPercent: String(threshold),
        priceField: 'ask',
        referenceMode: 'first',
        tickerBaseUrl: 'http://127.0.0.1:9999',
      },
    };
  }
}

function copyLine(a: FixtureAlert): string {
  return alertCopyLine({ ...a, config: JSON.stringify(a.config) });
}

/** Loads alerts into `alerts` with COPY, streaming (memory stays flat for any count). Returns how many rows were written. */
export async function copyAlerts(db: Knex, alerts: Iterable<FixtureAlert>, options: { analyze?: boolean } = {}): Promise<number> {
  const client = (await db.client.acquireConnection()) as PoolClient;
  let written = 0;
  try {
    const copy = client.query(
      copyFrom(alertCopySql('alerts')),
    );
    function* chunks(): Generator<string> {
      let buffer: string[] = [];
      for (const alert of alerts) {
        buffer.push(copyLine(alert));
        written++;
        if (buffer.length === 2000) {
          yield buffer.join('');
          buffer = [];
        }
      }
      if (buffer.length) yield buffer.join('');
    }
    await pipeline(Readable.from(chunks()), copy);
    if (options.analyze !== false) await client.query('ANALYZE alerts');
  } finally {
    await db.client.releaseConnection(client);
  }
  return written;
}

/** Generates and COPYs `options.count` fixture alerts; returns the count. */
export async function insertFixtureAlerts(db: Knex, options: FixtureOptions & { analyze?: boolean }): Promise<number> {
  return copyAlerts(db, generateFixtureAlerts(options), { analyze: options.analyze });
}

/** Inserts a few alerts with one multi-row INSERT (for tests that add rows while they page). */
export async function insertAlerts(db: Knex, alerts: readonly FixtureAlert[]): Promise<void> {
  if (alerts.length === 0) return;
  await db('alerts').insert(alerts.map((a) => ({ ...a, config: JSON.stringify(a.config) })));
}
