import type { FastifyError, FastifyRequest, FastifyServerOptions } from 'fastify';
import { BadRequestError } from '../../shared/read-model/bad-request';
import { PARAMS, type ParamName, type ParamSpec } from '../../shared/read-model/query-params';

/**
 * Request validation by the route schemas (fastify's ajv), and its refusals in the API's own 400 body
 * `{ error: 'bad_request', parameter, value, allowed, message }`.
 *
 * The schemas check the form of every parameter (names, types, patterns, enums, a single value or a list); the route
 * then parses the values (query-params.ts: relative times, cursors, ranges), which also answers 400 in the same shape.
 */

/** ajv as the API uses it: check what the schemas say and change nothing in the request. */
export const API_AJV_OPTIONS: NonNullable<FastifyServerOptions['ajv']> = {
  customOptions: {
    // Query values stay the strings they arrived as: the routes parse them, and a 400 quotes them as sent.
    coerceTypes: false,
    // An unknown parameter is refused with a 400 naming it, never dropped in silence.
    removeAdditional: false,
    // A schema's `default` documents what the route does without the parameter; injecting it would make a default
    // `window` collide with an explicit since/until.
    useDefaults: false,
    // A repeatable parameter is one string or a list of them.
    allowUnionTypes: true,
    // OpenAPI annotation, not a validation keyword.
    keywords: ['example'],
    allErrors: false,
  },
};

/** What an `id` path parameter accepts, in the words of a 400 answer. */
export const UUID_ALLOWED = 'a UUID such as 0b6f2f4e-3c1a-4d5e-9f00-1a2b3c4d5e6f';
/** What each path parameter accepts (bot_id: the contract's BOT_ID rule), in the words of a 400 answer. */
const PATH_PARAM_ALLOWED: Readonly<Record<string, string>> = { id: UUID_ALLOWED, bot_id: '1-64 characters: letters, digits, ".", "_", ":", "-"' };

interface AjvError {
  readonly keyword: string;
  readonly instancePath: string;
  readonly params: Record<string, unknown>;
  readonly message?: string;
}

/** The top-level name an ajv error is about: the unknown or missing property, else the first step of its path. */
function parameterOf(error: AjvError): string {
  if (error.keyword === 'additionalProperties') return String(error.params.additionalProperty);
  if (error.keyword === 'required') return String(error.params.missingProperty);
  const step = error.instancePath.split('/')[1] ?? '';
  return step.replace(/~1/g, '/').replace(/~0/g, '~');
}

function describe(allowed: string | readonly string[]): string {
  return typeof allowed === 'string' ? allowed : `one of ${allowed.join(', ')}`;
}

/** True when fastify refused the request because it breaks the route's schema. */
export function isValidationError(err: unknown): err is FastifyError & { validation: AjvError[] } {
  return Array.isArray((err as { validation?: unknown }).validation);
}

/**
 * The 400 for a request that breaks its route's schema: the first parameter at fault, its value as sent, and what is
 * allowed in the words query-params.ts uses (so the answer reads the same whichever check refused it).
 */
export function validationBadRequest(err: FastifyError & { validation: AjvError[] }, req: FastifyRequest): BadRequestError {
  const error = err.validation[0];
  const context = err.validationContext ?? 'querystring';
  const source = (context === 'querystring' ? req.query : context === 'params' ? req.params : context === 'headers' ? req.headers : req.body) as
    | Record<string, unknown>
    | undefined;
  if (!error) return new BadRequestError(context, source ?? null, err.message);
  const parameter = parameterOf(error);
  const value = source && typeof source === 'object' && Object.hasOwn(source, parameter) ? source[parameter] : undefined;
  const schema = (req.routeOptions.schema as Record<string, { properties?: Record<string, unknown> } | undefined> | undefined)?.[context];
  const known = Object.keys(schema?.properties ?? {});

  if (error.keyword === 'additionalProperties') {
    return new BadRequestError(parameter, value, known.length ? known : context === 'querystring' ? 'no query parameters' : 'no parameters');
  }
  if (context === 'querystring' && Object.hasOwn(PARAMS, parameter)) {
    const spec = PARAMS[parameter as ParamName] as ParamSpec<unknown>;
    if (Array.isArray(value) && !spec.repeatable) return new BadRequestError(parameter, value, `a single value: ${describe(spec.allowed)}`);
    return new BadRequestError(parameter, value, spec.allowed);
  }
  if (context === 'params' && Object.hasOwn(PATH_PARAM_ALLOWED, parameter)) {
    return new BadRequestError(parameter, value, PATH_PARAM_ALLOWED[parameter] as string);
  }
  return new BadRequestError(parameter || context, value, `a value that ${error.message ?? 'matches the documented schema'}`);
}

/**
 * fastify's own 400 refusals that are not about one parameter (an unreadable body, say), in the same body as every
 * other 400, naming the part of the request at fault.
 */
export function requestBadRequest(err: FastifyError): BadRequestError {
  const part = err.code?.startsWith('FST_ERR_CTP_') ? 'body' : 'request';
  return new BadRequestError(part, null, `a well-formed ${part} (${err.message})`);
}
