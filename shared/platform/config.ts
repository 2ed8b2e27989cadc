import { parseArgs } from 'node:util';
import { z } from 'zod';
import { config as loadDotenv } from 'dotenv';
import { ConfigError, describeError } from './errors';
import { displayValue, HIDDEN } from './secrets';

/**
 * One environment variable: how it is parsed, what it defaults to, and how it is documented.
 * Every variable may also be given as a command-line flag, `--kebab-case-name` (plus any `aliases`); flags win over env.
 */
export interface VariableSpec<T> {
  /** Parses the raw string. Its error message says what is allowed. */
  readonly schema: z.ZodType<T, string>;
  /** Raw default; absent means the variable is required (unless `optional`). */
  readonly default?: string;
  /** Absent and no default: the value is `undefined`, not an error. */
  readonly optional?: boolean;
  /** Extra flag names, without `--`. */
  readonly aliases?: readonly string[];
  /**
   * Never echoed in error messages, logs or `--dry-run` output: at most the scheme and host of a URL are shown. Values of
   * the other variables are shown with URL passwords masked (`postgres://app:***@db/x`).
   */
  readonly secret?: boolean;
  /** One line for README / .env.example / --help. */
  readonly doc: string;
}

export type VariableSpecs = Record<string, VariableSpec<unknown>>;
export type LoadedVariables<S extends VariableSpecs> = {
  readonly [K in keyof S]: S[K] extends VariableSpec<infer T>
    ? S[K]['default'] extends string
      ? T
      : S[K]['optional'] extends true
        ? T | undefined
        : T
    : never;
};

const flagName = (variable: string) => variable.toLowerCase().replace(/_/g, '-');

/** Reads flags from argv. Unknown flags and flags without a value are configuration errors. */
function readFlags(specs: VariableSpecs, argv: readonly string[]): Record<string, string> {
  const options: Record<string, { type: 'string' }> = {};
  const toVariable = new Map<string, string>();
  for (const [name, spec] of Object.entries(specs)) {
    for (const flag of [flagName(name), ...(spec.aliases ?? [])]) {
      options[flag] = { type: 'string' };
      toVariable.set(flag, name);
    }
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values as typeof values;
  } catch (err) {
    const allowed = [...toVariable.keys()].map((f) => `--${f}`).join(', ');
    // A stray argument may be a value meant for a secret flag: only its URL password would be masked, so it is not shown.
    const problem = (err as Error).message.replace(/^Unexpected argument '.*?'/s, `Unexpected argument ${HIDDEN}`);
    throw new ConfigError(`Invalid command line: ${problem}. Allowed flags: ${allowed}`, undefined, { cause: err });
  }
  const out: Record<string, string> = {};
  for (const [flag, value] of Object.entries(values)) {
    const variable = toVariable.get(flag);
    if (variable !== undefined && typeof value === 'string') out[variable] = value;
  }
  return out;
}

/**
 * Parses and validates every variable of `specs` from flags and the environment. Empty strings count as unset.
 * Throws one `ConfigError` listing every problem, each naming the variable, the bad value and what is allowed.
 */
