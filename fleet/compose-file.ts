import { readFileSync } from 'node:fs';
import { parse as parseDotenv } from 'dotenv';
import YAML from 'yaml';
import { z } from 'zod';
import { interpolateTree } from './interpolate';
import { parseDuration } from '../shared/platform/duration';

/**
 * The part of a compose file the local runner understands, normalised: long and short syntaxes folded into one shape.
 * Anything else in the file (image, build, volumes, networks, ...) only matters to Docker and is ignored here.
 */
export interface ComposeProject {
  readonly services: Readonly<Record<string, ComposeService>>;
}

export type DependsOnCondition = 'service_started' | 'service_healthy' | 'service_completed_successfully';

export interface PortMapping {
  /** Port on the host; undefined when compose picks one (container port only). */
  readonly published?: number;
  readonly target: number;
}

export interface ComposeService {
  readonly name: string;
  /** Exec form. A string command is split on whitespace (quotes are refused: use the list form). */
  readonly command?: readonly string[];
  readonly image?: string;
  /** Variables as compose passes them; `null` means "take it from the host environment" (`- NAME` or `NAME:`). */
  readonly environment: Readonly<Record<string, string | null>>;
  readonly ports: readonly PortMapping[];
  readonly dependsOn: Readonly<Record<string, { readonly condition: DependsOnCondition; readonly required: boolean }>>;
  /** Compose restart policy string; compose's default is "no". */
  readonly restart: string;
  readonly profiles: readonly string[];
  readonly healthcheck?: ComposeHealthcheck;
  /** `deploy.replicas`: how many containers compose runs of this service (absent: one). */
  readonly replicas?: number;
  /** How long `stop` waits after SIGTERM before SIGKILL (compose `stop_grace_period`, default 10 s). */
  readonly stopGracePeriodMs: number;
  readonly labels: Readonly<Record<string, string>>;
}

export interface ComposeHealthcheck {
  readonly test?: readonly string[] | string;
  readonly disable?: boolean;
  /** Time between checks (compose `interval`, default 30 s). */
  readonly intervalMs?: number;
  /** How long one check may take (compose `timeout`, default 30 s). */
  readonly timeoutMs?: number;
  /** Consecutive failures before the service counts as unhealthy (compose default 3). */
  readonly retries?: number;
  /** Grace after start during which failures do not count (compose `start_period`, default 0). */
  readonly startPeriodMs?: number;
}

/** A compose file that cannot be read, parsed or understood. The message names the file and the offending field. */
export class ComposeFileError extends Error {
  override readonly name = 'ComposeFileError';
}

const scalar = z.union([z.string(), z.number(), z.boolean()]).transform(String);

const environmentSchema = z
  .union([
    z.record(z.string(), scalar.nullable()),
    z.array(z.string()).transform((items) =>
      Object.fromEntries(items.map((item) => (item.includes('=') ? [item.slice(0, item.indexOf('=')), item.slice(item.indexOf('=') + 1)] : [item, null]))),
    ),
  ])
  .optional()
  .transform((e) => e ?? {});

const portNumber = z.coerce.number().int().min(1).max(65_535);

/** "8080", "8080:80", "127.0.0.1:8080:80", "8080:80/tcp" or the long syntax. Ranges are refused: the runner maps single ports. */
const portSchema = z.union([
  z.number().int().transform((target) => ({ target })),
  z.string().transform((spec, ctx) => {
    const withoutProtocol = spec.replace(/\/(tcp|udp)$/, '');
    // An IPv6 host IP is bracketed: [::1]:8080:80.
    const parts = withoutProtocol.replace(/^\[[^\]]*\]:/, 'ip:').split(':');
    if (parts.some((p) => p.includes('-'))) {
      ctx.addIssue({ code: 'custom', message: `port range "${spec}" is not supported by the local runner; publish single ports` });
      return z.NEVER;
    }
    const numbers = parts.slice(-2);
    const target = Number(numbers[numbers.length - 1]);
    const published = numbers.length === 2 ? Number(numbers[0]) : undefined;
    const valid = (n: number | undefined) => n === undefined || (Number.isInteger(n) && n >= 1 && n <= 65_535);
    if (!valid(target) || !valid(published) || parts.length > 3) {
      ctx.addIssue({ code: 'custom', message: `"${spec}" is not a port mapping such as "8080:8080"` });
      return z.NEVER;
    }
    return published === undefined ? { target } : { published, target };
  }),
  z.object({ target: portNumber, published: portNumber.optional() }),
]);

const conditionSchema = z.enum(['service_started', 'service_healthy', 'service_completed_successfully']);
const dependsOnSchema = z
  .union([
    z.array(z.string()).transform((names) => Object.fromEntries(names.map((n) => [n, { condition: 'service_started' as const, required: true }]))),
    z.record(z.string(), z.object({ condition: conditionSchema.default('service_started'), required: z.boolean().default(true) })),
  ])
  .optional()
  .transform((d) => d ?? {});

