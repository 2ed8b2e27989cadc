import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../shared/platform/logger';
import { waitFor } from '../test/helpers/wait';
import { createFleetOutput } from './output';
import type { FleetPlan, ServicePlan } from './plan';
import type { Role } from './roles';
import { createSupervisor, FleetStartError, type Supervisor } from './supervisor';
import { isAlive } from '../test/helpers/process';

/** Real processes (a small fixture script), so spawning, signals and process groups are exercised for real. */
const FIXTURES = path.join(__dirname, '..', 'test', 'fixtures');

function memory() {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  return { stream, text: () => text };
}

function svc(name: string, role: Role, mode: string, extra: Partial<ServicePlan> = {}): ServicePlan {
  return {
    name,
    role,
    entry: 'fleet-service.js',
    args: [mode],
    nodeFlags: [],
    env: { FIXTURE_NAME: name },
    restart: { mode: 'unless-stopped' },
    oneShot: false,
    waitsFor: [],
    startRank: { migrate: 0, sim: 1, master: 2, worker: 3 }[role],
    stopGracePeriodMs: 5000,
    ...extra,
  };
}

const started: Supervisor[] = [];

function run(services: ServicePlan[]) {
  const out = memory();
  const err = memory();
  const plan: FleetPlan = { services, external: [], profiles: [] };
  const output = createFleetOutput({ stdout: out.stream, stderr: err.stream, names: ['fleet', ...services.map((s) => s.name)] });
  const logger = createLogger({ name: 'fleet', level: 'info', pretty: false, destination: output.writable('fleet', 'stdout') });
  const supervisor = createSupervisor({
    plan,
    root: FIXTURES,
    output,
    logger,
    baseEnv: { PATH: process.env.PATH ?? '' },
    nodeArgs: [],
    bounds: { maxAttempts: 5, baseDelayMs: 50, maxDelayMs: 200, stableAfterMs: 30_000 },
  });
  started.push(supervisor);
  return { supervisor, stdout: out.text, stderr: err.text, all: () => out.text() + err.text() };
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()));
});

