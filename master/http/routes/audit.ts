import type { FastifyPluginAsync } from 'fastify';
import { BOT_ID_RE } from '../../../shared/contract/alert';
import { BadRequestError } from '../../../shared/read-model/bad-request';
import { AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX, decodeAuditCursor, type BotsRepository } from '../../../shared/read-model/bots-repository';
import { ANONYMOUS } from '../auth';
import { AUDIT_ITEM_SCHEMA, ERROR_RESPONSES } from '../openapi';

export interface AuditRoutesOptions {
  readonly repository: BotsRepository;
}

const AUDIT_QUERY_SCHEMA = {
  type: 'object',
  properties: {
    bot_id: { type: 'string', description: 'only changes of this bot' },
    cursor: { type: 'string', description: 'next_cursor of the previous page' },
    limit: { type: 'string', description: `rows per page, 1 to ${AUDIT_PAGE_MAX}`, default: String(AUDIT_PAGE_DEFAULT) },
  },
  additionalProperties: false,
} as const;

/** GET /audit (every change to the bots table, newest first) and GET /me (who the caller is). */
export const auditRoutes: FastifyPluginAsync<AuditRoutesOptions> = async (app, { repository }) => {
  app.get<{ Querystring: { bot_id?: string; cursor?: string; limit?: string } }>(
    '/audit',
    {
      schema: {
        summary: 'Every change to the bots, newest first, with who made it and the bot before and after (keyset pages)',
        querystring: AUDIT_QUERY_SCHEMA,
        response: {
          200: {
            type: 'object',
            properties: { items: { type: 'array', items: AUDIT_ITEM_SCHEMA }, next_cursor: { type: ['string', 'null'], description: 'pass as cursor for the next page; null on the last' } },
            required: ['items', 'next_cursor'],
          },
          ...ERROR_RESPONSES,
        },
      },
    },
    async (req) => {
      const { bot_id: botId, cursor, limit: limitText } = req.query;
      if (botId !== undefined && !BOT_ID_RE.test(botId)) throw new BadRequestError('bot_id', botId, '1-64 characters: letters, digits, ".", "_", ":", "-"');
      if (cursor !== undefined) decodeAuditCursor(cursor);
      let limit = AUDIT_PAGE_DEFAULT;
      if (limitText !== undefined) {
        limit = /^\d{1,7}$/.test(limitText) ? Number(limitText) : 0;
        if (limit < 1 || limit > AUDIT_PAGE_MAX) throw new BadRequestError('limit', limitText, `an integer from 1 to ${AUDIT_PAGE_MAX}`);
      }
      const page = await repository.audit({ botId, cursor, limit });
      return { items: page.items, next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/me',
    {
      schema: {
        summary: "The caller's name and scope (analyst: read only; operator: may change bots)",
        querystring: { type: 'object', properties: {}, additionalProperties: false },
        response: {
          200: { type: 'object', properties: { name: { type: 'string' }, scope: { type: 'string', enum: ['analyst', 'operator'] } }, required: ['name', 'scope'] },
          ...ERROR_RESPONSES,
        },
      },
    },
    async (req) => req.caller ?? { name: ANONYMOUS, scope: 'analyst' },
  );
};
