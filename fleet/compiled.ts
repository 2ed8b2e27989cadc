import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FleetPlan, ServicePlan } from './plan';

/**
 * How the runner starts workers: `compiled` runs the tsc output (`node dist/worker/main.js`, what the image runs, about
 * 20-30 MB less per worker than tsx's in-process compiler), `source` runs the TypeScript through tsx like the npm scripts.
 */
export type RunFrom = 'compiled' | 'source';

/** FLEET_RUN values: `compiled` (default) or `source` (alias `tsx`). */
export const FLEET_RUN_VALUES = ['compiled', 'source', 'tsx'] as const;

export class FleetRunError extends Error {
  override readonly name = 'FleetRunError';
}

/** `--from-source` wins; otherwise FLEET_RUN; anything else is an error naming the value and what is allowed. */
export function parseRunFrom(fromSourceFlag: boolean, fleetRun: string | undefined): RunFrom {
  if (fromSourceFlag) return 'source';
  if (fleetRun === undefined || fleetRun === '') return 'compiled';
  if (fleetRun === 'compiled') return 'compiled';
  if (fleetRun === 'source' || fleetRun === 'tsx') return 'source';
  throw new FleetRunError(`FLEET_RUN=${JSON.stringify(fleetRun)}: expected one of ${FLEET_RUN_VALUES.join(', ')}`);
}

/** `worker/main.ts` -> `dist/worker/main.js` (tsconfig's outDir, rootDir "."). */
export function compiledEntry(sourceEntry: string): string {
  return path.posix.join('dist', sourceEntry.replace(/\.ts$/, '.js'));
}

/** Whether a service runs compiled code: its entry is under dist/ (the runner then starts it without tsx). */
export function isCompiledEntry(entry: string): boolean {
  return entry.startsWith('dist/');
}

const toCompiled = (s: ServicePlan): ServicePlan => (s.role === 'worker' ? { ...s, entry: compiledEntry(s.entry) } : s);

/**
 * The plan with its workers (compose-style ones and the pool's generic template) pointed at the compiled entry. The
 * master, the simulator and the migration keep running from source: one process each, and the dashboard's static
 * files live beside the sources.
 */
export function withCompiledWorkers(plan: FleetPlan): FleetPlan {
  return { ...plan, services: plan.services.map(toCompiled), ...(plan.pool ? { pool: toCompiled(plan.pool) } : {}) };
}

/** The folders tsc compiles (tsconfig.json `include`) and the files whose change means a rebuild. */
const SOURCE_DIRS = ['shared', 'worker', 'master', 'migrations', 'sim', 'cli', 'bench', 'fleet', 'faults', 'test'];

function newestSourceMtime(root: string): number {
  let newest = statSync(path.join(root, 'tsconfig.json')).mtimeMs;
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name === 'vendor' || entry.name === 'public') continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(full).mtimeMs);
    }
  };
  for (const dir of SOURCE_DIRS) if (existsSync(path.join(root, dir))) walk(path.join(root, dir));
  return newest;
}

/** Why `entries` (paths under dist/) need a build, or undefined when each exists and is newer than every source file. */
export function staleReason(root: string, entries: readonly string[]): string | undefined {
  const missing = entries.find((e) => !existsSync(path.join(root, e)));
  if (missing) return `${missing} is missing`;
  const newest = newestSourceMtime(root);
  const stale = entries.find((e) => statSync(path.join(root, e)).mtimeMs < newest);
  return stale ? `sources are newer than ${stale}` : undefined;
}

/**
 * Builds dist/ with the project's tsc when the compiled entries are missing or older than the sources (an mtime check,
 * a few ms). tsc emits even when some file has a type error; then the build still counts if every entry was written,
 * and `warn` gets tsc's complaint.
 */
export async function ensureCompiled(root: string, entries: readonly string[], log: { info(line: string): void; warn(line: string): void }): Promise<void> {
  const reason = staleReason(root, entries);
  if (!reason) return;
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) throw new FleetRunError(`dist/ needs a build (${reason}) but TypeScript is not installed at ${tsc}: run npm ci (it installs the dev dependencies), or npm start -- --from-source`);
  log.info(`building dist/ with tsc for the compiled workers (${reason}; about 20 s) ...`);
  // Whole seconds: some filesystems keep coarse mtimes, and a file tsc wrote must never look older than the build.
  const startedAt = Math.floor(Date.now() / 1000) * 1000;
  try {
    await promisify(execFile)(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    const output = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim() || e.message;
    const notWritten = entries.find((entry) => !existsSync(path.join(root, entry)) || statSync(path.join(root, entry)).mtimeMs < startedAt);
    if (notWritten) throw new FleetRunError(`tsc did not write ${notWritten} (run with --from-source to skip the build):\n${output.slice(-3000)}`);
    log.warn(`tsc reported errors but wrote the compiled workers; running them:\n${output.slice(-1500)}`);
  }
}