const commandSchema = z
  .union([
    z.array(scalar),
    z.string().transform((s, ctx) => {
      if (/["'\\]/.test(s)) {
        ctx.addIssue({ code: 'custom', message: `use the list form for commands with quotes: ${JSON.stringify(s)}` });
        return z.NEVER;
      }
      return s.trim().split(/\s+/);
    }),
  ])
  .optional();

const labelsSchema = z
  .union([
    z.record(z.string(), scalar),
    z.array(z.string()).transform((items) => Object.fromEntries(items.map((i) => [i.split('=')[0] ?? i, i.includes('=') ? i.slice(i.indexOf('=') + 1) : '']))),
  ])
  .optional()
  .transform((l) => l ?? {});

const durationSchema = z
  .string()
  .optional()
  .refine((s) => s === undefined || parseDuration(s) !== null, 'a duration such as 10s or 1m30s');

/** Compose's healthcheck with its durations in milliseconds; only the fields the file sets. */
function normaliseHealthcheck(h: z.infer<typeof serviceSchema>['healthcheck']): ComposeHealthcheck | undefined {
  if (h === undefined) return undefined;
  const ms = (s: string | undefined) => (s === undefined ? undefined : (parseDuration(s) as number));
  const out = { test: h.test, disable: h.disable, intervalMs: ms(h.interval), timeoutMs: ms(h.timeout), retries: h.retries, startPeriodMs: ms(h.start_period) };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as ComposeHealthcheck;
}

const serviceSchema = z.object({
  command: commandSchema,
  image: z.string().optional(),
  environment: environmentSchema,
  ports: z.array(portSchema).optional().transform((p) => p ?? []),
  depends_on: dependsOnSchema,
  restart: z.string().regex(/^(no|always|unless-stopped|on-failure(:\d+)?)$/, 'no, always, unless-stopped, on-failure or on-failure:<max retries>').optional(),
  profiles: z.array(z.string()).optional().transform((p) => p ?? []),
  healthcheck: z
    .object({
      test: z.union([z.array(z.string()), z.string()]).optional(),
      disable: z.boolean().optional(),
      interval: durationSchema,
      timeout: durationSchema,
      retries: z.number().int().min(0).optional(),
      start_period: durationSchema,
    })
    .optional(),
  deploy: z.object({ replicas: z.coerce.number().int().min(0).optional() }).optional(),
  stop_grace_period: z
    .string()
    .optional()
    .refine((s) => s === undefined || parseDuration(s) !== null, 'a duration such as 10s or 1m30s'),
  labels: labelsSchema,
});

const projectSchema = z.object({
  services: z.record(z.string().regex(/^[a-zA-Z0-9._-]+$/, 'a service name (letters, digits, ".", "_", "-")'), serviceSchema.nullable().transform((s) => s ?? serviceSchema.parse({}))),
});

/**
 * A union's own message is just "Invalid input"; the useful one is inside, from the branch that matched the value's type
 * and then failed a refinement (a custom issue), or else the first branch's.
 */
function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code !== 'invalid_union') return issue.message;
  const branches = issue.errors;
  const custom = branches.flat().find((i) => i.code === 'custom' || i.code === 'invalid_union');
  const chosen = custom ?? branches[0]?.[0];
  if (!chosen) return issue.message;
  const where = chosen.path.length > 0 ? `${chosen.path.join('.')}: ` : '';
  return `${where}${describeIssue(chosen)}`;
}

/** Parses YAML text the way compose does: merge keys (`<<: *anchor`) resolved, duplicate keys refused. */
export function parseComposeYaml(text: string, file = 'docker-compose.yml'): unknown {
  const doc = YAML.parseDocument(text, { merge: true, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) throw new ComposeFileError(`${file}: ${doc.errors[0]?.message ?? 'invalid YAML'}`);
  return doc.toJS({ maxAliasCount: 1000 });
}

/**
 * Interpolates `${VAR}` expressions and normalises a parsed compose document.
 * @param vars the interpolation variables (shell environment over `.env`, as compose does).
 */
export function normaliseCompose(
  document: unknown,
  vars: (name: string) => string | undefined,
  file = 'docker-compose.yml',
): { project: ComposeProject; unsetVariables: string[] } {
  let interpolated: unknown;
  let unset: string[];
  try {
    ({ value: interpolated, unset } = interpolateTree(document, vars));
  } catch (err) {
    throw new ComposeFileError(`${file}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = projectSchema.safeParse(interpolated);
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(top level)'}: ${describeIssue(i)}`);
    throw new ComposeFileError(`${file} is not a compose file the runner understands: ${problems.join('; ')}`);
  }
  const services: Record<string, ComposeService> = {};
  for (const [name, s] of Object.entries(parsed.data.services)) {
    services[name] = Object.freeze({
      name,
      command: s.command,
      image: s.image,
      environment: s.environment,
      ports: s.ports,
      dependsOn: s.depends_on,
      restart: s.restart ?? 'no',
      profiles: s.profiles,
      healthcheck: normaliseHealthcheck(s.healthcheck),
      ...(s.deploy?.replicas !== undefined ? { replicas: s.deploy.replicas } : {}),
      stopGracePeriodMs: s.stop_grace_period === undefined ? 10_000 : (parseDuration(s.stop_grace_period) as number),
      labels: s.labels,
    });
  }
  return { project: Object.freeze({ services }), unsetVariables: unset };
}

/** Reads a dotenv file if it exists (compose's `.env`, or the demo's env file); a missing file is an empty one. */
export function readEnvFile(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ComposeFileError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseDotenv(text);
}

/** Reads and parses a compose file from disk. */
export function readComposeFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ComposeFileError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseComposeYaml(text, path);
}
