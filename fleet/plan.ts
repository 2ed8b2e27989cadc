import type { ComposeProject, ComposeService } from './compose-file';
import { localCommandFor, type Role } from './roles';
import { parseRestartPolicy, type RestartPolicy } from './restart-policy';

/**
 * The compose file turned into local processes: a pure function of the normalised compose project, the interpolation
 * variables and the active profiles. `fleet/main.ts` runs the plan; the tests check it without starting anything.
 */
export interface FleetPlan {
  /** Tickwatch processes, in start order (stop runs in reverse). */
  readonly services: readonly ServicePlan[];
  /** Services the runner does not start (redis, postgres, ...) and where the local processes expect them. */
  readonly external: readonly ExternalService[];
  /** Active profiles. */
  readonly profiles: readonly string[];
  /**
   * The generic-worker service (a worker without PAIR, `worker-pool` in docker-compose.yml), if the file declares one. The
   * runner does not start it as one process: it starts as many copies (`pool-1`, `pool-2`, ...) as there are enabled
   * runtime bots plus the spares, each with its own WORKER_ID, and adds or stops copies as bots come and go.
   */
  readonly pool?: ServicePlan;
}

/** The variable a pinned (PAIR) worker names its compose service with; the runner sets it to the service name when unset. */
export const COMPOSE_SERVICE_VARIABLE = 'COMPOSE_SERVICE';

export interface ServicePlan {
  readonly name: string;
  readonly role: Role;
  /**
   * Entry point relative to the repository root: a source `.ts` run as `node --import tsx ...nodeFlags <entry> ...args`,
   * or (workers, by default: fleet/compiled.ts) its tsc output `dist/<x>.js` run as `node ...nodeFlags <entry> ...args`.
   */
  readonly entry: string;
  readonly args: readonly string[];
  /** Node flags the compose command gives (e.g. `--max-semi-space-size=2` for workers). */
  readonly nodeFlags: readonly string[];
  /** Exactly the environment compose gives the container, with compose hostnames and ports mapped to this machine. */
  readonly env: Readonly<Record<string, string>>;
  readonly restart: RestartPolicy;
  /** Runs to completion (exit 0) before the services that depend on it start. */
  readonly oneShot: boolean;
  /** Names of one-shot services that must have completed successfully before this one starts. */
  readonly waitsFor: readonly string[];
  readonly startRank: number;
  readonly stopGracePeriodMs: number;
  /** Port this service listens on locally, if it listens. */
  readonly listenPort?: number;
}

export interface ExternalService {
  readonly name: string;
  readonly image?: string;
  readonly host: string;
  /** Every port the local processes connect to on this service. */
  readonly ports: readonly number[];
  /** The local services that use it. */
  readonly usedBy: readonly string[];
}

export interface PlanOptions {
  /** Profiles to activate (`--demo` adds "demo"; COMPOSE_PROFILES adds more). */
  readonly profiles: readonly string[];
  /** Interpolation variables are already applied; this resolves `NAME` entries without a value (pass-through). */
  readonly vars: (name: string) => string | undefined;
  /** Where compose hostnames point locally. @defaultValue "127.0.0.1" */
  readonly localHost?: string;
  /**
   * Where a given service really is, when not on localHost at its usual port (FLEET_SERVICE_ADDRESSES, e.g. a Redis on
   * port 6380, or the `redis` host inside the test container).
   */
  readonly addresses?: Readonly<Record<string, ServiceAddress>>;
}

export interface ServiceAddress {
  readonly host: string;
  /** Absent: the port the URL names (or the service publishes). */
  readonly port?: number;
}

/** A compose file the runner cannot turn into local processes. Names the service and the problem. */
export class PlanError extends Error {
  override readonly name = 'PlanError';
}

