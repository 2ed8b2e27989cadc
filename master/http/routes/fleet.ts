import type { FastifyPluginAsync } from 'fastify';
import { BOT_ID_RE } from '../../../shared/contract/alert';
import type { Redis } from '../../../shared/platform/redis';
import type { RedisKeys } from '../../../shared/contract/redis-keys';
import { checkBotId, DEFAULT_FLEET_RETENTION_MS, readFleetItems, removeBot, type FleetItem } from '../../../shared/read-model/fleet-view';
import { ANONYMOUS } from '../auth';
import { parseParams } from '../../../shared/read-model/query-params';
import { ERROR_RESPONSES, ERROR_SCHEMA, FLEET_SCHEMA, querySchema, WRITE_ERROR_RESPONSES } from '../openapi';

export interface FleetRoutesOptions {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly now: () => number;
  /** A stopped or expired bot leaves the fleet once its last heartbeat is this old (ms). @defaultValue 24h */
  readonly retentionMs?: number;
  /** Records an operator's removal in the audit trail. */
  readonly recordRemoval: (botId: string, actor: string, removed: FleetItem | null) => Promise<void>;
}

/** GET /fleet and DELETE /fleet/{bot_id}. */
export const fleetRoutes: FastifyPluginAsync<FleetRoutesOptions> = async (app, { redis, keys, now, retentionMs = DEFAULT_FLEET_RETENTION_MS, recordRemoval }) => {
  app.get(
    '/fleet',
    {
      schema: {
        summary: "Every bot's status from the workers' heartbeats (stale when a heartbeat expired)",
        querystring: querySchema([]),
        response: { 200: FLEET_SCHEMA, ...ERROR_RESPONSES },
      },
    },
    async (req) => {
      const t = now();
      parseParams([], req.query, t);
      return { generated_at: new Date(t).toISOString(), bots: await readFleetItems(redis, keys, t, retentionMs) };
    },
  );

  app.delete<{ Params: { bot_id: string } }>(
    '/fleet/:bot_id',
    {
      schema: {
        summary: 'Removes a bot from the fleet now (a bot still running reappears with its next heartbeat; operator scope)',
        params: { type: 'object', properties: { bot_id: { type: 'string', pattern: BOT_ID_RE.source } }, required: ['bot_id'] },
        querystring: querySchema([]),
        response: {
          204: { description: 'Removed.', type: 'null' },
          404: { ...ERROR_SCHEMA, description: 'No bot has reported with this id.' },
          ...WRITE_ERROR_RESPONSES,
          ...ERROR_RESPONSES,
        },
      },
    },
    async (req, reply) => {
      parseParams([], req.query, now());
      const botId = req.params.bot_id;
      checkBotId(botId);
      const { removed, last } = await removeBot(redis, keys, botId, now());
      if (!removed) return reply.code(404).send({ error: 'not_found', message: `no bot has reported with id ${botId}` });
      const actor = req.caller?.name ?? ANONYMOUS;
      await recordRemoval(botId, actor, last);
      req.log.info({ botId, actor }, 'bot removed from the fleet');
      return reply.code(204).send();
    },
  );
};
