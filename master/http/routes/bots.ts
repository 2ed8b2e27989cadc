import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from '../../../shared/platform/redis';
import type { RedisKeys } from '../../../shared/contract/redis-keys';
import { readBotHolder } from '../../../shared/contract/bots';
import { readBotStatus } from '../../../shared/contract/fleet-status';
import { BadRequestError } from '../../../shared/read-model/bad-request';
import { parseBotPatch, parseNewBot } from '../../../shared/read-model/bot-settings';
import { forgetRuleState } from '../../../shared/read-model/bots-mirror';
import { describeError } from '../../../shared/platform/errors';
import { BotConflictError, BotNotFoundError, type BotItem, type BotsRepository } from '../../../shared/read-model/bots-repository';
import { checkBotId, toFleetItem } from '../../../shared/read-model/fleet-view';
import { ANONYMOUS } from '../auth';
import {
  BOT_CREATE_BODY_SCHEMA,
  BOT_HOLDER_SCHEMA,
  BOT_ID_PARAMS_SCHEMA,
  BOT_PATCH_BODY_SCHEMA,
  BOT_SCHEMA,
  ERROR_RESPONSES,
  ERROR_SCHEMA,
  FLEET_SCHEMA,
  querySchema,
  WRITE_ERROR_RESPONSES,
} from '../openapi';
import { isValidationError, validationBadRequest } from '../validation';
import { parseParams } from '../../../shared/read-model/query-params';

export interface BotRoutesOptions {
  readonly repository: BotsRepository;
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly now: () => number;
  /** Runs after each committed change: rewrites the Redis mirror and announces the bot id (never throws). */
  readonly afterChange: (botId: string) => Promise<void>;
}

const CONFLICT_SCHEMA = {
  type: 'object',
  properties: {
    error: { type: 'string', const: 'conflict' },
    reason: { type: 'string', enum: ['taken', 'compose', 'version'] },
    message: { type: 'string' },
    bot_id: { type: 'string' },
    service: { type: ['string', 'null'], description: 'the compose service owning the bot (reason compose)' },
    version: { type: 'integer', description: "the bot's current version" },
  },
  required: ['error', 'reason', 'message', 'bot_id', 'version'],
} as const;

const NOT_FOUND = { ...ERROR_SCHEMA, description: 'No bot with this id.' };
const IF_MATCH_ALLOWED = 'a bot version from an earlier answer, such as "3" (its ETag)';

/** The actor recorded for a change: the token's name, or anonymous. Never a token value. */
const actorOf = (req: FastifyRequest) => req.caller?.name ?? ANONYMOUS;

/** Optional optimistic concurrency: `If-Match: "<version>"` makes the change happen only at that version. */
function expectedVersion(req: FastifyRequest): number | undefined {
  const header = req.headers['if-match'];
  if (header === undefined) return undefined;
  const match = typeof header === 'string' ? /^\s*(?:W\/)?"?([1-9]\d{0,14})"?\s*$/.exec(header) : null;
  if (!match) throw new BadRequestError('if-match', header, IF_MATCH_ALLOWED);
  return Number(match[1]);
}

/**
 * A body through the worker's config schemas (the authoritative check, with their words); the route schema's own
 * verdict (which documents the same rules) still refuses anything those schemas let through.
 */
function checkedBody<T>(req: FastifyRequest, parse: (body: unknown) => T): T {
  const parsed = parse(req.body);
  if (req.validationError && isValidationError(req.validationError)) throw validationBadRequest(req.validationError, req);
  return parsed;
}

function sendBot(reply: FastifyReply, bot: BotItem, code = 200): FastifyReply {
  return reply.code(code).header('etag', `"${bot.version}"`).send(bot);
}

function sendRefusal(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof BotNotFoundError) return reply.code(404).send({ error: 'not_found', message: err.message });
  if (err instanceof BotConflictError) {
    return reply.code(409).send({ error: 'conflict', reason: err.reason, message: err.message, bot_id: err.bot.bot_id, service: err.bot.service, version: err.bot.version });
  }
  throw err;
}

