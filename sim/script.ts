import { z } from 'zod';
import { PairSchema } from '../shared/contract/alert';
import { UNSIGNED_DECIMAL_RE } from '../shared/contract/decimal';

/**
 * Faults the simulator can inject, each imitating something the real ticker (or the network in front of it) does.
 * - `latency`: answers normally after `ms`.
 * - `server-error`: 5xx (`status`, default 500) with an Uphold-style error body.
 * - `malformed`: 200 with a body that is not JSON.
 * - `zero`, `negative`, `non-numeric`, `missing-field`, `exponent`: 200 JSON whose ask/bid is not a positive plain decimal.
 * - `array-body`: 200 with a JSON array instead of the pair object.
 * - `not-found`: 404 `not_found`, as for an unknown pair.
 * - `rate-limit`: 429 `too_many_requests` with `Retry-After: retryAfterSeconds` (default 2).
 * - `reset`: the connection is destroyed without an answer (a network error).
 * - `hang`: no answer until the client gives up (a timeout).
 */
export const FAULT_KINDS = [
  'latency',
  'server-error',
  'malformed',
  'zero',
  'negative',
  'non-numeric',
  'missing-field',
  'exponent',
  'array-body',
  'not-found',
  'rate-limit',
  'reset',
  'hang',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const FaultSchema = z
  .object({
    fault: z.enum(FAULT_KINDS),
    /** For `latency`. */
    ms: z.number().int().nonnegative().max(600_000).optional(),
    /** For `server-error`. */
    status: z.number().int().min(500).max(599).optional(),
    /** For `rate-limit`. */
    retryAfterSeconds: z.number().int().nonnegative().max(3600).optional(),
  })
  .strict();
export type Fault = z.infer<typeof FaultSchema>;

const price = z.string().regex(UNSIGNED_DECIMAL_RE, 'a plain decimal string such as "67000.12"').refine((s) => /[1-9]/.test(s), 'a price above zero');

/** One scripted answer: a price (ask = bid), an explicit quote, or a fault. */
export const ScriptStepSchema = z.union([price, z.object({ ask: price, bid: price }).strict(), FaultSchema]);
export type ScriptStep = z.infer<typeof ScriptStepSchema>;

/**
 * A scripted price sequence per pair (`SIM_SCRIPT` file). Each request for the pair consumes the next step; after the
 * last step the last price keeps being served (or the script starts over when `repeat` is true).
 * Example: `{"repeat": false, "pairs": {"BTC-USD": ["100", "100.01", {"fault": "server-error"}, {"ask": "99", "bid": "98.9"}]}}`
 */
export const SimScriptSchema = z
  .object({
    repeat: z.boolean().default(false),
    pairs: z.record(PairSchema, z.array(ScriptStepSchema).min(1)),
  })
  .strict();
export type SimScript = z.input<typeof SimScriptSchema>;

/** Parses a script file's text; throws an Error naming the bad step. */
export function parseSimScript(text: string, source = 'script'): z.infer<typeof SimScriptSchema> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`${source} is not valid JSON: ${(err as Error).message}`);
  }
  const result = SimScriptSchema.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new Error(`${source} is not a simulator script: ${issue ? `${issue.path.join('.') || '(top)'}: ${issue.message}` : 'invalid'}`);
  }
  return result.data;
}
