import path from 'node:path';
import { normaliseCompose, readComposeFile, readEnvFile, type ComposeProject } from './compose-file';
import { parseServiceAddresses, planFleet, type FleetPlan } from './plan';
import { parseSpareWorkers } from './worker-pool';

/** The demo's interpolation variables, shared with Docker: `docker compose --env-file fleet/demo.env up`. */
export const DEMO_ENV_FILE = path.join('fleet', 'demo.env');

export interface LoadPlanOptions {
  /** Directory holding docker-compose.yml, .env and fleet/demo.env (the repository root). */
  readonly root: string;
  /** @defaultValue "docker-compose.yml" in root */
  readonly composeFile?: string;
  /** Adds fleet/demo.env's variables (which activate the demo profile and point the workers at the simulator). */
  readonly demo: boolean;
  /** The shell environment: wins over the env files, as with compose. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface LoadedPlan {
  readonly plan: FleetPlan;
  readonly project: ComposeProject;
  /** Variables the compose file uses without a default that nobody set (compose substitutes "" and warns). */
  readonly unsetVariables: readonly string[];
  readonly composeFile: string;
  /** FLEET_SPARE_WORKERS: idle generic workers kept beside one per enabled runtime bot. @defaultValue 1 */
  readonly spareWorkers: number;
}

/**
 * Builds the variable lookup compose would use: the shell environment, then (for the demo) fleet/demo.env, then .env.
 * Empty shell values count as set, as in compose.
 */
export function interpolationVariables(options: Pick<LoadPlanOptions, 'root' | 'demo' | 'env'>): (name: string) => string | undefined {
  const layers: Readonly<Record<string, string | undefined>>[] = [options.env];
  if (options.demo) layers.push(readEnvFile(path.join(options.root, DEMO_ENV_FILE)));
  layers.push(readEnvFile(path.join(options.root, '.env')));
  return (name) => {
    for (const layer of layers) {
      const value = layer[name];
      if (value !== undefined) return value;
    }
    return undefined;
  };
}

/** Active profiles: COMPOSE_PROFILES (comma list) from the variables; the demo env file sets it to "demo". */
export function activeProfiles(vars: (name: string) => string | undefined): string[] {
  return (vars('COMPOSE_PROFILES') ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}

/** Reads docker-compose.yml and turns it into the local plan. Throws ComposeFileError / PlanError with a clear message. */
export function loadFleetPlan(options: LoadPlanOptions): LoadedPlan {
  const composeFile = options.composeFile ?? path.join(options.root, 'docker-compose.yml');
  const vars = interpolationVariables(options);
  const { project, unsetVariables } = normaliseCompose(readComposeFile(composeFile), vars, path.basename(composeFile));
  const profiles = activeProfiles(vars);
  if (options.demo && !profiles.includes('demo')) profiles.push('demo');
  const plan = planFleet(project, { profiles, vars, addresses: parseServiceAddresses(vars('FLEET_SERVICE_ADDRESSES')) });
  return { plan, project, unsetVariables, composeFile, spareWorkers: parseSpareWorkers(vars('FLEET_SPARE_WORKERS')) };
}
