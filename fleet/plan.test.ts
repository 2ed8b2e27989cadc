import { normaliseCompose, parseComposeYaml, ComposeFileError } from './compose-file';
import { parseDuration } from '../shared/platform/duration';
import { localiseUrl, parseServiceAddresses, planFleet, PlanError, stopGroups, type FleetPlan } from './plan';
import { decideRestart, parseRestartPolicy, DEFAULT_RESTART_BOUNDS } from './restart-policy';
import { localCommandFor, localHealthcheckEntry } from './roles';

/** A small fleet in the shape of the real docker-compose.yml. */
const FLEET = `
x-app: &app
  image: tickwatch:local
  restart: unless-stopped
x-worker-env: &worker-env
  REDIS_URL: redis://redis:6379
  TICKER_BASE_URL: \${TICKER_BASE_URL:-https://api.uphold.com/v0/ticker}
  FETCH_INTERVAL_MS: \${FETCH_INTERVAL_MS:-5000}
x-worker: &worker
  <<: *app
  command: ["node", "dist/worker/main.js"]
  depends_on:
    redis: { condition: service_healthy }
    sim: { condition: service_healthy, required: false }
services:
  redis:
    image: redis:7-alpine
  postgres:
    image: postgres:16-alpine
  migrate:
    <<: *app
    restart: "no"
    command: ["node", "dist/master/migrate.js"]
    environment:
      DATABASE_URL: postgres://postgres:secret@postgres:5432/\${POSTGRES_DB:-tickwatch}
  master:
    <<: *app
    command: ["node", "dist/master/main.js"]
    environment:
      DATABASE_URL: postgres://postgres:secret@postgres:5432/\${POSTGRES_DB:-tickwatch}
      REDIS_URL: redis://redis:6379
      API_PORT: 8080
      SMTP_URL:
    ports: ["\${API_PORT:-8080}:8080"]
    depends_on:
      migrate: { condition: service_completed_successfully }
      redis: { condition: service_healthy }
    stop_grace_period: 20s
  sim:
    <<: *app
    profiles: [demo]
    command: ["node", "dist/sim/main.js"]
    environment:
      SIM_PORT: 8090
    ports: ["\${SIM_PORT:-8090}:8090"]
  worker-btc-usd:
    <<: *worker
    environment:
      <<: *worker-env
      PAIR: BTC-USD
  worker-eth-usd:
    <<: *worker
    restart: on-failure:3
    environment:
      <<: *worker-env
      PAIR: ETH-USD
`;

function plan(yaml: string, env: Record<string, string> = {}, profiles: string[] = []): FleetPlan {
  const vars = (name: string) => env[name];
  const { project } = normaliseCompose(parseComposeYaml(yaml), vars);
  return planFleet(project, { profiles, vars });
}

const service = (p: FleetPlan, name: string) => {
  const found = p.services.find((s) => s.name === name);
  if (!found) throw new Error(`no service ${name} in plan: ${p.services.map((s) => s.name).join(', ')}`);
  return found;
};

