import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { DockerfileParser, type Copy, type Instruction } from 'dockerfile-ast';
import YAML from 'yaml';
import { PairSchema } from '../shared/contract/alert';
import { loadVariables, type VariableSpecs } from '../shared/platform/config';
import { DATABASE_VARIABLES, loadMasterConfig, MASTER_VARIABLES } from '../shared/config/master-config';
import { DEFAULT_TICKER_BASE_URL, loadWorkerConfig, loadWorkerStartup, WORKER_VARIABLES } from '../shared/config/worker-config';
import { loadSimConfig, SIM_VARIABLES } from '../sim/config';
import { normaliseCompose, parseComposeYaml, readEnvFile, type ComposeProject } from './compose-file';
import { interpolateTree } from './interpolate';
import { DEMO_ENV_FILE, loadFleetPlan } from './load-plan';
import { HEALTHCHECK_ENTRIES, localCommandFor, localHealthcheckEntry, ROLES, type Role } from './roles';

/**
 * Docker cannot run on this machine, so these tests are what stands between a typo in the compose files or the
 * Dockerfile and an operator's broken `docker compose up`: the compose specification's JSON schema (as shipped by the
 * dclint package), then what the files mean to Tickwatch.
 */
const ROOT = path.join(__dirname, '..');
const COMPOSE = path.join(ROOT, 'docker-compose.yml');
const COMPOSE_TESTS = path.join(ROOT, 'docker-compose-tests.yml');
const DEMO_ENV = readEnvFile(path.join(ROOT, DEMO_ENV_FILE));

/** The variables each role reads, from the services' own config declarations. */
const VARIABLES_BY_ROLE: Record<Role, VariableSpecs> = {
  worker: WORKER_VARIABLES,
  master: MASTER_VARIABLES,
  migrate: DATABASE_VARIABLES,
  sim: SIM_VARIABLES,
};

/** Parsed (merge keys resolved) and interpolated with the given variables, as `docker compose config` would show it. */
function resolved(file: string, vars: Record<string, string> = {}): Record<string, unknown> {
  return interpolateTree(parseComposeYaml(readFileSync(file, 'utf8')), (n) => vars[n]).value as Record<string, unknown>;
}

function project(vars: Record<string, string> = {}): ComposeProject {
  return normaliseCompose(parseComposeYaml(readFileSync(COMPOSE, 'utf8')), (n) => vars[n]).project;
}

function composeSchemaValidator() {
  const schemaPath = path.join(path.dirname(require.resolve('dclint/package.json')), 'schemas', 'compose.schema.json');
  const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Record<string, unknown>;
  // The schema names draft-07 by its https URL, which Ajv knows as http; the content is plain draft-07.
  delete schema.$schema;
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  return ajv.compile(schema);
}

const roleOf = (command: readonly string[] | undefined) => localCommandFor(command)?.role.role;

