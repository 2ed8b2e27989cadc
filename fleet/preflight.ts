import net from 'node:net';
import type { FleetPlan } from './plan';

/**
 * What must be true before `npm start` starts anything: every infrastructure service the compose file declares (Redis,
 * PostgreSQL) answers on this machine where the local processes will look for it, and every port a local service will
 * listen on is free. Each problem is one line naming the service, the address and what to do.
 */

const FRIENDLY: readonly [RegExp, string, string][] = [
  [/(^|\/)redis(:|$)/, 'Redis', 'start it (e.g. `redis-server --daemonize yes`)'],
  [/(^|\/)postgres(:|$)/, 'PostgreSQL', 'start it (e.g. `pg_ctlcluster <version> main start`)'],
];

/** Resolves with undefined when something accepts TCP connections at host:port, else with the error code. */
export function checkTcp(host: string, port: number, timeoutMs = 2000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (result: string | undefined) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer within ${timeoutMs} ms`));
    socket.once('connect', () => done(undefined));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
}

/** Resolves with undefined when the port can be bound on every interface, else with the error code. */
export function checkPortFree(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

export interface PreflightProblem {
  readonly service: string;
  readonly message: string;
}

export async function preflight(plan: FleetPlan, probes = { checkTcp, checkPortFree }): Promise<PreflightProblem[]> {
  const problems: PreflightProblem[] = [];
  const checks: Promise<void>[] = [];
  for (const ext of plan.external) {
    const friendly = FRIENDLY.find(([re]) => re.test(ext.image ?? ext.name));
    for (const port of ext.ports) {
      checks.push(
        probes.checkTcp(ext.host, port).then((error) => {
          if (error === undefined) return;
          const what = friendly ? `${friendly[1]} (compose service "${ext.name}")` : `compose service "${ext.name}"`;
          const fix = friendly ? `${friendly[2]}, ` : 'start it, ';
          problems.push({
            service: ext.name,
            message: `${what} is not reachable at ${ext.host}:${port} (${error}); ${ext.usedBy.join(', ')} need${ext.usedBy.length === 1 ? 's' : ''} it. ${fix[0]?.toUpperCase()}${fix.slice(1)}or run the whole fleet with Docker: docker compose up`,
          });
        }),
      );
    }
  }
  for (const service of plan.services) {
    if (service.listenPort === undefined || service.listenPort === 0) continue;
    const port = service.listenPort;
    checks.push(
      probes.checkPortFree(port).then((error) => {
        if (error === undefined) return;
        problems.push({ service: service.name, message: `port ${port}, where ${service.name} would listen, is not free (${error}); stop what uses it or choose another port` });
      }),
    );
  }
  await Promise.all(checks);
  return problems.sort((a, b) => a.service.localeCompare(b.service));
}
