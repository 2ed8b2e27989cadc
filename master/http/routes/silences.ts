import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { BOT_ID_RE, DIRECTIONS } from '../../../shared/contract/alert';
import { BadRequestError } from '../../../shared/read-model/bad-request';
import { parseParams } from '../../../shared/read-model/query-params';
import { describeMatchers, MAX_COMMENT_LENGTH, MAX_SILENCE, parseNewSilence, parseSilenceState, SILENCE_STATES } from '../../../shared/read-model/silences';
import { SILENCE_PAGE_DEFAULT, SILENCE_PAGE_MAX, type SilencesRepository } from '../../../shared/read-model/silences-repository';
import { ANONYMOUS } from '../auth';
import { ERROR_RESPONSES, ERROR_SCHEMA, ID_PARAMS_SCHEMA, querySchema, WRITE_ERROR_RESPONSES } from '../openapi';
import { isValidationError, validationBadRequest } from '../validation';

export interface SilenceRoutesOptions {
  readonly repository: SilencesRepository;
  readonly now: () => number;
}

const time = (description: string, nullable = false) => ({ type: nullable ? ['string', 'null'] : 'string', format: 'date-time', description }) as const;

const MATCHER_PROPERTIES = {
  pair: { type: 'string', maxLength: 40, description: 'the alert pair, e.g. BTC-USD (case-insensitive on input)' },
  bot_id: { type: 'string', pattern: BOT_ID_RE.source, description: 'the bot that raised the alert' },
  direction: { type: 'string', enum: [...DIRECTIONS] },
} as const;

export const SILENCE_SCHEMA = {
  type: 'object',
  description: 'A silence: alerts it matches while active are stored and listed as always (with silenced_by) and get no notification.',
  properties: {
    id: { type: 'string', format: 'uuid' },
    matchers: {
      type: 'object',
      description: 'equality matchers, all of those given must hold; never empty',
      properties: MATCHER_PROPERTIES,
      additionalProperties: false,
    },
    starts_at: time('start of the window (inclusive), compared with each alert\'s observed_at'),
    ends_at: time('end of the window (exclusive) as created; an early expiry keeps it and sets expired_at'),
    comment: { type: 'string' },
    created_by: { type: 'string', description: 'actor: a token name, cli:<user> or anonymous (never a token)' },
    created_at: time('when it was created'),
    expired_at: time('when it was expired early (DELETE /silences/{id}); null otherwise', true),
    expired_by: { type: ['string', 'null'], description: 'who expired it early' },
    state: { type: 'string', enum: [...SILENCE_STATES], description: 'at the moment of the answer: pending (before starts_at), active, expired' },
  },
  required: ['id', 'matchers', 'starts_at', 'ends_at', 'comment', 'created_by', 'created_at', 'expired_at', 'expired_by', 'state'],
} as const;

/**
 * POST /silences body. The route checks it with parseNewSilence first (its refusals name `matchers.pair`, the window's
 * rules and so on); this schema documents the same fields and still refuses what that check lets through.
 */
const SILENCE_CREATE_BODY_SCHEMA = {
  type: 'object',
  properties: {
    matchers: { type: 'object', properties: MATCHER_PROPERTIES, additionalProperties: false, minProperties: 1, description: 'at least one of pair, bot_id, direction' },
    starts_at: { type: 'string', description: 'ISO-8601 with offset; default now', example: '2026-12-02T18:00:00Z' },
    ends_at: { type: 'string', description: 'ISO-8601 with offset, after starts_at and now (or give duration)', example: '2026-12-02T19:00:00Z' },
    duration: { type: 'string', description: `length from starts_at in the API's duration grammar: 30m, 1h, 8h, 7d (at most ${MAX_SILENCE}); instead of ends_at`, example: '1h' },
    comment: { type: 'string', minLength: 1, maxLength: MAX_COMMENT_LENGTH, description: 'why (shown in GET /silences)' },
  },
  required: ['matchers', 'comment'],
  additionalProperties: false,
} as const;