describe('the compose files', () => {
  describe('against the compose specification schema', () => {
    const validate = composeSchemaValidator();
    const errors = () => (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`);

    it.each([
      ['docker-compose.yml', COMPOSE, {}],
      ['docker-compose.yml with fleet/demo.env', COMPOSE, DEMO_ENV],
      ['docker-compose-tests.yml', COMPOSE_TESTS, {}],
    ])('%s is valid', (_name, file, vars) => {
      const ok = validate(resolved(file, vars));
      expect(errors()).toEqual([]);
      expect(ok).toBe(true);
    });

    it('rejects what docker compose would reject (the check is strict)', () => {
      const doc = resolved(COMPOSE) as { services: Record<string, Record<string, unknown>> };
      const broken = structuredClone(doc);
      (broken.services.master as Record<string, unknown>).enviroment = { PAIR: 'BTC-USD' };
      expect(validate(broken)).toBe(false);
      const badCondition = structuredClone(doc);
      (badCondition.services.master as { depends_on: Record<string, { condition: string }> }).depends_on.migrate!.condition = 'completed';
      expect(validate(badCondition)).toBe(false);
    });
  });

  describe('docker-compose.yml means a working fleet', () => {
    const services = project().services;
    const byRole = (role: Role) => Object.values(services).filter((s) => roleOf(s.command) === role);
    const allWorkers = byRole('worker');
    // Pinned workers watch the PAIR they are given; the one worker service without PAIR is the generic pool.
    const workers = allWorkers.filter((w) => w.environment.PAIR !== undefined);
    const pools = allWorkers.filter((w) => w.environment.PAIR === undefined);

    it('declares at least three pairs, each worker with a valid PAIR and a full valid worker configuration', () => {
      expect(workers.length).toBeGreaterThanOrEqual(3);
      const pairs = workers.map((w) => w.environment.PAIR);
      for (const w of workers) {
        expect(PairSchema.safeParse(w.environment.PAIR).success).toBe(true);
        expect(() => loadWorkerConfig(w.environment as Record<string, string>)).not.toThrow();
      }
      expect(new Set(pairs).size).toBe(pairs.length);
    });

    it('names only variables the services declare in their config schemas', () => {
      const unknown: string[] = [];
      for (const s of Object.values(services)) {
        const role = roleOf(s.command);
        if (!role) continue;
        for (const name of Object.keys(s.environment)) if (!(name in VARIABLES_BY_ROLE[role])) unknown.push(`${s.name}: ${name}`);
      }
      expect(unknown).toEqual([]);
    });

    it('gives the master, the migration and the simulator configurations they accept', () => {
      for (const m of byRole('master')) expect(() => loadMasterConfig(m.environment as Record<string, string>)).not.toThrow();
      for (const m of byRole('migrate')) expect(() => loadVariables(DATABASE_VARIABLES, m.environment as Record<string, string>)).not.toThrow();
      for (const s of byRole('sim')) expect(() => loadSimConfig(s.environment as Record<string, string>)).not.toThrow();
    });

    it('has a master that consumes every worker pair', () => {
      const [master] = byRole('master');
      const pairs = loadMasterConfig(master!.environment as Record<string, string>).pairs;
      if (pairs !== '*') for (const w of workers) expect(pairs).toContain(w.environment.PAIR);
    });

    it('keeps each worker block small: adding a pair is one short block', () => {
      const doc = YAML.parseDocument(readFileSync(COMPOSE, 'utf8'));
      const text = readFileSync(COMPOSE, 'utf8');
      const serviceNodes = (doc.get('services') as YAML.YAMLMap<YAML.Scalar<string>, YAML.Node>).items;
      for (const w of workers) {
        const node = serviceNodes.find((item) => item.key.value === w.name)?.value;
        const [start, , end] = node?.range ?? [0, 0, 0];
        const lines = text.slice(start, end).trim().split('\n').length;
        expect({ worker: w.name, lines, small: lines <= 6 }).toEqual({ worker: w.name, lines, small: true });
      }
    });

    it('names each pinned worker its own compose service (COMPOSE_SERVICE), so the bot shows which service owns it', () => {
      for (const w of workers) {
        expect({ worker: w.name, COMPOSE_SERVICE: w.environment.COMPOSE_SERVICE }).toEqual({ worker: w.name, COMPOSE_SERVICE: w.name });
        expect(loadWorkerStartup(w.environment as Record<string, string>).base.service).toBe(w.name);
      }
    });

    describe('the worker-pool service (generic workers)', () => {
      const raw = () => resolved(COMPOSE).services as Record<string, { deploy?: { replicas?: unknown }; container_name?: unknown }>;

      it('is the one worker service without PAIR, and the worker accepts its environment as a generic worker', () => {
        expect(pools.map((p) => p.name)).toEqual(['worker-pool']);
        const startup = loadWorkerStartup(pools[0]!.environment as Record<string, string>);
        expect(startup.pinned).toBeNull();
        expect(startup.base.service).toBeUndefined();
        expect(startup.base.redisUrl).toBe('redis://redis:6379');
      });

      it('gives no bot settings: a generic worker takes them from the runtime bot it claims', () => {
        for (const name of ['FETCH_INTERVAL_MS', 'OSCILLATION_PERCENT', 'PRICE_FIELD', 'REFERENCE_MODE', 'BOT_ID', 'WORKER_ID', 'COMPOSE_SERVICE']) {
          expect({ variable: name, set: name in pools[0]!.environment }).toEqual({ variable: name, set: false });
        }
      });

      it('runs WORKER_POOL_REPLICAS replicas (default 2), with no fixed container name, published port or WORKER_ID that replicas would share', () => {
        expect(raw()['worker-pool']?.deploy?.replicas).toBe('2');
        const four = resolved(COMPOSE, { WORKER_POOL_REPLICAS: '4' }).services as Record<string, { deploy?: { replicas?: unknown } }>;
        expect(four['worker-pool']?.deploy?.replicas).toBe('4');
        expect(raw()['worker-pool']?.container_name).toBeUndefined();
        expect(pools[0]!.ports).toEqual([]);
      });

      it('is checked and restarted like every worker', () => {
        expect(localHealthcheckEntry(pools[0]!.healthcheck?.test)).toBe('worker/health.ts');
        expect(pools[0]!.restart).toBe('unless-stopped');
        expect(pools[0]!.dependsOn.redis?.condition).toBe('service_healthy');
      });
    });

    it('points the workers at the real Uphold ticker by default', () => {
      for (const w of workers) expect(w.environment.TICKER_BASE_URL).toBe(DEFAULT_TICKER_BASE_URL);
    });

    it('in the demo profile, points every worker at the simulator, which serves every worker pair', () => {
      const demo = project(DEMO_ENV);
      expect(DEMO_ENV.COMPOSE_PROFILES?.split(',')).toContain('demo');
      const sim = Object.values(demo.services).find((s) => roleOf(s.command) === 'sim');
      expect(sim?.profiles).toEqual(['demo']);
      const simPort = Number(sim!.environment.SIM_PORT);
      const served = Object.keys(loadSimConfig(sim!.environment as Record<string, string>).pairs);
      for (const w of Object.values(demo.services).filter((s) => roleOf(s.command) === 'worker')) {
        const url = new URL(w.environment.TICKER_BASE_URL as string);
        expect({ worker: w.name, host: url.hostname, port: Number(url.port), path: url.pathname }).toEqual({ worker: w.name, host: sim!.name, port: simPort, path: '/v0/ticker' });
        if (w.environment.PAIR !== undefined) expect(served).toContain(w.environment.PAIR);
        expect(w.dependsOn[sim!.name]).toEqual({ condition: 'service_healthy', required: false });
      }
    });

    it('publishes no host port twice, in either profile', () => {
      for (const vars of [{}, DEMO_ENV]) {
        const published = Object.values(project(vars).services).flatMap((s) => s.ports.map((p) => p.published).filter((p) => p !== undefined));
        expect(new Set(published).size).toBe(published.length);
      }
    });

    it('publishes the master API port, and the master listens where it is published from', () => {
      const [master] = byRole('master');
      expect(master!.ports).toEqual([{ published: 8080, target: Number(master!.environment.API_PORT) }]);
    });

    it('depends only on services that exist; a dependency on a profile-only service is optional', () => {
      for (const s of Object.values(services)) {
        for (const [dep, { required }] of Object.entries(s.dependsOn)) {
          expect({ service: s.name, dependsOn: dep, exists: services[dep] !== undefined }).toEqual({ service: s.name, dependsOn: dep, exists: true });
          if (services[dep]!.profiles.length > 0 && s.profiles.length === 0) expect({ service: s.name, dep, required }).toEqual({ service: s.name, dep, required: false });
        }
      }
    });

    it('starts the master after a successful migration and a healthy Redis', () => {
      const [master] = byRole('master');
      const [migrate] = byRole('migrate');
      expect(master!.dependsOn[migrate!.name]).toEqual({ condition: 'service_completed_successfully', required: true });
      expect(master!.dependsOn.redis?.condition).toBe('service_healthy');
      expect(migrate!.dependsOn.postgres?.condition).toBe('service_healthy');
    });

    it('gives every service a restart policy and a health check (one-shot services explicitly none)', () => {
      const rawServices = resolved(COMPOSE, DEMO_ENV).services as Record<string, Record<string, unknown>>;
      for (const s of Object.values(project(DEMO_ENV).services)) {
        const raw = rawServices[s.name]!;
        expect({ service: s.name, restart: typeof raw.restart }).toEqual({ service: s.name, restart: 'string' });
        const oneShot = localCommandFor(s.command)?.role.oneShot === true;
        if (oneShot) {
          expect({ service: s.name, healthcheck: s.healthcheck, restart: s.restart }).toEqual({ service: s.name, healthcheck: { disable: true }, restart: 'no' });
        } else {
          expect({ service: s.name, test: Array.isArray(s.healthcheck?.test) }).toEqual({ service: s.name, test: true });
          expect(s.restart).toBe('unless-stopped');
        }
      }
    });

    it('checks worker health with the compiled `npm run worker:health`, and the master on /ready', () => {
      for (const w of allWorkers) expect(localHealthcheckEntry(w.healthcheck?.test)).toBe('worker/health.ts');
      const [master] = byRole('master');
      const test = master!.healthcheck?.test as string[];
      expect(localHealthcheckEntry(test)).toBe('fleet/http-probe.ts');
      expect(test[test.length - 1]).toBe(`http://127.0.0.1:${master!.environment.API_PORT}/ready`);
    });

    it('keeps Postgres and Redis data in named volumes, so it survives down and up', () => {
      const doc = resolved(COMPOSE) as { services: Record<string, { volumes?: string[] }>; volumes: Record<string, unknown> };
      for (const [service, mount] of [['postgres', '/var/lib/postgresql/data'], ['redis', '/data']] as const) {
        const volume = doc.services[service]?.volumes?.find((v) => v.endsWith(`:${mount}`))?.split(':')[0];
        expect(volume && volume in doc.volumes).toBe(true);
      }
      expect(services.postgres?.healthcheck?.test).toEqual(expect.arrayContaining([expect.stringContaining('pg_isready')]));
    });

    it('needs no secret to start: every secret has an empty default', () => {
      expect(() => normaliseCompose(parseComposeYaml(readFileSync(COMPOSE, 'utf8')), () => undefined)).not.toThrow();
      const { unsetVariables } = normaliseCompose(parseComposeYaml(readFileSync(COMPOSE, 'utf8')), () => undefined);
      expect(unsetVariables).toEqual([]);
    });

    it('is one the local runner turns into a plan, with and without the demo', () => {
      for (const demo of [false, true]) {
        const { plan } = loadFleetPlan({ root: ROOT, demo, env: {} });
        expect(plan.services.map((s) => s.role)).toEqual(['migrate', ...(demo ? ['sim'] : []), 'master', ...workers.map(() => 'worker')]);
        expect(plan.pool?.name).toBe('worker-pool');
        expect(plan.pool?.env.PAIR).toBeUndefined();
      }
    });
  });

  describe('docker-compose-tests.yml runs the suite against real services', () => {
    const doc = resolved(COMPOSE_TESTS) as { services: Record<string, Record<string, unknown>> };
    const tests = doc.services.tests as { build: { target: string }; command: string[]; environment: Record<string, string>; depends_on: Record<string, { condition: string }> };

    it('runs npm test from the Dockerfile test stage', () => {
      expect(tests.command).toEqual(['npm', 'test']);
      expect(dockerfileStages().map((s) => s.name)).toContain(tests.build.target);
    });

    it('points the test helpers at the redis and postgres services, both healthy first', () => {
      expect(new URL(tests.environment.TEST_PG_URL!).hostname).toBe('postgres');
      expect(new URL(tests.environment.TEST_REDIS_URL!).hostname).toBe('redis');
      for (const dep of ['redis', 'postgres']) {
        expect(doc.services[dep]).toBeDefined();
        expect(tests.depends_on[dep]).toEqual({ condition: 'service_healthy' });
        expect(doc.services[dep]!.healthcheck).toBeDefined();
      }
    });
  });
});