const DEFAULT_PORTS: Record<string, number> = { 'redis:': 6379, 'rediss:': 6379, 'postgres:': 5432, 'postgresql:': 5432, 'http:': 80, 'https:': 443, 'smtp:': 25, 'smtps:': 465 };
const URL_AUTHORITY_RE = /^([a-z][a-z0-9+.-]*:)\/\/([^@/?#]*@)?([^:/?#]+)(?::(\d+))?/i;

/** Host port a service's container port is reachable on locally: the published port, or the same port if unpublished. */
function hostPortFor(service: ComposeService, containerPort: number): number {
  return service.ports.find((p) => p.target === containerPort)?.published ?? containerPort;
}

/**
 * Rewrites a URL whose host is a compose service (`redis://redis:6379`, `http://sim:8090/v0/ticker`) to point at this
 * machine, using the port the service publishes. Other values pass unchanged. Reports which service and port it used.
 */
export function localiseUrl(
  value: string,
  services: Readonly<Record<string, ComposeService>>,
  localHost = '127.0.0.1',
  addresses: Readonly<Record<string, ServiceAddress>> = {},
): { value: string; target?: { service: string; host: string; port: number } } {
  const m = URL_AUTHORITY_RE.exec(value);
  if (!m) return { value };
  const [authority, scheme, userinfo = '', host, port] = m as unknown as [string, string, string | undefined, string, string | undefined];
  const service = services[host];
  if (!service) return { value };
  const address = addresses[host];
  const targetHost = address?.host ?? localHost;
  const containerPort = port === undefined ? DEFAULT_PORTS[scheme.toLowerCase()] : Number(port);
  if (containerPort === undefined && address?.port === undefined) return { value: `${scheme}//${userinfo}${targetHost}${value.slice(authority.length)}` };
  const hostPort = address?.port ?? hostPortFor(service, containerPort as number);
  const portText = port === undefined && hostPort === containerPort ? '' : `:${hostPort}`;
  return {
    value: `${scheme}//${userinfo}${targetHost}${portText}${value.slice(authority.length)}`,
    target: { service: host, host: targetHost, port: hostPort },
  };
}

/**
 * Parses FLEET_SERVICE_ADDRESSES: `service=host[:port]`, comma-separated (e.g. `redis=127.0.0.1:6380`).
 * @throws PlanError naming the entry that is wrong.
 */
export function parseServiceAddresses(text: string | undefined): Record<string, ServiceAddress> {
  const out: Record<string, ServiceAddress> = {};
  for (const entry of (text ?? '').split(',').map((e) => e.trim()).filter(Boolean)) {
    const m = /^([a-zA-Z0-9._-]+)=([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?$/.exec(entry);
    const port = m?.[3] === undefined ? undefined : Number(m[3]);
    if (!m || (port !== undefined && (port < 1 || port > 65_535))) {
      throw new PlanError(`FLEET_SERVICE_ADDRESSES entry ${JSON.stringify(entry)} is invalid: expected service=host[:port], e.g. redis=127.0.0.1:6380`);
    }
    out[m[1] as string] = port === undefined ? { host: m[2] as string } : { host: m[2] as string, port };
  }
  return out;
}

export function isActive(service: ComposeService, profiles: readonly string[]): boolean {
  return service.profiles.length === 0 || service.profiles.some((p) => profiles.includes(p));
}

/** Builds the local plan. @throws PlanError naming the service and what is wrong with it. */
export function planFleet(project: ComposeProject, options: PlanOptions): FleetPlan {
  const localHost = options.localHost ?? '127.0.0.1';
  const all = project.services;
  const active = Object.values(all).filter((s) => isActive(s, options.profiles));
  const activeNames = new Set(active.map((s) => s.name));

  const locals: (ServicePlan & { dependsOn: string[]; order: number })[] = [];
  const externals = new Map<string, { service: ComposeService; host?: string; ports: Set<number>; usedBy: Set<string> }>();

  active.forEach((service, order) => {
    const local = localCommandFor(service.command);
    if (!local) {
      if (service.image === undefined || service.command?.[0] === 'node') {
        throw new PlanError(
          `service ${service.name}: command ${JSON.stringify(service.command ?? null)} is not a Tickwatch entry point (expected ["node", "dist/<service>/main.js"], see fleet/roles.ts)`,
        );
      }
      externals.set(service.name, externals.get(service.name) ?? { service, ports: new Set(), usedBy: new Set() });
      return;
    }
    let restart: RestartPolicy;
    try {
      restart = parseRestartPolicy(service.restart);
    } catch (err) {
      throw new PlanError(`service ${service.name}: ${(err as Error).message}`);
    }

    const env: Record<string, string> = {};
    for (const [name, raw] of Object.entries(service.environment)) {
      const value = raw ?? options.vars(name);
      if (value === undefined) continue;
      const localised = localiseUrl(value, all, localHost, options.addresses);
      if (localised.target) {
        const targetService = all[localised.target.service] as ComposeService;
        if (!activeNames.has(targetService.name)) {
          throw new PlanError(
            `service ${service.name}: ${name} points at service ${targetService.name}, which is not active (profiles: ${targetService.profiles.join(', ')}); run with --demo or change ${name}`,
          );
        }
        if (localCommandFor(targetService.command) === undefined) {
          const ext = externals.get(targetService.name) ?? { service: targetService, ports: new Set<number>(), usedBy: new Set<string>() };
          ext.host = localised.target.host;
          ext.ports.add(localised.target.port);
          ext.usedBy.add(service.name);
          externals.set(targetService.name, ext);
        }
      }
      env[name] = localised.value;
    }

    // A pinned worker names its compose service, so its bot shows which service owns it.
    if (local.role.role === 'worker' && (env.PAIR ?? '') !== '' && env[COMPOSE_SERVICE_VARIABLE] === undefined) env[COMPOSE_SERVICE_VARIABLE] = service.name;

    let listenPort: number | undefined;
    const portVariable = local.role.listenPortVariable;
    if (portVariable !== undefined && env[portVariable] !== undefined) {
      const containerPort = Number(env[portVariable]);
      if (!Number.isInteger(containerPort)) throw new PlanError(`service ${service.name}: ${portVariable}=${JSON.stringify(env[portVariable])} is not a port`);
      listenPort = hostPortFor(service, containerPort);
      env[portVariable] = String(listenPort);
    }

    const dependsOn: string[] = [];
    const waitsFor: string[] = [];
    for (const [dep, { condition, required }] of Object.entries(service.dependsOn)) {
      if (!activeNames.has(dep)) {
        if (!required) continue;
        throw new PlanError(`service ${service.name} depends on ${dep}, which is ${all[dep] ? 'not in an active profile' : 'not defined'}`);
      }
      dependsOn.push(dep);
      if (condition === 'service_completed_successfully') waitsFor.push(dep);
    }

    locals.push({
      name: service.name,
      role: local.role.role,
      entry: local.entry,
      args: local.args,
      nodeFlags: local.nodeFlags,
      env,
      restart,
      oneShot: local.role.oneShot,
      waitsFor,
      startRank: local.role.startRank,
      stopGracePeriodMs: service.stopGracePeriodMs,
      listenPort,
      dependsOn,
      order,
    });
  });

  // A worker without PAIR is a generic worker: the pool's template rather than one process.
  const pools = locals.filter((l) => l.role === 'worker' && (l.env.PAIR ?? '') === '');
  if (pools.length > 1) throw new PlanError(`services ${pools.map((p) => p.name).join(' and ')} are both generic worker pools (workers without PAIR); declare one`);
  const pool = pools[0];
  if (pool) locals.splice(locals.indexOf(pool), 1);

  const localNames = new Set(locals.map((l) => l.name));
  for (const l of locals) {
    for (const w of l.waitsFor) {
      const target = locals.find((x) => x.name === w);
      if (target && !target.oneShot) throw new PlanError(`service ${l.name} waits for ${w} to complete, but ${w} is a long-running service`);
    }
  }

  const seenPorts = new Map<number, string>();
  for (const l of locals) {
    if (l.listenPort === undefined) continue;
    const other = seenPorts.get(l.listenPort);
    if (other) throw new PlanError(`services ${other} and ${l.name} would both listen on port ${l.listenPort} on this machine`);
    seenPorts.set(l.listenPort, l.name);
  }

  // Start order: dependencies first; among the services that are ready, by role (migrate, sim, master, workers), then as
  // declared. Kahn's algorithm over depends_on between local services.
  const ordered: typeof locals = [];
  const pending = [...locals];
  while (pending.length > 0) {
    const placed = new Set(ordered.map((o) => o.name));
    const ready = pending
      .filter((p) => p.dependsOn.every((d) => !localNames.has(d) || placed.has(d)))
      .sort((a, b) => a.startRank - b.startRank || a.order - b.order);
    const next = ready[0];
    if (!next) throw new PlanError(`depends_on has a cycle among: ${pending.map((p) => p.name).join(', ')}`);
    ordered.push(next);
    pending.splice(pending.indexOf(next), 1);
  }

  const strip = ({ dependsOn: _d, order: _o, ...plan }: (typeof locals)[number]): ServicePlan => Object.freeze(plan);
  return Object.freeze({
    services: ordered.map(strip),
    ...(pool ? { pool: strip(pool) } : {}),
    external: [...externals.values()].map((e) =>
      Object.freeze({ name: e.service.name, image: e.service.image, host: e.host ?? options.addresses?.[e.service.name]?.host ?? localHost, ports: [...e.ports].sort((a, b) => a - b), usedBy: [...e.usedBy].sort() }),
    ),
    profiles: [...options.profiles],
  });
}

/** Stop order: groups in reverse start order, one group per role rank (all workers together, then the master, ...). */
export function stopGroups(plan: FleetPlan): ServicePlan[][] {
  const ranks = [...new Set(plan.services.map((s) => s.startRank))].sort((a, b) => b - a);
  return ranks.map((rank) => plan.services.filter((s) => s.startRank === rank && !s.oneShot)).filter((g) => g.length > 0);
}