/** POST/GET /bots, GET/PATCH/DELETE /bots/{bot_id}: runtime bots as desired state. */
export const botRoutes: FastifyPluginAsync<BotRoutesOptions> = async (app, { repository, redis, keys, now, afterChange }) => {
  /** A new bot starts with no published alerts counted (an older bot may have had its id); a removed one leaves none. */
  const forgetRules = (bot: BotItem) =>
    forgetRuleState(redis, keys, bot).catch((err: unknown) => app.log.warn({ botId: bot.bot_id, err: describeError(err) }, 'rule state of the bot not reset'));
  app.post(
    '/bots',
    {
      attachValidation: true,
      schema: {
        summary: 'Adds a runtime bot (operator scope); a generic worker picks it up',
        querystring: querySchema([]),
        body: BOT_CREATE_BODY_SCHEMA,
        response: { 201: BOT_SCHEMA, 409: CONFLICT_SCHEMA, ...WRITE_ERROR_RESPONSES, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      parseParams([], req.query, now());
      const bot = checkedBody(req, parseNewBot);
      try {
        const created = await repository.create(bot, actorOf(req));
        req.log.info({ botId: created.bot_id, actor: actorOf(req), version: created.version }, 'bot created');
        await forgetRules(created);
        await afterChange(created.bot_id);
        return sendBot(reply, created, 201);
      } catch (err) {
        return sendRefusal(reply, err);
      }
    },
  );

  app.get(
    '/bots',
    {
      schema: {
        summary: 'Every bot in the bots table: runtime (source api) and compose-declared',
        querystring: querySchema([]),
        response: { 200: { type: 'object', properties: { bots: { type: 'array', items: BOT_SCHEMA } }, required: ['bots'] }, ...ERROR_RESPONSES },
      },
    },
    async (req) => {
      parseParams([], req.query, now());
      return { bots: await repository.list() };
    },
  );

  app.get<{ Params: { bot_id: string } }>(
    '/bots/:bot_id',
    {
      schema: {
        summary: 'One bot, with the worker holding it and its last heartbeat',
        params: BOT_ID_PARAMS_SCHEMA,
        querystring: querySchema([]),
        response: {
          200: {
            type: 'object',
            properties: {
              ...BOT_SCHEMA.properties,
              holder: { ...BOT_HOLDER_SCHEMA, description: "the worker holding the runtime bot's lease, or null" },
              status: { anyOf: [FLEET_SCHEMA.properties.bots.items, { type: 'null' }], description: "the bot's last heartbeat as GET /fleet shows it, or null" },
            },
            required: [...BOT_SCHEMA.required, 'holder', 'status'],
          },
          404: NOT_FOUND,
          ...ERROR_RESPONSES,
        },
      },
    },
    async (req, reply) => {
      parseParams([], req.query, now());
      checkBotId(req.params.bot_id);
      const bot = await repository.get(req.params.bot_id);
      if (!bot) return reply.code(404).send({ error: 'not_found', message: `no bot with id ${req.params.bot_id}` });
      const [holder, status] = await Promise.all([
        bot.source === 'api' ? readBotHolder(redis, keys, bot.bot_id, bot.pair) : Promise.resolve(null),
        readBotStatus(redis, keys, bot.bot_id, now()),
      ]);
      return reply
        .header('etag', `"${bot.version}"`)
        .send({
          ...bot,
          holder: holder ? { worker_id: holder.workerId, generation: holder.generation, ttl_ms: holder.ttlMs } : null,
          status: status ? toFleetItem(status) : null,
        });
    },
  );

  app.patch<{ Params: { bot_id: string } }>(
    '/bots/:bot_id',
    {
      attachValidation: true,
      schema: {
        summary: "Changes a runtime bot's settings or pauses/resumes it (enabled); the holder applies it at its next tick (operator scope)",
        params: BOT_ID_PARAMS_SCHEMA,
        querystring: querySchema([]),
        body: BOT_PATCH_BODY_SCHEMA,
        response: { 200: BOT_SCHEMA, 404: NOT_FOUND, 409: CONFLICT_SCHEMA, ...WRITE_ERROR_RESPONSES, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      if (req.validationError?.validationContext === 'params') throw validationBadRequest(req.validationError as never, req);
      parseParams([], req.query, now());
      checkBotId(req.params.bot_id);
      const patch = checkedBody(req, parseBotPatch);
      const expected = expectedVersion(req);
      try {
        const updated = await repository.update(req.params.bot_id, patch, actorOf(req), expected);
        req.log.info({ botId: updated.bot_id, actor: actorOf(req), version: updated.version }, 'bot changed');
        await afterChange(updated.bot_id);
        return sendBot(reply, updated);
      } catch (err) {
        return sendRefusal(reply, err);
      }
    },
  );

  app.delete<{ Params: { bot_id: string } }>(
    '/bots/:bot_id',
    {
      schema: {
        summary: 'Removes a runtime bot; its holder stops polling it (operator scope)',
        params: BOT_ID_PARAMS_SCHEMA,
        querystring: querySchema([]),
        response: { 204: { description: 'Removed.', type: 'null' }, 404: NOT_FOUND, 409: CONFLICT_SCHEMA, ...WRITE_ERROR_RESPONSES, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      parseParams([], req.query, now());
      checkBotId(req.params.bot_id);
      const expected = expectedVersion(req);
      try {
        const removed = await repository.remove(req.params.bot_id, actorOf(req), expected);
        req.log.info({ botId: removed.bot_id, actor: actorOf(req) }, 'bot removed');
        await forgetRules(removed);
        await afterChange(removed.bot_id);
        return reply.code(204).send();
      } catch (err) {
        return sendRefusal(reply, err);
      }
    },
  );
};