interface Stage {
  readonly name: string | undefined;
  readonly from: string;
  readonly instructions: Instruction[];
}

function dockerfileStages(): Stage[] {
  const dockerfile = DockerfileParser.parse(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
  const froms = dockerfile.getFROMs();
  return froms.map((from, i) => {
    const start = from.getRange().start.line;
    const end = froms[i + 1]?.getRange().start.line ?? Number.POSITIVE_INFINITY;
    return {
      name: from.getBuildStage() ?? undefined,
      from: from.getImageName() ?? '',
      instructions: dockerfile.getInstructions().filter((ins) => ins.getRange().start.line > start && ins.getRange().start.line < end),
    };
  });
}

describe('the Dockerfile', () => {
  const stages = dockerfileStages();
  const stage = (name: string) => stages.find((s) => s.name === name) as Stage;
  const keyword = (s: Stage, k: string) => s.instructions.filter((i) => i.getKeyword() === k);
  const runtime = stages[stages.length - 1]!;
  const compose = resolved(COMPOSE) as { services: Record<string, { build?: { target?: string } }> };

  it('is multi-stage, and the default (last) stage is the runtime the compose file builds', () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    expect(runtime.name).toBe('runtime');
    const targets = new Set(Object.values(compose.services).map((s) => s.build?.target).filter(Boolean));
    expect([...targets]).toEqual(['runtime']);
  });

  it('compiles TypeScript in a build stage and ships only dist/ and production dependencies', () => {
    expect(keyword(stage('build'), 'RUN').some((r) => /npm run build/.test(r.getTextContent()))).toBe(true);
    expect(keyword(stage('prod-deps'), 'RUN').some((r) => /npm ci\b.*--omit=dev/.test(r.getTextContent()))).toBe(true);
    const copies = keyword(runtime, 'COPY') as Copy[];
    const fromStage = (src: string) => copies.find((c) => c.getArgumentsContent()?.startsWith(src))?.getFromFlag()?.getValue();
    expect(fromStage('/app/node_modules')).toBe('prod-deps');
    expect(fromStage('/app/dist')).toBe('build');
    expect(copies.every((c) => c.getFromFlag() !== null || /^package\.json\b/.test(c.getArgumentsContent() ?? ''))).toBe(true);
  });

  it('runs as a non-root user', () => {
    const users = keyword(runtime, 'USER').map((u) => (u.getArgumentsContent() ?? '').split(':')[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users[users.length - 1]);
  });

  it('has an exec-form default command that is one of the Tickwatch roles', () => {
    const cmd = JSON.parse(keyword(runtime, 'CMD').at(-1)?.getArgumentsContent() ?? 'null') as string[];
    expect(localCommandFor(cmd)).toBeDefined();
  });

  it('keeps secrets and local build output out of the build context', () => {
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    expect(ignored).toEqual(expect.arrayContaining(['.env', 'node_modules', 'dist', '.git']));
  });

  it('compiles every entry point the compose file and health checks run from an existing source file', () => {
    for (const e of [...ROLES, ...HEALTHCHECK_ENTRIES]) {
      expect({ entry: e.imageEntry, source: e.sourceEntry, exists: existsSync(path.join(ROOT, e.sourceEntry)) }).toEqual({ entry: e.imageEntry, source: e.sourceEntry, exists: true });
      expect(e.imageEntry).toBe(`dist/${e.sourceEntry.replace(/\.ts$/, '.js')}`);
    }
    const scripts = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    for (const e of [...ROLES, ...HEALTHCHECK_ENTRIES]) if (e.npmScript) expect(scripts[e.npmScript]).toBe(`node --import tsx ${e.sourceEntry}`);
  });
});
