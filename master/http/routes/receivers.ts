import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { DIRECTIONS } from '../../../shared/contract/alert';
import { BadRequestError } from '../../../shared/read-model/bad-request';
import { parseParams } from '../../../shared/read-model/query-params';
import { parseNewReceiver, parseReceiverPatch, RECEIVER_KINDS, RECEIVER_NAME_RE } from '../../../shared/read-model/receiver-settings';
import { ReceiverConflictError, ReceiverNotFoundError, RECEIVER_SOURCES, type ReceiversRepository } from '../../../shared/read-model/receivers-repository';
import { ANONYMOUS } from '../auth';
import { ERROR_RESPONSES, ERROR_SCHEMA, querySchema, WRITE_ERROR_RESPONSES } from '../openapi';
import { isValidationError, validationBadRequest } from '../validation';

export interface ReceiverRoutesOptions {
  readonly repository: ReceiversRepository;
  readonly now: () => number;
}

const time = (description: string) => ({ type: 'string', format: 'date-time', description }) as const;

const MATCH_SCHEMA = {
  type: 'object',
  description: 'which alerts the receiver gets: every condition given must hold; {} takes every alert',
  properties: {
    pairs: { type: 'array', items: { type: 'string', maxLength: 40 }, minItems: 1, maxItems: 100, description: 'only these pairs (case-insensitive on input)' },
    directions: { type: 'array', items: { type: 'string', enum: [...DIRECTIONS] }, minItems: 1, description: 'only these directions' },
    min_change: { type: ['string', 'number'], description: 'only alerts with |change_percent| >= this (exact decimal)', example: '1' },
  },
  additionalProperties: false,
} as const;

const QUIET_HOURS_SCHEMA = {
  type: ['object', 'null'],
  description:
    'a daily period in the receiver\'s zone during which its notifications are held (never dropped) and then sent as one summary when it ends; end before start crosses midnight. null: none',
  properties: {
    start: { type: 'string', pattern: '^([01]\\d|2[0-3]):[0-5]\\d$', example: '22:00' },
    end: { type: 'string', pattern: '^([01]\\d|2[0-3]):[0-5]\\d$', example: '07:00' },
    tz: { type: 'string', maxLength: 64, description: 'IANA time zone', example: 'Europe/Lisbon' },
  },
  required: ['start', 'end', 'tz'],
  additionalProperties: false,
} as const;

const TARGET_INPUT_SCHEMA = {
  type: 'object',
  description:
    'email {to}; webhook {url, secret?} (secret signs X-Tickwatch-Signature); slack {url} (incoming webhook); discord {url} (channel webhook); telegram {bot_token, chat_id}',
  properties: {
    to: { type: 'string', description: 'email: one address' },
    url: { type: 'string', description: 'webhook, slack, discord: http(s) URL (its path is a secret: never shown back)' },
    secret: { type: 'string', description: 'webhook: HMAC-SHA256 signing key, 8-512 characters (never shown back)' },
    bot_token: { type: 'string', description: 'telegram: the bot token (never shown back)' },
    chat_id: { type: ['string', 'integer'], description: 'telegram: chat id, or a channel @username' },
  },
  additionalProperties: false,
} as const;

const settingsProperties = {
  kind: { type: 'string', enum: [...RECEIVER_KINDS] },
  target: TARGET_INPUT_SCHEMA,
  match: { ...MATCH_SCHEMA, type: ['object', 'null'] },
  quiet_hours: QUIET_HOURS_SCHEMA,
  digest_seconds: { type: 'integer', minimum: 0, maximum: 86_400, description: 'alerts within this many seconds of the first go out as one message (the email digest window); default 0' },
  group_wait_ms: { type: 'integer', minimum: 0, maximum: 3_600_000, description: 'alerts within this many milliseconds of the first go out as one message listing each; default 0' },
} as const;

export const RECEIVER_SCHEMA = {
  type: 'object',
  description: 'A receiver: who gets which alerts, and how. Secrets in its target are masked as "(hidden)".',
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string' },
    kind: { type: 'string', enum: [...RECEIVER_KINDS] },
    target: {
      type: 'object',
      description: 'masked: email addresses and chat ids as they are; URLs as scheme and host only; secrets and bot tokens "(hidden)"',
      properties: { to: { type: 'string' }, url: { type: 'string' }, secret: { type: 'string' }, bot_token: { type: 'string' }, chat_id: { type: 'string' } },
      additionalProperties: false,
    },
    match: MATCH_SCHEMA,
    quiet_hours: QUIET_HOURS_SCHEMA,
    digest_seconds: { type: 'integer' },
    group_wait_ms: { type: 'integer' },
    source: { type: 'string', enum: [...RECEIVER_SOURCES], description: 'api, or config: built from MAIL_TO / WEBHOOK_URL at start, not changeable through the API' },
    created_at: time('when it was added'),
    created_by: { type: 'string', description: 'a token name, cli:<user>, anonymous, or config' },
    updated_at: time('last change'),
    updated_by: { type: 'string' },
  },
  required: ['id', 'name', 'kind', 'target', 'match', 'quiet_hours', 'digest_seconds', 'group_wait_ms', 'source', 'created_at', 'created_by', 'updated_at', 'updated_by'],
} as const;

const CREATE_BODY_SCHEMA = {
  type: 'object',
  properties: { name: { type: 'string', pattern: RECEIVER_NAME_RE.source, description: 'unique; default and default-webhook are the configured receivers' }, ...settingsProperties },
  required: ['name', 'kind', 'target'],
  additionalProperties: false,
} as const;
const PATCH_BODY_SCHEMA = { type: 'object', properties: settingsProperties, additionalProperties: false } as const;
const PARAMS_SCHEMA = {
  type: 'object',
  properties: { receiver: { type: 'string', maxLength: 64, description: 'the receiver\'s name or id' } },
  required: ['receiver'],
} as const;