describe('turning docker-compose.yml into local processes', () => {
  describe('commands', () => {
    it('maps each compiled entry point in the image to its TypeScript source', () => {
      expect(localCommandFor(['node', 'dist/worker/main.js'])).toMatchObject({ entry: 'worker/main.ts', role: { role: 'worker' }, nodeFlags: [] });
      expect(localCommandFor(['node', '--max-semi-space-size=2', 'dist/worker/main.js'])).toMatchObject({ entry: 'worker/main.ts', nodeFlags: ['--max-semi-space-size=2'] });
      expect(localCommandFor(['node', '--enable-source-maps', '/app/dist/master/main.js', '--api-port', '9000'])).toMatchObject({
        entry: 'master/main.ts',
        args: ['--api-port', '9000'],
      });
      expect(localCommandFor(['node', 'dist/master/migrate.js'])?.role.oneShot).toBe(true);
      expect(localCommandFor(['node', 'dist/sim/main.js'])?.entry).toBe('sim/main.ts');
    });

    it('treats anything else as not a Tickwatch service', () => {
      expect(localCommandFor(['redis-server'])).toBeUndefined();
      expect(localCommandFor(['node', 'dist/unknown.js'])).toBeUndefined();
      expect(localCommandFor(undefined)).toBeUndefined();
    });

    it('maps health-check commands the same way', () => {
      expect(localHealthcheckEntry(['CMD', 'node', 'dist/worker/health.js'])).toBe('worker/health.ts');
      expect(localHealthcheckEntry(['CMD', 'node', 'dist/fleet/http-probe.js', 'http://127.0.0.1:8080/ready'])).toBe('fleet/http-probe.ts');
      expect(localHealthcheckEntry(['CMD', 'redis-cli', 'ping'])).toBeUndefined();
    });

    it('refuses a node command it cannot map, naming the service', () => {
      expect(() => plan('services:\n  odd:\n    image: x\n    command: ["node", "dist/odd.js"]\n')).toThrow(PlanError);
    expect(() => plan('services:\n  odd:\n    image: x\n    command: ["node", "dist/odd.js"]\n')).toThrow(/^service odd: command \["node","dist\/odd.js"\] is not a Tickwatch entry point/);
    });
  });

  describe('environment', () => {
    it('gives each process exactly the environment compose gives its container, YAML merge keys resolved', () => {
      const p = plan(FLEET);
      expect(service(p, 'worker-btc-usd').env).toEqual({
        REDIS_URL: 'redis://127.0.0.1:6379',
        TICKER_BASE_URL: 'https://api.uphold.com/v0/ticker',
        FETCH_INTERVAL_MS: '5000',
        PAIR: 'BTC-USD',
        // Added by the runner: a pinned worker names its compose service.
        COMPOSE_SERVICE: 'worker-btc-usd',
      });
      expect(service(p, 'worker-eth-usd').env.PAIR).toBe('ETH-USD');
    });

    it('interpolates ${VAR:-default} from the variables given (the shell over .env)', () => {
      const p = plan(FLEET, { FETCH_INTERVAL_MS: '1000', POSTGRES_DB: 'tw_test_x' });
      expect(service(p, 'worker-btc-usd').env.FETCH_INTERVAL_MS).toBe('1000');
      expect(service(p, 'migrate').env.DATABASE_URL).toBe('postgres://postgres:secret@127.0.0.1:5432/tw_test_x');
    });

    it('takes a variable listed without a value from the host environment, and leaves it out when unset there', () => {
      expect(service(plan(FLEET, { SMTP_URL: 'smtp://mail:25' }), 'master').env.SMTP_URL).toBe('smtp://mail:25');
      expect(service(plan(FLEET), 'master').env).not.toHaveProperty('SMTP_URL');
    });

    it('accepts the list form of environment', () => {
      const p = plan('services:\n  w:\n    image: t\n    command: ["node", "dist/worker/main.js"]\n    environment: ["PAIR=BTC-USD", "LOG_LEVEL"]\n', { LOG_LEVEL: 'debug' });
      expect(service(p, 'w').env).toEqual({ PAIR: 'BTC-USD', LOG_LEVEL: 'debug', COMPOSE_SERVICE: 'w' });
    });
  });

  describe('hostnames and ports', () => {
    it('points compose hostnames at this machine, keeping credentials, paths and unpublished ports', () => {
      const p = plan(FLEET);
      expect(service(p, 'master').env.DATABASE_URL).toBe('postgres://postgres:secret@127.0.0.1:5432/tickwatch');
      expect(service(p, 'master').env.REDIS_URL).toBe('redis://127.0.0.1:6379');
    });

    it('uses the published host port of the target service', () => {
      const p = plan(FLEET, { SIM_PORT: '18090', TICKER_BASE_URL: 'http://sim:8090/v0/ticker' }, ['demo']);
      expect(service(p, 'worker-btc-usd').env.TICKER_BASE_URL).toBe('http://127.0.0.1:18090/v0/ticker');
    });

    it('makes a service listen on its published host port', () => {
      const p = plan(FLEET, { API_PORT: '18080', SIM_PORT: '18090' }, ['demo']);
      expect(service(p, 'master')).toMatchObject({ listenPort: 18080, env: expect.objectContaining({ API_PORT: '18080' }) });
      expect(service(p, 'sim')).toMatchObject({ listenPort: 18090, env: { SIM_PORT: '18090' } });
    });

    it('leaves URLs to other hosts alone', () => {
      const { project } = normaliseCompose(parseComposeYaml(FLEET), () => undefined);
      expect(localiseUrl('https://api.uphold.com/v0/ticker', project.services).value).toBe('https://api.uphold.com/v0/ticker');
      expect(localiseUrl('redis://redis', project.services)).toEqual({ value: 'redis://127.0.0.1', target: { service: 'redis', host: '127.0.0.1', port: 6379 } });
      expect(localiseUrl('not a url', project.services).value).toBe('not a url');
    });

    it('lists the infrastructure it does not start, with the ports the processes will use', () => {
      expect([...plan(FLEET).external].sort((a, b) => a.name.localeCompare(b.name))).toEqual([
        { name: 'postgres', image: 'postgres:16-alpine', host: '127.0.0.1', ports: [5432], usedBy: ['master', 'migrate'] },
        { name: 'redis', image: 'redis:7-alpine', host: '127.0.0.1', ports: [6379], usedBy: ['master', 'worker-btc-usd', 'worker-eth-usd'] },
      ]);
    });

    it('points a service somewhere else when FLEET_SERVICE_ADDRESSES says where it is', () => {
      const vars = (name: string) => ({} as Record<string, string>)[name];
      const { project } = normaliseCompose(parseComposeYaml(FLEET), vars);
      const p = planFleet(project, { profiles: [], vars, addresses: parseServiceAddresses('redis=127.0.0.1:6380, postgres=db.internal') });
      expect(service(p, 'master').env).toMatchObject({ REDIS_URL: 'redis://127.0.0.1:6380', DATABASE_URL: 'postgres://postgres:secret@db.internal:5432/tickwatch' });
      expect(p.external.find((e) => e.name === 'redis')).toMatchObject({ host: '127.0.0.1', ports: [6380] });
      expect(p.external.find((e) => e.name === 'postgres')).toMatchObject({ host: 'db.internal', ports: [5432] });
    });

    it('names a malformed FLEET_SERVICE_ADDRESSES entry', () => {
      expect(() => parseServiceAddresses('redis=127.0.0.1:6380,postgres')).toThrow(/entry "postgres" is invalid: expected service=host\[:port\]/);
      expect(() => parseServiceAddresses('redis=h:70000')).toThrow(/"redis=h:70000" is invalid/);
    });

    it('refuses two local services on one port', () => {
      const yaml = `services:
  a: { image: t, command: ["node", "dist/master/main.js"], environment: { API_PORT: 8080 } }
  b: { image: t, command: ["node", "dist/master/main.js"], environment: { API_PORT: 8080 } }
`;
      expect(() => plan(yaml)).toThrow(/services a and b would both listen on port 8080/);
    });
  });

  describe('profiles', () => {
    it('leaves the simulator out unless the demo profile is active', () => {
      expect(plan(FLEET).services.map((s) => s.name)).not.toContain('sim');
      expect(plan(FLEET, {}, ['demo']).services.map((s) => s.name)).toContain('sim');
    });

    it('says so when a worker points at the simulator but the demo profile is off', () => {
      expect(() => plan(FLEET, { TICKER_BASE_URL: 'http://sim:8090/v0/ticker' })).toThrow(/TICKER_BASE_URL points at service sim, which is not active.*--demo/);
    });
  });

  describe('order', () => {
    it('starts migrate first, then the simulator, the master and the workers; stops the workers first', () => {
      const p = plan(FLEET, {}, ['demo']);
      expect(p.services.map((s) => s.name)).toEqual(['migrate', 'sim', 'master', 'worker-btc-usd', 'worker-eth-usd']);
      expect(service(p, 'master').waitsFor).toEqual(['migrate']);
      expect(stopGroups(p).map((g) => g.map((s) => s.name))).toEqual([['worker-btc-usd', 'worker-eth-usd'], ['master'], ['sim']]);
    });

    it('honours depends_on between local services over the role order', () => {
      const yaml = `services:
  w: { image: t, command: ["node", "dist/worker/main.js"], environment: { PAIR: BTC-USD } }
  m: { image: t, command: ["node", "dist/master/main.js"], depends_on: [w] }
`;
      expect(plan(yaml).services.map((s) => s.name)).toEqual(['w', 'm']);
    });

    it('refuses a dependency that does not exist, or a cycle', () => {
      expect(() => plan('services:\n  w: { image: t, command: ["node", "dist/worker/main.js"], depends_on: [nope] }\n')).toThrow(/w depends on nope, which is not defined/);
      const cycle = `services:
  a: { image: t, command: ["node", "dist/worker/main.js"], environment: { PAIR: BTC-USD }, depends_on: [b] }
  b: { image: t, command: ["node", "dist/worker/main.js"], environment: { PAIR: ETH-USD }, depends_on: [a] }
`;
      expect(() => plan(cycle)).toThrow(/cycle among: a, b/);
    });
  });

  describe('generic workers (a worker service without PAIR)', () => {
    const WITH_POOL = `${FLEET}  worker-pool:
    <<: *worker
    environment:
      <<: *worker-env
    deploy: { replicas: 2 }
`;

    it('is the pool template, not one of the processes started in order; its copies get their WORKER_ID when started', () => {
      const p = plan(WITH_POOL);
      expect(p.services.map((s) => s.name)).not.toContain('worker-pool');
      expect(p.pool).toMatchObject({ name: 'worker-pool', role: 'worker', entry: 'worker/main.ts', restart: { mode: 'unless-stopped' } });
      expect(p.pool?.env).toEqual({ REDIS_URL: 'redis://127.0.0.1:6379', TICKER_BASE_URL: 'https://api.uphold.com/v0/ticker', FETCH_INTERVAL_MS: '5000' });
      expect(p.external.find((e) => e.name === 'redis')?.usedBy).toContain('worker-pool');
      expect(plan(FLEET).pool).toBeUndefined();
    });

    it('keeps a COMPOSE_SERVICE the compose file sets, and gives none to the pool', () => {
      const yaml = 'services:\n  w:\n    image: t\n    command: ["node", "dist/worker/main.js"]\n    environment: { PAIR: BTC-USD, COMPOSE_SERVICE: pairs }\n';
      expect(service(plan(yaml), 'w').env.COMPOSE_SERVICE).toBe('pairs');
      expect(plan(WITH_POOL).pool?.env).not.toHaveProperty('COMPOSE_SERVICE');
      expect(service(plan(FLEET), 'master').env).not.toHaveProperty('COMPOSE_SERVICE');
    });

    it('refuses two pools, naming both', () => {
      const two = `${WITH_POOL}  worker-pool-2:
    <<: *worker
`;
      expect(() => plan(two)).toThrow(/^services worker-pool and worker-pool-2 are both generic worker pools \(workers without PAIR\); declare one$/);
    });
  });

  describe('restart policy', () => {
    it('reads the compose restart policy and grace period of each service', () => {
      const p = plan(FLEET);
      expect(service(p, 'worker-btc-usd').restart).toEqual({ mode: 'unless-stopped' });
      expect(service(p, 'worker-eth-usd').restart).toEqual({ mode: 'on-failure', maxRetries: 3 });
      expect(service(p, 'migrate').restart).toEqual({ mode: 'no' });
      expect(service(p, 'master').stopGracePeriodMs).toBe(20_000);
      expect(service(p, 'worker-btc-usd').stopGracePeriodMs).toBe(10_000);
    });

    it('restarts a failed process with doubling backoff, capped', () => {
      const policy = parseRestartPolicy('unless-stopped');
      const delays = [0, 1, 2, 3].map((attempts) => decideRestart(policy, { code: 1, signal: null, ranForMs: 100, attempts }, { ...DEFAULT_RESTART_BOUNDS, maxAttempts: 10, maxDelayMs: 5000 }));
      expect(delays.map((d) => (d.restart ? d.delayMs : -1))).toEqual([1000, 2000, 4000, 5000]);
    });

    it('gives up after the bound of consecutive quick failures, and starts counting again after a stable run', () => {
      const policy = parseRestartPolicy('always');
      expect(decideRestart(policy, { code: 1, signal: null, ranForMs: 100, attempts: 5 })).toEqual({ restart: false, reason: 'gave up after 5 consecutive restarts' });
      expect(decideRestart(policy, { code: 1, signal: null, ranForMs: 60_000, attempts: 5 })).toMatchObject({ restart: true, attempt: 1, delayMs: 1000 });
    });

    it('follows on-failure[:max] and no', () => {
      expect(decideRestart(parseRestartPolicy('on-failure'), { code: 0, signal: null, ranForMs: 10, attempts: 0 }).restart).toBe(false);
      expect(decideRestart(parseRestartPolicy('on-failure:2'), { code: null, signal: 'SIGKILL', ranForMs: 10, attempts: 1 })).toMatchObject({ restart: true, attempt: 2, of: 2 });
      expect(decideRestart(parseRestartPolicy('on-failure:2'), { code: 1, signal: null, ranForMs: 10, attempts: 2 }).restart).toBe(false);
      expect(decideRestart(parseRestartPolicy('no'), { code: 1, signal: null, ranForMs: 10, attempts: 0 })).toEqual({ restart: false, reason: 'restart policy is "no"' });
      expect(() => parseRestartPolicy('sometimes')).toThrow(/not one of no, always, unless-stopped, on-failure/);
      expect(() => parseRestartPolicy('always:3')).toThrow();
    });
  });

  describe('bad compose files', () => {
    it('names the field that is wrong', () => {
      expect(() => plan('services:\n  w:\n    image: t\n    ports: ["9000-9005:9000-9005"]\n')).toThrow(ComposeFileError);
      expect(() => plan('services:\n  w:\n    image: t\n    ports: ["9000-9005:9000-9005"]\n')).toThrow(/services\.w\.ports\.0: port range "9000-9005:9000-9005" is not supported/);
      expect(() => plan('services:\n  w:\n    image: t\n    ports: ["80:80:80:80"]\n')).toThrow(/services\.w\.ports\.0: "80:80:80:80" is not a port mapping/);
      expect(() => plan('services:\n  w:\n    image: t\n    restart: sometimes\n')).toThrow(/services\.w\.restart/);
      expect(() => plan('services:\n  w:\n    image: t\n    stop_grace_period: soon\n')).toThrow(/stop_grace_period/);
    });

    it('reports YAML errors and duplicate keys with their place', () => {
      expect(() => parseComposeYaml('services:\n  a: [\n')).toThrow(ComposeFileError);
      expect(() => parseComposeYaml('services:\n  a: { image: x }\n  a: { image: y }\n')).toThrow(/unique/i);
    });

    it('parses compose durations', () => {
      expect(parseDuration('1m30s')).toBe(90_000);
      expect(parseDuration('500ms')).toBe(500);
      expect(parseDuration('soon')).toBeNull();
    });
  });
});