describe('the fleet supervisor', () => {
  it('runs the one-shot service to completion first, starts the rest in order, and stops them in reverse', async () => {
    const fleet = run([
      svc('migrate', 'migrate', 'once', { oneShot: true, restart: { mode: 'no' } }),
      svc('sim', 'sim', 'serve'),
      svc('master', 'master', 'serve', { waitsFor: ['migrate'] }),
      svc('worker-a', 'worker', 'serve'),
      svc('worker-b', 'worker', 'serve'),
    ]);
    await fleet.supervisor.start();
    const out = fleet.stdout();
    expect(out.indexOf('migrate  | done migrate')).toBeGreaterThanOrEqual(0);
    await waitFor('every service ready', () => ['sim', 'master', 'worker-a', 'worker-b'].every((n) => fleet.stdout().includes(`ready ${n}`)));
    const pids = fleet.supervisor.pids();
    expect(pids).toHaveLength(4);

    expect(await fleet.supervisor.stop()).toEqual({ clean: true });
    const text = fleet.stdout();
    const at = (line: string) => {
      const i = text.indexOf(line);
      expect({ line, found: i >= 0 }).toEqual({ line, found: true });
      return i;
    };
    // Workers are stopped (together) before the master, the master before the simulator.
    expect(Math.max(at('stopped worker-a'), at('stopped worker-b'))).toBeLessThan(at('stopping master'));
    expect(at('stopped master')).toBeLessThan(at('stopping sim'));
    expect(pids.filter(isAlive)).toEqual([]);
  });

  it('prefixes every line with its service name, padded to one width', async () => {
    const fleet = run([svc('sim', 'sim', 'serve'), svc('worker-long-name', 'worker', 'serve')]);
    await fleet.supervisor.start();
    await waitFor('both ready', () => fleet.stdout().includes('ready worker-long-name') && fleet.stdout().includes('ready sim'));
    expect(fleet.stdout()).toMatch(/^sim {14}\| \{"level":30,"msg":"ready sim"/m);
    expect(fleet.stdout()).toMatch(/^worker-long-name \| \{"level":30,"msg":"ready worker-long-name"/m);
    expect(fleet.stdout()).toMatch(/^fleet {12}\| \{.*"service":"sim".*"msg":"started"/m);
  });

  it('restarts a service that dies, with backoff, and gives up after the bound', async () => {
    const fleet = run([svc('worker-a', 'worker', 'crash', { restart: { mode: 'on-failure', maxRetries: 2 } })]);
    await fleet.supervisor.start();
    await fleet.supervisor.allEnded;
    expect(fleet.stderr().match(/^worker-a \| crashing worker-a$/gm)).toHaveLength(3);
    const log = fleet.stdout();
    expect(log).toContain('worker-a exited (exit code 3); restarting in 0.1 s (attempt 1 of 2)');
    expect(log).toContain('worker-a exited (exit code 3); restarting in 0.1 s (attempt 2 of 2)');
    expect(log).toContain('worker-a exited (exit code 3); not restarting: gave up after 2 consecutive restarts');
  });

  it('does not restart a service whose policy is "no", and reports how it ended', async () => {
    const fleet = run([svc('worker-a', 'worker', 'crash', { restart: { mode: 'no' } })]);
    await fleet.supervisor.start();
    await fleet.supervisor.allEnded;
    expect(fleet.stdout()).toContain('worker-a exited (exit code 3); not restarting: restart policy is \\"no\\"');
  });

  it('starts nothing after a one-shot service that fails', async () => {
    const fleet = run([
      svc('migrate', 'migrate', 'once', { oneShot: true, restart: { mode: 'no' }, env: { FIXTURE_NAME: 'migrate', FIXTURE_EXIT_CODE: '1' } }),
      svc('master', 'master', 'serve', { waitsFor: ['migrate'] }),
    ]);
    await expect(fleet.supervisor.start()).rejects.toThrow(new FleetStartError('migrate failed (exit code 1); the fleet cannot start without it'));
    expect(fleet.stdout()).not.toContain('ready master');
    expect(fleet.supervisor.pids()).toEqual([]);
  });

  it('kills a service that ignores SIGTERM once its grace period is over, and says the stop was not clean', async () => {
    const fleet = run([svc('worker-a', 'worker', 'stubborn', { stopGracePeriodMs: 300 })]);
    await fleet.supervisor.start();
    await waitFor('ready', () => fleet.stdout().includes('ready worker-a'));
    const [pid] = fleet.supervisor.pids();
    expect(await fleet.supervisor.stop()).toEqual({ clean: false });
    expect(fleet.stdout()).toContain('ignoring SIGTERM worker-a');
    expect(fleet.stdout()).toContain('did not stop within its grace period; killing it');
    expect(isAlive(pid!)).toBe(false);
  });

  it('runs services added while the fleet runs; one removed stops without a restart, the rest stop with their role group', async () => {
    const fleet = run([svc('master', 'master', 'serve'), svc('worker-a', 'worker', 'serve')]);
    await fleet.supervisor.start();
    expect(fleet.supervisor.addService(svc('pool-1', 'worker', 'serve'))).toBe(true);
    expect(fleet.supervisor.addService(svc('pool-2', 'worker', 'serve'))).toBe(true);
    expect(() => fleet.supervisor.addService(svc('pool-1', 'worker', 'serve'))).toThrow('a service named pool-1 already runs');
    await waitFor('all ready', () => ['master', 'worker-a', 'pool-1', 'pool-2'].every((n) => fleet.stdout().includes(`ready ${n}`)));
    expect(fleet.supervisor.pids()).toHaveLength(4);

    // Removing it is no failure: its unless-stopped policy does not bring it back.
    expect(await fleet.supervisor.removeService('pool-1')).toBe(true);
    expect(fleet.stdout()).toContain('stopped pool-1');
    await new Promise((r) => setTimeout(r, 300));
    expect(fleet.stdout().match(/ready pool-1/g)).toHaveLength(1);
    expect(fleet.supervisor.pids()).toHaveLength(3);

    expect(await fleet.supervisor.stop()).toEqual({ clean: true });
    const text = fleet.stdout();
    expect(text.indexOf('stopped pool-2')).toBeGreaterThan(0);
    expect(text.indexOf('stopped pool-2')).toBeLessThan(text.indexOf('stopping master'));
    expect(fleet.supervisor.addService(svc('pool-3', 'worker', 'serve'))).toBe(false);
    expect(fleet.supervisor.pids()).toEqual([]);
  });

  it("stops a service's own child processes with it (the whole process group)", async () => {
    const fleet = run([svc('master', 'master', 'parent')]);
    await fleet.supervisor.start();
    await waitFor('grandchild pid', () => /grandchild (\d+)/.exec(fleet.stdout()));
    const grandchild = Number(/grandchild (\d+)/.exec(fleet.stdout())![1]);
    expect(isAlive(grandchild)).toBe(true);
    await fleet.supervisor.stop();
    await waitFor('grandchild gone', () => !isAlive(grandchild), { timeoutMs: 5000 });
  });
});
