import { z } from 'zod';
import { PAIR_RE } from '../shared/contract/alert';
import { UNSIGNED_DECIMAL_RE } from '../shared/contract/decimal';
import { enumVar, integerVar, LOG_LEVELS, loadVariables, stringVar, type VariableSpecs } from '../shared/platform/config';

const probability = z
  .string()
  .transform((s) => s.trim())
  .refine((s) => /^(0(\.\d+)?|1(\.0+)?)$/.test(s), 'a probability from 0 to 1, e.g. 0.05')
  .transform(Number);

const decimalPercent = stringVar(/^\d{1,3}(\.\d{1,18})?$/, 'a plain decimal percent from 0 to 999, e.g. 0.05');

/** `BTC-USD=67000,ETH-USD=3500` -> { "BTC-USD": "67000", ... } */
const pairList = z
  .string()
  .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
  .refine(
    (items) => items.length > 0 && items.every((i) => /^[^=]+=[^=]+$/.test(i) && PAIR_RE.test(i.split('=')[0]!.trim().toUpperCase()) && UNSIGNED_DECIMAL_RE.test(i.split('=')[1]!.trim()) && /[1-9]/.test(i.split('=')[1]!)),
    'a comma-separated list of PAIR=price, e.g. BTC-USD=67000,ETH-USD=3500',
  )
  .transform((items) => Object.fromEntries(items.map((i) => { const [p, v] = i.split('='); return [p!.trim().toUpperCase(), v!.trim()]; })));

/** Every variable `npm run sim` reads (each also a `--flag`). */
export const SIM_VARIABLES = {
  SIM_PORT: { schema: integerVar(0, 65_535), default: '8090', aliases: ['port'], doc: 'port the ticker simulator listens on (0: any free port)' },
  SIM_HOST: { schema: stringVar(/^[A-Za-z0-9.:-]{1,253}$/, 'a host name or IP address'), default: '0.0.0.0', doc: 'address the simulator binds' },
  SIM_PAIRS: {
    schema: pairList as unknown as z.ZodType<Record<string, string>, string>,
    default: 'BTC-USD=67000,ETH-USD=3500,XRP-USD=0.52,BTC-EUR=62000',
    doc: 'pairs served and their starting mid prices',
  },
  SIM_SEED: { schema: integerVar(0, 4_294_967_295), optional: true, doc: 'seed of the random walk and random faults [default: random]' },
  SIM_VOLATILITY_PERCENT: { schema: decimalPercent, default: '0.05', doc: 'largest random-walk move per step, in percent (0: prices stay still)' },
  SIM_STEP_MS: { schema: integerVar(1, 3_600_000), default: '1000', doc: 'one random-walk step per this many ms' },
  SIM_SPREAD_PERCENT: { schema: decimalPercent, default: '0.02', doc: 'ask - bid, in percent of the mid' },
  SIM_SCRIPT: { schema: stringVar(/^.{1,4096}$/, 'a file path'), optional: true, doc: 'JSON file with scripted price sequences and faults per pair (see sim/README.md)' },
  SIM_RATE_LIMIT_PER_MIN: { schema: integerVar(0, 1_000_000), default: '250', doc: 'requests per minute per client IP before 429 + Retry-After (0: no limit)' },
  SIM_LIST_OMIT: {
    schema: stringVar(/^\s*[A-Za-z0-9]{2,32}(\s*,\s*[A-Za-z0-9]{2,32})*\s*$/, 'a comma-separated list of concatenated list names, e.g. USDEUR,BTCEUR'),
    optional: true,
    doc: 'entries left out of every currency list (the pair endpoint still answers) [default: none]',
  },
  SIM_LATENCY_MS: { schema: integerVar(0, 600_000), default: '0', doc: 'latency added to every answer' },
  SIM_ERROR_RATE: { schema: probability, default: '0', doc: 'probability of a 500 answer' },
  SIM_MALFORMED_RATE: { schema: probability, default: '0', doc: 'probability of a non-JSON 200 answer' },
  LOG_LEVEL: { schema: enumVar(LOG_LEVELS), default: 'info', doc: 'pino log level' },
} satisfies VariableSpecs;

export type SimConfig = ReturnType<typeof loadSimConfig>;

/** The simulator's validated configuration; throws ConfigError naming every bad variable. */
export function loadSimConfig(env: Readonly<Record<string, string | undefined>>, argv: readonly string[] = []) {
  const v = loadVariables(SIM_VARIABLES, env, argv);
  return Object.freeze({
    port: v.SIM_PORT,
    host: v.SIM_HOST,
    pairs: v.SIM_PAIRS,
    seed: v.SIM_SEED,
    volatilityPercent: v.SIM_VOLATILITY_PERCENT,
    stepMs: v.SIM_STEP_MS,
    spreadPercent: v.SIM_SPREAD_PERCENT,
    scriptPath: v.SIM_SCRIPT,
    rateLimitPerMin: v.SIM_RATE_LIMIT_PER_MIN,
    omitFromLists: v.SIM_LIST_OMIT ? v.SIM_LIST_OMIT.split(',').map((n) => n.trim().toUpperCase()) : [],
    latencyMs: v.SIM_LATENCY_MS,
    errorRate: v.SIM_ERROR_RATE,
    malformedRate: v.SIM_MALFORMED_RATE,
    logLevel: v.LOG_LEVEL,
  });
}
