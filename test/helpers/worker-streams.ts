import Redis from 'ioredis';
import { parseAlertMessage, type AlertMessage } from '../../shared/contract/alert';
import type { RedisKeys } from '../../shared/contract/redis-keys';
import { loadWorkerConfig, type WorkerConfig } from '../../shared/config/worker-config';

/** Test-only helpers shared by the worker's test files. */

/** Every alert in a pair's durable stream, oldest first, checked against the contract. */
export async function readAlertStream(redis: Redis, keys: RedisKeys, pair: string): Promise<AlertMessage[]> {
  const entries = await redis.xrange(keys.alertStream(pair), '-', '+');
  return entries.map(([id, fields]) => {
    const parsed = parseAlertMessage(fields[fields.indexOf('alert') + 1] ?? '');
    if (!parsed.ok) throw new Error(`stream entry ${id} breaks the contract: ${parsed.reason}`);
    return parsed.alert;
  });
}

/** Subscribes to a pair's alert channel and collects every message. */
export async function subscribeAlerts(url: string, keys: RedisKeys, pair: string): Promise<{ alerts: AlertMessage[]; close(): Promise<void> }> {
  const sub = new Redis(url, { maxRetriesPerRequest: 1 });
  const alerts: AlertMessage[] = [];
  sub.on('message', (_channel: string, message: string) => {
    const parsed = parseAlertMessage(message);
    if (!parsed.ok) throw new Error(`published message breaks the contract: ${parsed.reason}`);
    alerts.push(parsed.alert);
  });
  await sub.subscribe(keys.alertChannel(pair));
  // quit, not disconnect: ioredis keeps a 2 s timer alive after disconnect(), which holds jest open.
  return { alerts, close: async () => void (await sub.quit().catch(() => sub.disconnect())) };
}

/** "up 100.01 vs 100": how a test states an expected alert. */
export const describeAlert = (a: AlertMessage) => `${a.direction} ${a.price} vs ${a.referencePrice}`;

export function workerConfig(env: Record<string, string>): WorkerConfig {
  return loadWorkerConfig({ LOG_LEVEL: 'silent', ...env });
}
