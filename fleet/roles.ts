/**
 * How a compose service's command maps to a local process. The image runs compiled JavaScript (`node dist/<x>.js`); the
 * local runner runs the same entry point from source (`node --import tsx <x>.ts`), exactly like the npm scripts do.
 * This table is the whole mapping: a command that is not in it is not a Tickwatch service, and the runner says so.
 */

export type Role = 'migrate' | 'sim' | 'master' | 'worker';

export interface RoleSpec {
  readonly role: Role;
  /** What the image runs: `node <imageEntry>`. */
  readonly imageEntry: string;
  /** What `npm run <script>` runs: `node --import tsx <sourceEntry>`. */
  readonly sourceEntry: string;
  /** The npm script that runs this entry locally (documentation and tests). */
  readonly npmScript: string;
  /** Runs to completion before its dependants start (compose `service_completed_successfully`). */
  readonly oneShot: boolean;
  /** The variable that sets the port it listens on, if it listens: remapped to the published host port locally. */
  readonly listenPortVariable?: string;
  /** Start order: lower first; shutdown runs in reverse. */
  readonly startRank: number;
}

export const ROLES: readonly RoleSpec[] = [
  { role: 'migrate', imageEntry: 'dist/master/migrate.js', sourceEntry: 'master/migrate.ts', npmScript: 'db:migrate', oneShot: true, startRank: 0 },
  { role: 'sim', imageEntry: 'dist/sim/main.js', sourceEntry: 'sim/main.ts', npmScript: 'sim', oneShot: false, listenPortVariable: 'SIM_PORT', startRank: 1 },
  { role: 'master', imageEntry: 'dist/master/main.js', sourceEntry: 'master/main.ts', npmScript: 'master', oneShot: false, listenPortVariable: 'API_PORT', startRank: 2 },
  { role: 'worker', imageEntry: 'dist/worker/main.js', sourceEntry: 'worker/main.ts', npmScript: 'worker', oneShot: false, startRank: 3 },
];

/** Helper entry points the image runs in health checks; listed so tests can check they exist in source. */
export const HEALTHCHECK_ENTRIES: readonly { readonly imageEntry: string; readonly sourceEntry: string; readonly npmScript?: string }[] = [
  { imageEntry: 'dist/worker/health.js', sourceEntry: 'worker/health.ts', npmScript: 'worker:health' },
  { imageEntry: 'dist/fleet/http-probe.js', sourceEntry: 'fleet/http-probe.ts' },
];

export interface LocalCommand {
  readonly role: RoleSpec;
  /** Source entry, relative to the repository root. */
  readonly entry: string;
  /** Arguments after the entry point. */
  readonly args: readonly string[];
  /** Node flags before the entry point (e.g. a heap setting), kept so the local process runs like the container. */
  readonly nodeFlags: readonly string[];
}

/**
 * Maps a compose `command` to the local entry point, or undefined if the command is not a Tickwatch entry point
 * (an infrastructure image such as redis or postgres). Node flags before the entry are kept (a heap setting matters
 * locally too), except `--enable-source-maps`: tsx gives source maps locally.
 */
export function localCommandFor(command: readonly string[] | undefined): LocalCommand | undefined {
  if (!command || command[0] !== 'node') return undefined;
  const entryIndex = command.findIndex((part, i) => i > 0 && !part.startsWith('-'));
  if (entryIndex < 0) return undefined;
  const entry = (command[entryIndex] as string).replace(/^\.\//, '').replace(/^\/app\//, '');
  const role = ROLES.find((r) => r.imageEntry === entry);
  if (!role) return undefined;
  const nodeFlags = command.slice(1, entryIndex).filter((flag) => flag !== '--enable-source-maps');
  return { role, entry: role.sourceEntry, args: command.slice(entryIndex + 1), nodeFlags };
}

/** Same mapping for health-check commands (`["CMD", "node", "dist/worker/health.js"]`): returns the source entry. */
export function localHealthcheckEntry(test: readonly string[] | string | undefined): string | undefined {
  if (!Array.isArray(test) || (test[0] !== 'CMD' && test[0] !== 'CMD-SHELL')) return undefined;
  const command = test[0] === 'CMD' ? test.slice(1) : String(test[1] ?? '').split(/\s+/);
  if (command[0] !== 'node') return undefined;
  const entry = command.find((part, i) => i > 0 && !part.startsWith('-'));
  return [...ROLES, ...HEALTHCHECK_ENTRIES].find((r) => r.imageEntry === entry)?.sourceEntry;
}