const LIST_QUERY_SCHEMA = {
  type: 'object',
  properties: {
    state: { type: 'string', enum: [...SILENCE_STATES], description: 'only silences in this state now; default every state' },
    limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$', description: `at most this many, newest first, 1 to ${SILENCE_PAGE_MAX}`, default: String(SILENCE_PAGE_DEFAULT) },
  },
  additionalProperties: false,
} as const;

const NOT_FOUND = { ...ERROR_SCHEMA, description: 'No silence has this id.' };

/** The actor recorded for a change: the token's name, or anonymous. Never a token value. */
const actorOf = (req: FastifyRequest) => req.caller?.name ?? ANONYMOUS;

/** POST/GET /silences, GET/DELETE /silences/{id}: silences mute notifications, never detection or history. */
export const silenceRoutes: FastifyPluginAsync<SilenceRoutesOptions> = async (app, { repository, now }) => {
  app.post(
    '/silences',
    {
      attachValidation: true,
      schema: {
        summary: 'Mutes the notifications of the alerts its matchers match while it is active (operator scope)',
        querystring: querySchema([]),
        body: SILENCE_CREATE_BODY_SCHEMA,
        response: { 201: SILENCE_SCHEMA, ...WRITE_ERROR_RESPONSES, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      if (req.validationError?.validationContext === 'querystring') throw validationBadRequest(req.validationError as never, req);
      parseParams([], req.query, now());
      const at = now();
      const silence = parseNewSilence(req.body, at);
      if (req.validationError && isValidationError(req.validationError)) throw validationBadRequest(req.validationError, req);
      const created = await repository.create(silence, actorOf(req), at);
      req.log.info({ silenceId: created.id, actor: created.created_by, matchers: describeMatchers(created.matchers), startsAt: created.starts_at, endsAt: created.ends_at }, 'silence created');
      return reply.code(201).header('location', `/silences/${created.id}`).send(created);
    },
  );

  app.get<{ Querystring: { state?: string; limit?: string } }>(
    '/silences',
    {
      schema: {
        summary: 'Silences, newest first: every state, or only pending, active or expired ones',
        querystring: LIST_QUERY_SCHEMA,
        response: { 200: { type: 'object', properties: { silences: { type: 'array', items: SILENCE_SCHEMA } }, required: ['silences'] }, ...ERROR_RESPONSES },
      },
    },
    async (req) => {
      const state = req.query.state === undefined ? undefined : parseSilenceState(req.query.state);
      let limit = SILENCE_PAGE_DEFAULT;
      if (req.query.limit !== undefined) {
        limit = /^\d{1,4}$/.test(req.query.limit) ? Number(req.query.limit) : 0;
        if (limit < 1 || limit > SILENCE_PAGE_MAX) throw new BadRequestError('limit', req.query.limit, `an integer from 1 to ${SILENCE_PAGE_MAX}`);
      }
      return { silences: await repository.list({ state, limit }, now()) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/silences/:id',
    {
      schema: {
        summary: 'One silence',
        params: ID_PARAMS_SCHEMA,
        querystring: querySchema([]),
        response: { 200: SILENCE_SCHEMA, 404: NOT_FOUND, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      parseParams([], req.query, now());
      const silence = await repository.get(req.params.id.toLowerCase(), now());
      if (!silence) return reply.code(404).send({ error: 'not_found', message: `no silence has id ${req.params.id}` });
      return silence;
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/silences/:id',
    {
      schema: {
        summary: 'Expires a silence now (operator scope): it stops muting and stays listed as expired, with who and when; an expired one is answered unchanged',
        params: ID_PARAMS_SCHEMA,
        querystring: querySchema([]),
        response: { 200: SILENCE_SCHEMA, 404: NOT_FOUND, ...WRITE_ERROR_RESPONSES, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      parseParams([], req.query, now());
      const result = await repository.expire(req.params.id.toLowerCase(), actorOf(req), now());
      if (!result) return reply.code(404).send({ error: 'not_found', message: `no silence has id ${req.params.id}` });
      if (result.changed) req.log.info({ silenceId: result.silence.id, actor: actorOf(req) }, 'silence expired');
      return result.silence;
    },
  );
};
