import { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { describeError } from '../../../shared/platform/errors';
import { ALERT_COLUMNS, type AlertItem, type AlertQueries } from '../../../shared/read-model/alert-queries';
import { alertCsvChunks } from '../../../shared/read-model/alert-csv';
import { BadRequestError } from '../../../shared/read-model/bad-request';
import { ALERT_SCHEMA, ERROR_RESPONSES, ERROR_SCHEMA, ID_PARAMS_SCHEMA, NOTIFICATION_SCHEMA, querySchema } from '../openapi';
import { UUID_ALLOWED } from '../validation';
import {
  ALERT_CSV_PARAMS,
  ALERT_LIST_PARAMS,
  DEFAULT_PAGE_LIMIT,
  encodeCursor,
  isUuid,
  parseParams,
  toAlertFilter,
  type Ordering,
  type PageCursor,
} from '../../../shared/read-model/query-params';

export interface AlertRoutesOptions {
  readonly queries: AlertQueries;
  readonly now: () => number;
  /**
   * Rows per keyset batch (and per written chunk) of a CSV export. Small enough that rendering one batch (about 12 ms for
   * 500 rows) never holds the event loop long: ingest shares it. @defaultValue 500
   */
  readonly csvBatchSize?: number;
  /** CSV exports streamed at once by this server; beyond it 503 with Retry-After. @defaultValue 2 */
  readonly csvMaxConcurrent?: number;
  /** Longest one CSV export may stream (ms); then it is cut off. @defaultValue 300000 */
  readonly csvTimeoutMs?: number;
}

/** Seconds a client refused for want of a CSV slot is told to wait (Retry-After). */
const CSV_RETRY_AFTER_S = 5;

/** True when the client asked for CSV on GET /alerts (`Accept: text/csv`, not refused with q=0). */
function wantsCsv(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((range) => {
    const [type = '', ...params] = range.split(';').map((s) => s.trim().toLowerCase());
    return type === 'text/csv' && !params.some((p) => /^q=0(\.0*)?$/.test(p));
  });
}

/**
 * GET /alerts (JSON page, or CSV with Accept: text/csv), GET /alerts.csv, GET /alerts/:id.
 */
export const alertRoutes: FastifyPluginAsync<AlertRoutesOptions> = async (app, options) => {
  const { queries, now, csvBatchSize = 500, csvMaxConcurrent = 2, csvTimeoutMs = 300_000 } = options;
  /** CSV exports streaming now: each holds the API's Postgres pool for one batch query after another until it ends. */
  let csvActive = 0;

  /**
   * Streams every matching alert as CSV. Batches are pulled from Postgres only as fast as the client reads
   * (Readable.from over an async generator honours back-pressure), so memory holds about one batch; each batch is
   * written as one chunk, not one socket write per row. At most `csvMaxConcurrent` run at once: the slot is taken
   * before the first query and given back when the response closes (finished, failed, cut off or abandoned). The first
   * batch is read before any header goes out, so a first query that fails (statement timeout, database down) is a
   * clean 503; a later failure, or `csvTimeoutMs` passing, can only cut the download short.
   */
  async function exportCsv(query: unknown, reply: FastifyReply): Promise<FastifyReply> {
    const params = parseParams(ALERT_CSV_PARAMS, query, now());
    const filter = toAlertFilter(params, query);
    const ordering = params.ordering ?? '-observed_at';
    checkCursorOrdering(params.cursor, ordering, query);
    if (csvActive >= csvMaxConcurrent) {
      return reply
        .code(503)
        .header('retry-after', String(CSV_RETRY_AFTER_S))
        .send({ error: 'too_many_exports', message: `${csvMaxConcurrent} CSV export(s) are already streaming from this server (CSV_MAX_CONCURRENT); retry in ${CSV_RETRY_AFTER_S} s` });
    }
    csvActive += 1;
    const batches = queries.streamAlerts(filter, { ordering, cursor: params.cursor, batchSize: csvBatchSize })[Symbol.asyncIterator]();
    let body: Readable | undefined;
    const timer = setTimeout(() => {
      const err = new Error(`the export ran longer than CSV_TIMEOUT_MS (${csvTimeoutMs} ms) and was cut off`);
      if (body) body.destroy(err);
      else reply.raw.destroy(err);
    }, csvTimeoutMs);
    reply.raw.once('close', () => {
      clearTimeout(timer);
      csvActive -= 1;
      // A client that went away mid-download stops the batch queries too.
      if (body && !body.destroyed) body.destroy();
      else if (!body) void batches.return(undefined);
    });
    const first = await batches.next();
    async function* all(): AsyncGenerator<AlertItem[]> {
      if (first.done) return;
      yield first.value;
      for (let next = await batches.next(); !next.done; next = await batches.next()) yield next.value;
    }
    // Byte mode with a small high-water mark: at most about one batch is read ahead of the socket.
    body = Readable.from(alertCsvChunks(all()), { objectMode: false, highWaterMark: 64 * 1024 });
    body.on('error', (err) => {
      // Headers are gone by now: the client sees a truncated download (no final newline); the log says why.
      reply.log.error({ err: describeError(err) }, 'CSV export failed midway');
    });
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', 'attachment; filename="alerts.csv"')
      .send(body);
  }

  app.get(
    '/alerts',
    {
      // HEAD would run a whole CSV export (Accept: text/csv) only to throw the body away.
      exposeHeadRoute: false,
      schema: {
        summary: 'Alerts, newest first by default, one keyset page at a time (or all of them as CSV with Accept: text/csv)',
        querystring: querySchema(ALERT_LIST_PARAMS),
        response: {
          200: {
            description: 'A page. Pass next_cursor back as cursor (with the same filters) for the next one; null on the last page.',
            type: 'object',
            properties: { items: { type: 'array', items: ALERT_SCHEMA }, next_cursor: { type: ['string', 'null'] } },
            required: ['items', 'next_cursor'],
          },
          ...ERROR_RESPONSES,
        },
      },
    },
    async (req, reply) => {
      if (wantsCsv(req.headers.accept)) return exportCsv(req.query, reply);
      const params = parseParams(ALERT_LIST_PARAMS, req.query, now());
      const filter = toAlertFilter(params, req.query);
      const ordering = params.ordering ?? '-observed_at';
      checkCursorOrdering(params.cursor, ordering, req.query);
      const page = await queries.listAlerts(filter, { ordering, limit: params.limit ?? DEFAULT_PAGE_LIMIT, cursor: params.cursor });
      return { items: page.items, next_cursor: page.nextCursor ? encodeCursor(page.nextCursor) : null };
    },
  );

  app.get(
    '/alerts.csv',
    {
      exposeHeadRoute: false,
      schema: {
        summary: 'Every matching alert as CSV, streamed (same filters and ordering as GET /alerts; no limit)',
        querystring: querySchema(ALERT_CSV_PARAMS),
        produces: ['text/csv'],
        response: { 200: { description: `CSV with a header row: ${ALERT_COLUMNS.join(',')} (config as JSON text)`, type: 'string' }, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => exportCsv(req.query, reply),
  );

  app.get<{ Params: { id: string } }>(
    '/alerts/:id',
    {
      schema: {
        summary: 'One alert with its notification deliveries',
        params: ID_PARAMS_SCHEMA,
        querystring: querySchema([]),
        response: {
          200: {
            type: 'object',
            properties: { ...ALERT_SCHEMA.properties, notifications: { type: 'array', items: NOTIFICATION_SCHEMA } },
            required: [...ALERT_SCHEMA.required, 'notifications'],
          },
          404: { ...ERROR_SCHEMA, description: 'No alert has this id.' },
          ...ERROR_RESPONSES,
        },
      },
    },
    async (req, reply) => {
      parseParams([], req.query, now());
      const { id } = req.params;
      if (!isUuid(id)) throw new BadRequestError('id', id, UUID_ALLOWED);
      const alert = await queries.getAlert(id.toLowerCase());
      if (!alert) return reply.code(404).send({ error: 'not_found', message: `no alert has id ${id}` });
      const notifications = await queries.getNotifications(alert.id);
      return { ...alert, notifications };
    },
  );
};

function checkCursorOrdering(cursor: PageCursor | undefined, ordering: Ordering, query: unknown): void {
  if (cursor && cursor.ordering !== ordering) {
    throw new BadRequestError('cursor', (query as Record<string, unknown>).cursor, `a next_cursor from a page with ordering=${ordering} (this one was made for ordering=${cursor.ordering})`);
  }
}