export function loadVariables<S extends VariableSpecs>(
  specs: S,
  env: Readonly<Record<string, string | undefined>>,
  argv: readonly string[] = [],
): LoadedVariables<S> {
  const flags = readFlags(specs, argv);
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const given = flags[name] ?? (env[name] === '' ? undefined : env[name]);
    const raw = given ?? spec.default;
    if (raw === undefined) {
      if (!spec.optional) problems.push(`${name} is required: ${spec.doc}`);
      continue;
    }
    const parsed = spec.schema.safeParse(raw);
    if (parsed.success) {
      out[name] = parsed.data;
    } else {
      const display = displayValue(raw, spec.secret === true);
      const shown = display === HIDDEN ? HIDDEN : JSON.stringify(display);
      const allowed = parsed.error.issues[0]?.message ?? 'a valid value';
      problems.push(`${name}=${shown} is invalid: expected ${allowed}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`, problems);
  return Object.freeze(out) as LoadedVariables<S>;
}

/** Builds a ConfigError for a rule that spans several variables. */
export function crossCheck(problems: string[]): void {
  if (problems.length > 0) throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`, problems);
}

// ---- Variable kinds. Each message completes "expected ...". ----

export function integerVar(min: number, max: number): z.ZodType<number, string> {
  const allowed = `an integer from ${min} to ${max}`;
  return z
    .string()
    .regex(/^\s*\d+\s*$/, allowed)
    .transform(Number)
    .refine((n) => Number.isSafeInteger(n) && n >= min && n <= max, allowed);
}

export function enumVar<const T extends readonly [string, ...string[]]>(values: T): z.ZodType<T[number], string> {
  const allowed = `one of ${values.join(', ')}`;
  return z
    .string()
    .transform((s) => s.trim())
    .pipe(z.enum(values as unknown as [T[number], ...T[number][]], allowed)) as unknown as z.ZodType<T[number], string>;
}

export function listVar<const T extends readonly [string, ...string[]]>(values: T): z.ZodType<T[number][], string> {
  const allowed = `a comma-separated list of ${values.join(', ')}`;
  return z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
    .refine((items) => items.every((i) => (values as readonly string[]).includes(i)), allowed)
    .transform((items) => [...new Set(items)] as T[number][]);
}

export function urlVar(protocols: readonly string[]): z.ZodType<string, string> {
  const allowed = `a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`;
  return z
    .string()
    .transform((s) => s.trim())
    .refine((s) => {
      try {
        return protocols.includes(new URL(s).protocol);
      } catch {
        return false;
      }
    }, allowed);
}

/** A comma-separated list of `host:port` (host a name, IPv4 or [IPv6]; port 1-65535), at least one. */
export function hostPortListVar(): z.ZodType<string[], string> {
  const allowed = 'a comma-separated list of host:port (e.g. redis-1:6379,redis-2:6379)';
  return z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
    .refine(
      (items) =>
        items.length > 0 &&
        items.every((i) => {
          const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(i);
          return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 65_535;
        }),
      allowed,
    )
    .transform((items) => [...new Set(items)]);
}

/** Positive decimal percent kept as an exact string (e.g. "0.01"), bounded to (0, max]. */
export function percentVar(max: number): z.ZodType<string, string> {
  const allowed = `a plain decimal percent greater than 0 and at most ${max} (e.g. 0.01 means 0.01 %)`;
  return z
    .string()
    .transform((s) => s.trim())
    .refine((s) => /^\d{1,6}(\.\d{1,18})?$/.test(s) && /[1-9]/.test(s) && Number(s) <= max, allowed)
    .transform((s) => s.replace(/^0+(?=\d)/, ''));
}

export function stringVar(re: RegExp, allowed: string): z.ZodType<string, string> {
  return z
    .string()
    .transform((s) => s.trim())
    .refine((s) => re.test(s), allowed);
}

export function booleanVar(): z.ZodType<boolean, string> {
  return z
    .string()
    .transform((s) => s.trim().toLowerCase())
    .refine((s) => ['true', 'false', '1', '0', 'yes', 'no'].includes(s), 'true or false')
    .transform((s) => ['true', '1', 'yes'].includes(s));
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Variables every service reads. */
export const COMMON_VARIABLES = {
  REDIS_URL: { schema: urlVar(['redis:', 'rediss:']), default: 'redis://127.0.0.1:6379', secret: false, doc: 'Redis connection URL' },
  REDIS_CLUSTER_NODES: {
    schema: hostPortListVar(),
    optional: true,
    doc: 'Redis Cluster seed nodes (host:port,...): set, every connection is to the cluster (REDIS_URL then gives only the username and password); unset, REDIS_URL is one Redis',
  },
  REDIS_KEY_PREFIX: {
    schema: stringVar(/^[A-Za-z0-9:_.-]{0,64}$/, 'up to 64 characters: letters, digits, ":", "_", ".", "-"'),
    default: '',
    optional: true,
    doc: 'prefix for every Redis key and channel (lets several fleets or tests share one Redis)',
  },
  LOG_LEVEL: { schema: enumVar(LOG_LEVELS), default: 'info', doc: 'pino log level' },
} satisfies VariableSpecs;

/** Renders `--help` text for a set of variables. */
export function describeVariables(specs: VariableSpecs): string {
  return Object.entries(specs)
    .map(([name, s]) => `  ${name} / --${flagName(name)}${s.aliases?.length ? ` (--${s.aliases.join(', --')})` : ''}\n      ${s.doc}${s.default !== undefined ? ` [default: ${s.default === '' ? '""' : s.default}]` : s.optional ? ' [optional]' : ' [required]'}`)
    .join('\n');
}

/**
 * The configuration step of a service's `main`: reads `.env`, answers `--help` with the variable list (returns null),
 * or loads the configuration. Any error while loading it (a ConfigError, or whatever `load` throws, such as an unreadable
 * file a variable names) prints one line on stderr and exits with code 2.
 */
export function loadConfigForMain<T>(
  usage: string,
  specs: VariableSpecs,
  load: (env: NodeJS.ProcessEnv, argv: readonly string[]) => T,
): T | null {
  loadDotenv({ quiet: true });
  const argv = process.argv.slice(2);
  if (argv.includes('--help')) {
    process.stdout.write(`Usage: ${usage} -- [--flag value ...]\n\n${describeVariables(specs)}\n`);
    return null;
  }
  try {
    return load(process.env, argv);
  } catch (err) {
    process.stderr.write(`${err instanceof ConfigError ? err.message : `Invalid configuration: ${describeError(err)}`}\n`);
    process.exit(2);
  }
}
