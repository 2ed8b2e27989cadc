import type { FastifyPluginAsync } from 'fastify';
import { readFleet, type FleetEntry } from '../../../shared/contract/fleet-status';
import type { Redis } from '../../../shared/platform/redis';
import type { RedisKeys } from '../../../shared/contract/redis-keys';
import { parseParams } from '../../../shared/read-model/query-params';
import { ERROR_RESPONSES, FLEET_SCHEMA } from '../openapi';

/** A bot as the API and the CLI show it: the heartbeat's fields in snake_case, absent values as null. */
export interface FleetItem {
  readonly bot_id: string;
  readonly pair: string;
  readonly status: string;
  readonly stale: boolean;
  readonly last_price: string | null;
  readonly last_fetch_at: string | null;
  readonly last_price_at: string | null;
  readonly reference_price: string | null;
  readonly consecutive_errors: number;
  readonly last_error: string | null;
  readonly started_at: string;
  readonly heartbeat_at: string;
  readonly ttl_ms: number;
  readonly rate_limited: boolean;
  readonly effective_interval_ms: number;
  readonly alerts_published: number;
  readonly alerts_dropped: number;
  readonly alerts_queued: number;
  readonly config: Record<string, unknown>;
}

export function toFleetItem(e: FleetEntry): FleetItem {
  return {
    bot_id: e.botId,
    pair: e.pair,
    status: e.status,
    stale: e.stale,
    last_price: e.lastPrice ?? null,
    last_fetch_at: e.lastFetchAt ?? null,
    last_price_at: e.lastPriceAt ?? null,
    reference_price: e.referencePrice ?? null,
    consecutive_errors: e.consecutiveErrors,
    last_error: e.lastError ?? null,
    started_at: e.startedAt,
    heartbeat_at: e.heartbeatAt,
    ttl_ms: e.ttlMs,
    rate_limited: e.rateLimited,
    effective_interval_ms: e.effectiveIntervalMs,
    alerts_published: e.alertsPublished,
    alerts_dropped: e.alertsDropped,
    alerts_queued: e.alertsQueued,
    config: { ...e.config },
  };
}

/** Every bot's heartbeat, stale ones included, from Redis. */
export async function readFleetItems(redis: Redis, keys: RedisKeys, now: number): Promise<FleetItem[]> {
  return (await readFleet(redis, keys, now)).map(toFleetItem);
}

export interface FleetRoutesOptions {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly now: () => number;
}

/** GET /fleet. */
export const fleetRoutes: FastifyPluginAsync<FleetRoutesOptions> = async (app, { redis, keys, now }) => {
  app.get(
    '/fleet',
    { schema: { summary: "Every bot's status from the workers' heartbeats (stale when a heartbeat expired)", response: { 200: FLEET_SCHEMA, ...ERROR_RESPONSES } } },
    async (req) => {
      const t = now();
      parseParams([], req.query, t);
      return { generated_at: new Date(t).toISOString(), bots: await readFleetItems(redis, keys, t) };
    },
  );
};
