import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { isCompiledEntry } from './compiled';
import type { Logger } from '../shared/platform/logger';
import type { FleetOutput } from './output';
import { stopGroups, type FleetPlan, type ServicePlan } from './plan';
import { decideRestart, DEFAULT_RESTART_BOUNDS, type RestartBounds } from './restart-policy';

/**
 * Runs a fleet plan as local processes: one-shot services to completion first, then the rest in start order; restarts a
 * service that dies per its compose restart policy (bounded, with backoff); stops everything in reverse start order.
 */
export interface Supervisor {
  /**
   * Runs one-shot services to completion, then starts the long-running ones. Rejects with `FleetStartError` if a one-shot
   * service fails (nothing after it is started), or if `stop()` was called meanwhile.
   */
  start(): Promise<void>;
  /**
   * Stops every process, in reverse start order (all workers, then the master, then the simulator): SIGTERM, then SIGKILL
   * after the service's `stop_grace_period`. Idempotent. `clean` is false if any process had to be killed.
   */
  stop(): Promise<{ clean: boolean }>;
  /** SIGKILLs every process now (a second Ctrl-C). */
  kill(): void;
  /** Resolves when every long-running service has ended on its own and will not be restarted. */
  readonly allEnded: Promise<void>;
  /** Process ids of the children alive now. */
  pids(): number[];
  /**
   * Starts one more long-running service now (a copy of the generic worker), restarted per its policy like the others and
   * stopped with its role's group. False, and nothing started, once `stop()` was called.
   * @throws Error if a service of that name already runs.
   */
  addService(service: ServicePlan): boolean;
  /** Stops a service `addService` started (SIGTERM, SIGKILL after its grace period) and forgets it. False if it had to be killed. */
  removeService(name: string): Promise<boolean>;
  /** True once a long-running service has ended and will not be restarted (its restart policy gave up). */
  hasEnded(name: string): boolean;
}

export interface SupervisorDeps {
  readonly plan: FleetPlan;
  /** Where entry points are resolved from (the repository root). */
  readonly root: string;
  readonly output: FleetOutput;
  /** The runner's own log. */
  readonly logger: Logger;
  /** Variables every child inherits besides its compose environment (PATH, HOME, ...). */
  readonly baseEnv: Readonly<Record<string, string>>;
  readonly bounds?: RestartBounds;
  /** Node arguments before a source entry point (compiled `dist/` entries run without them). @defaultValue ["--import", "tsx"] (what the npm scripts run) */
  readonly nodeArgs?: readonly string[];
}

/** A service the fleet cannot start without (a one-shot service that failed). */
export class FleetStartError extends Error {
  override readonly name = 'FleetStartError';
}

interface Unit {
  readonly service: ServicePlan;
  /** The outcome has settled: over for good. */
  ended(): boolean;
  start(): void;
  /** Settles once the service is over for good: resolves when a one-shot exited 0 or a long-running one will not restart; rejects when a one-shot failed for good. */
  readonly outcome: Promise<void>;
  stop(): Promise<boolean>;
  kill(): void;
  pid(): number | undefined;
}

/** Variables a child takes from the runner's environment, as a container takes them from its image. */
export const PASSTHROUGH_VARIABLES = ['PATH', 'HOME', 'USER', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'NODE_EXTRA_CA_CERTS', 'SYSTEMROOT'] as const;