const CONFLICT_SCHEMA = {
  type: 'object',
  properties: {
    error: { type: 'string', const: 'conflict' },
    reason: { type: 'string', enum: ['taken', 'config'], description: 'taken: the name exists; config: built from the configuration' },
    message: { type: 'string' },
    receiver: { type: 'string' },
  },
  required: ['error', 'reason', 'message', 'receiver'],
} as const;
const NOT_FOUND = { ...ERROR_SCHEMA, description: 'No receiver with this name or id.' };

const actorOf = (req: FastifyRequest) => req.caller?.name ?? ANONYMOUS;

function checkRef(ref: string): string {
  if (!RECEIVER_NAME_RE.test(ref)) throw new BadRequestError('receiver', ref, 'a receiver name (1-64 letters, digits, ".", "_", "-") or id');
  return ref;
}

/** The body through the receiver checks (their words name the field); the route schema still refuses what they let by. */
function checkedBody<T>(req: FastifyRequest, parse: () => T): T {
  if (req.validationError?.validationContext === 'params') throw validationBadRequest(req.validationError as never, req);
  const parsed = parse();
  if (req.validationError && isValidationError(req.validationError)) throw validationBadRequest(req.validationError, req);
  return parsed;
}

function sendRefusal(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof ReceiverNotFoundError) return reply.code(404).send({ error: 'not_found', message: err.message });
  if (err instanceof ReceiverConflictError) return reply.code(409).send({ error: 'conflict', reason: err.reason, message: err.message, receiver: err.receiver });
  throw err;
}

/**
 * POST/GET /receivers, GET/PATCH/DELETE /receivers/{name or id}. Writes need the operator scope (auth.ts refuses them
 * before the route runs). Targets are answered masked and never logged: the log lines name the receiver and its kind.
 */
export const receiverRoutes: FastifyPluginAsync<ReceiverRoutesOptions> = async (app, { repository, now }) => {
  app.post(
    '/receivers',
    {
      attachValidation: true,
      schema: {
        summary: 'Adds a receiver (operator scope): its alerts are routed to it from the next stored alert on',
        querystring: querySchema([]),
        body: CREATE_BODY_SCHEMA,
        response: { 201: RECEIVER_SCHEMA, 409: CONFLICT_SCHEMA, ...WRITE_ERROR_RESPONSES, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      parseParams([], req.query, now());
      const settings = checkedBody(req, () => parseNewReceiver(req.body));
      try {
        const created = await repository.create(settings, actorOf(req));
        req.log.info({ receiver: created.name, kind: created.kind, actor: actorOf(req) }, 'receiver created');
        return reply.code(201).send(created);
      } catch (err) {
        return sendRefusal(reply, err);
      }
    },
  );

  app.get(
    '/receivers',
    {
      schema: {
        summary: 'Every receiver, by name (targets masked)',
        querystring: querySchema([]),
        response: { 200: { type: 'object', properties: { receivers: { type: 'array', items: RECEIVER_SCHEMA } }, required: ['receivers'] }, ...ERROR_RESPONSES },
      },
    },
    async (req) => {
      parseParams([], req.query, now());
      return { receivers: await repository.list() };
    },
  );

  app.get<{ Params: { receiver: string } }>(
    '/receivers/:receiver',
    {
      schema: {
        summary: 'One receiver, by name or id (target masked)',
        params: PARAMS_SCHEMA,
        querystring: querySchema([]),
        response: { 200: RECEIVER_SCHEMA, 404: NOT_FOUND, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      parseParams([], req.query, now());
      const found = await repository.get(checkRef(req.params.receiver));
      if (!found) return reply.code(404).send({ error: 'not_found', message: `no receiver named ${req.params.receiver}` });
      return found;
    },
  );

  app.patch<{ Params: { receiver: string } }>(
    '/receivers/:receiver',
    {
      attachValidation: true,
      schema: {
        summary: "Changes a receiver's kind and target, match, quiet hours or grouping (operator scope); rows already queued keep their destination",
        params: PARAMS_SCHEMA,
        querystring: querySchema([]),
        body: PATCH_BODY_SCHEMA,
        response: { 200: RECEIVER_SCHEMA, 404: NOT_FOUND, 409: CONFLICT_SCHEMA, ...WRITE_ERROR_RESPONSES, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      parseParams([], req.query, now());
      const ref = checkRef(req.params.receiver);
      try {
        const updated = await repository.update(ref, (current) => checkedBody(req, () => parseReceiverPatch(req.body, current.kind)), actorOf(req));
        req.log.info({ receiver: updated.name, kind: updated.kind, actor: actorOf(req) }, 'receiver changed');
        return updated;
      } catch (err) {
        return sendRefusal(reply, err);
      }
    },
  );

  app.delete<{ Params: { receiver: string } }>(
    '/receivers/:receiver',
    {
      schema: {
        summary: 'Removes a receiver (operator scope); its queued notifications are marked failed, its delivery history stays',
        params: PARAMS_SCHEMA,
        querystring: querySchema([]),
        response: { 204: { description: 'Removed.', type: 'null' }, 404: NOT_FOUND, 409: CONFLICT_SCHEMA, ...WRITE_ERROR_RESPONSES, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      parseParams([], req.query, now());
      try {
        const removed = await repository.remove(checkRef(req.params.receiver), actorOf(req));
        req.log.info({ receiver: removed.name, kind: removed.kind, actor: actorOf(req) }, 'receiver removed');
        return reply.code(204).send();
      } catch (err) {
        return sendRefusal(reply, err);
      }
    },
  );
};
