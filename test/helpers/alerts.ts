import { newAlertId, serializeAlert, type AlertMessage } from '../../shared/contract/alert';
import type { StoredAlert } from '../../master/ingest/alert-repository';
import type { RedisKeys } from '../../shared/contract/redis-keys';
import type Redis from 'ioredis';

let sequence = 0;

/**
 * A valid AlertMessage v1 with distinct values per call; `overrides` replace top-level fields (and `config` fields).
 * `pair` and `botId` overrides also update the config snapshot so the message stays valid.
 */
export function makeAlert(overrides: Partial<Omit<AlertMessage, 'config'>> & { config?: Partial<AlertMessage['config']> } = {}): AlertMessage {
  sequence += 1;
  const { config: configOverrides, ...top } = overrides;
  const pair = top.pair ?? 'BTC-USD';
  const botId = top.botId ?? `bot-${pair.toLowerCase()}`;
  const direction = top.direction ?? (sequence % 2 === 0 ? 'down' : 'up');
  const changePercent = top.changePercent ?? `${direction === 'down' ? '-' : ''}0.${String(100 + (sequence % 900)).padStart(3, '0')}000000000000000`;
  const thresholdPercent = top.thresholdPercent ?? '0.01';
  return {
    version: 1,
    id: newAlertId(),
    botId,
    pair,
    direction,
    price: `${50_000 + sequence}.123456789012345678`,
    referencePrice: '50000.5',
    changePercent,
    thresholdPercent,
    observedAt: new Date(Date.UTC(2026, 10, 29, 12, 0, 0) + sequence * 1000).toISOString(),
    ...top,
    config: {
      botId,
      pair,
      intervalMs: 5000,
      thresholdPercent,
      priceField: 'ask',
      referenceMode: 'first',
      tickerBaseUrl: 'http://127.0.0.1:9/v0/ticker',
      ...configOverrides,
    },
  };
}

/**
 * Publishes an alert exactly as a worker does: in one MULTI, PUBLISH on the pair's channel, XADD to the pair's stream
 * (field `alert` = JSON) and SADD the pair to the pairs set. `raw` sends arbitrary bytes instead (for hostile input).
 */
export async function publishAlert(redis: Redis, keys: RedisKeys, alert: AlertMessage | { pair: string; raw: string }): Promise<void> {
  const body = 'raw' in alert ? alert.raw : serializeAlert(alert);
  const result = await redis
    .multi()
    .publish(keys.alertChannel(alert.pair), body)
    .xadd(keys.alertStream(alert.pair), '*', 'alert', body)
    .sadd(keys.pairsSet, alert.pair)
    .exec();
  const failed = result?.find(([err]) => err);
  if (!result || failed) throw new Error(`publishing the alert failed: ${String(failed?.[0] ?? 'MULTI aborted')}`);
}

/** Appends many alerts to their streams quickly (pipelined XADDs plus the pairs set), without publishing. */
export async function fillStreams(redis: Redis, keys: RedisKeys, alerts: readonly AlertMessage[]): Promise<void> {
  const chunk = 1000;
  for (let i = 0; i < alerts.length; i += chunk) {
    const pipeline = redis.pipeline();
    for (const alert of alerts.slice(i, i + chunk)) pipeline.xadd(keys.alertStream(alert.pair), '*', 'alert', serializeAlert(alert));
    for (const pair of new Set(alerts.slice(i, i + chunk).map((a) => a.pair))) pipeline.sadd(keys.pairsSet, pair);
    await pipeline.exec();
  }
}

/**
 * An alert as the master's repository returns it (decimals padded to the table's 18 places, Dates), built from
 * `makeAlert(overrides)`: what notifiers and chat senders are given.
 */
export function makeStoredAlert(overrides: Parameters<typeof makeAlert>[0] = {}): StoredAlert {
  const a = makeAlert(overrides);
  const pad = (d: string) => {
    const [int, frac = ''] = d.split('.');
    return `${int}.${frac.padEnd(18, '0')}`;
  };
  return {
    id: a.id,
    botId: a.botId,
    pair: a.pair,
    direction: a.direction,
    price: pad(a.price),
    referencePrice: pad(a.referencePrice),
    changePercent: pad(a.changePercent),
    thresholdPercent: pad(a.thresholdPercent),
    observedAt: new Date(a.observedAt),
    config: a.config,
    receivedAt: new Date(Date.parse(a.observedAt) + 20).toISOString().replace('Z', '000Z'),
  };
}