export function passthroughEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PASSTHROUGH_VARIABLES) {
    const value = env[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

function describeExit(code: number | null, signal: string | null): string {
  return code !== null ? `exit code ${code}` : `signal ${signal ?? 'unknown'}`;
}

export function createSupervisor(deps: SupervisorDeps): Supervisor {
  const bounds = deps.bounds ?? DEFAULT_RESTART_BOUNDS;
  const nodeArgs = deps.nodeArgs ?? ['--import', 'tsx'];
  let stopping = false;
  let stopped: Promise<{ clean: boolean }> | undefined;

  const createUnit = (service: ServicePlan): Unit => {
    const log = deps.logger.child({ service: service.name });
    let child: ChildProcess | undefined;
    let exit: Promise<void> | undefined;
    let restartTimer: NodeJS.Timeout | undefined;
    let attempts = 0;
    // Set once this unit is told to stop (alone, by removeService, or with the fleet): its exit is then no failure.
    let ending = false;
    let settled = false;
    let settle!: { resolve: () => void; reject: (err: Error) => void };
    const outcome = new Promise<void>((resolve, reject) => {
      settle = { resolve, reject };
    });
    void outcome.then(
      () => (settled = true),
      () => (settled = true),
    );
    // Callers that never await one of these must not see an unhandled rejection.
    outcome.catch(() => undefined);

    const alive = () => child !== undefined && child.exitCode === null && child.signalCode === null;
    const signalGroup = (signal: NodeJS.Signals) => {
      if (!child?.pid) return;
      try {
        // Negative pid: the child's whole process group (it was spawned detached, as its own group).
        process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    };

    const start = () => {
      if (stopping || ending) return;
      const startedAt = Date.now();
      const stdout = deps.output.lineWriter(service.name, 'stdout');
      const stderr = deps.output.lineWriter(service.name, 'stderr');
      // A compiled entry (dist/...js) is plain JavaScript: it runs without the source loader.
      const loader = isCompiledEntry(service.entry) ? [] : nodeArgs;
      const proc = spawn(process.execPath, [...loader, ...service.nodeFlags, path.join(deps.root, service.entry), ...service.args], {
        cwd: deps.root,
        env: { ...deps.baseEnv, ...service.env },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own process group: a terminal's Ctrl-C reaches only the runner, which then stops services in order.
        detached: true,
      });
      child = proc;
      proc.stdout?.on('data', (chunk: Buffer) => stdout.write(chunk));
      proc.stderr?.on('data', (chunk: Buffer) => stderr.write(chunk));
      exit = new Promise<void>((resolve) => {
        proc.once('error', (err) => {
          log.error({ err: err.message }, 'could not start');
        });
        proc.once('close', (code, signal) => {
          stdout.flush();
          stderr.flush();
          resolve();
          onExit(code, signal, Date.now() - startedAt);
        });
      });
      log.info({ childPid: proc.pid, entry: service.entry }, service.oneShot ? 'running' : 'started');
    };

    const onExit = (code: number | null, signal: string | null, ranForMs: number) => {
      if (stopping || ending) return;
      if (service.oneShot && code === 0) {
        log.info('completed');
        settle.resolve();
        return;
      }
      const decision = decideRestart(service.restart, { code, signal, ranForMs, attempts }, bounds);
      if (decision.restart) {
        attempts = decision.attempt;
        log.warn(
          { code, signal, ranForMs, restartInMs: decision.delayMs, attempt: decision.attempt, maxAttempts: decision.of },
          `${service.name} exited (${describeExit(code, signal)}); restarting in ${Math.round(decision.delayMs / 100) / 10} s (attempt ${decision.attempt} of ${decision.of})`,
        );
        restartTimer = setTimeout(start, decision.delayMs);
        return;
      }
      const message = `${service.name} exited (${describeExit(code, signal)}); not restarting: ${decision.reason}`;
      if (code === 0 && !service.oneShot) log.warn({ code, signal }, message);
      else log.error({ code, signal }, message);
      if (service.oneShot) settle.reject(new FleetStartError(`${service.name} failed (${describeExit(code, signal)}); the fleet cannot start without it`));
      else settle.resolve();
    };

    return {
      service,
      ended: () => settled,
      start,
      outcome,
      async stop() {
        ending = true;
        clearTimeout(restartTimer);
        if (!alive() || !exit) return true;
        let forced = false;
        signalGroup('SIGTERM');
        const timer = setTimeout(() => {
          forced = true;
          log.error({ gracePeriodMs: service.stopGracePeriodMs }, `${service.name} did not stop within its grace period; killing it`);
          signalGroup('SIGKILL');
        }, service.stopGracePeriodMs);
        await exit;
        clearTimeout(timer);
        log.info({ code: child?.exitCode ?? null, signal: child?.signalCode ?? null }, 'stopped');
        return !forced;
      },
      kill() {
        clearTimeout(restartTimer);
        if (alive()) signalGroup('SIGKILL');
      },
      pid: () => (alive() ? child?.pid : undefined),
    };
  };

  const units = new Map(deps.plan.services.map((s) => [s.name, createUnit(s)]));
  const longRunning = [...units.values()].filter((u) => !u.service.oneShot);

  // Last resort: if the runner itself exits without stopping (an uncaught error), leave no orphan behind.
  const killOnExit = () => {
    for (const u of units.values()) u.kill();
  };
  process.once('exit', killOnExit);

  return {
    async start() {
      for (const unit of units.values()) {
        if (stopping) throw new FleetStartError('stopped while starting');
        for (const dep of unit.service.waitsFor) await units.get(dep)?.outcome;
        unit.start();
        if (unit.service.oneShot) await unit.outcome;
      }
      if (stopping) throw new FleetStartError('stopped while starting');
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        let clean = true;
        // One-shot services still running (e.g. migrate when Ctrl-C comes early) stop first.
        const oneShots = [...units.values()].filter((u) => u.service.oneShot);
        for (const result of await Promise.all(oneShots.map((u) => u.stop()))) clean &&= result;
        // Added services (the generic workers) are in `units` too, so they stop with their role's group.
        for (const group of stopGroups({ services: [...units.values()].map((u) => u.service), external: [], profiles: [] })) {
          const results = await Promise.all(group.map((s) => (units.get(s.name) as Unit).stop()));
          clean &&= results.every(Boolean);
        }
        process.removeListener('exit', killOnExit);
        return { clean };
      })();
      return stopped;
    },
    kill() {
      stopping = true;
      for (const u of units.values()) u.kill();
    },
    allEnded: Promise.all(longRunning.map((u) => u.outcome)).then(() => undefined),
    pids: () => [...units.values()].map((u) => u.pid()).filter((p): p is number => p !== undefined),
    addService(service) {
      if (stopping) return false;
      if (units.has(service.name)) throw new Error(`a service named ${service.name} already runs`);
      const unit = createUnit(service);
      units.set(service.name, unit);
      unit.start();
      return true;
    },
    hasEnded: (name) => units.get(name)?.ended() === true,
    async removeService(name) {
      const unit = units.get(name);
      if (!unit) return true;
      const clean = await unit.stop();
      // stop() may have taken this unit over meanwhile; it then stops it itself.
      if (!stopping) units.delete(name);
      return clean;
    },
  };
}
