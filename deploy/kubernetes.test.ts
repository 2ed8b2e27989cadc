import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ComposeFileError, normaliseCompose, parseComposeYaml, readComposeFile, type ComposeProject } from '../fleet/compose-file';
import { kustomize, strictProblems, type KubeObject } from '../test/helpers/kubernetes';
import { REPO_ROOT } from '../test/helpers/process';
import { diffRender, K8S_DIR, renderComposeFile, writeRender } from './k8s-files';
import { isSecretVariable, ManifestError, MASTER_REPLICAS, renderKubernetes, SECRET_NAME } from './kubernetes';

/**
 * deploy/k8s/ is docker-compose.yml rendered for Kubernetes. These tests render it with kubectl (offline), hold every
 * object to the API's schemas with unknown fields refused, and compare it with the compose file it came from.
 */

const compose: ComposeProject = normaliseCompose(readComposeFile(path.join(REPO_ROOT, 'docker-compose.yml')), () => undefined).project;
const composeServices = Object.values(compose.services).filter((s) => s.profiles.length === 0);
const pinnedWorkers = composeServices.filter((s) => s.command?.includes('dist/worker/main.js') && (s.environment.PAIR ?? '') !== '');
const pool = composeServices.find((s) => s.command?.includes('dist/worker/main.js') && (s.environment.PAIR ?? '') === '');

interface PodOwner {
  readonly object: KubeObject;
  readonly pod: { metadata?: { labels?: Record<string, string> }; spec: PodSpecLike };
}
interface ContainerLike {
  name: string;
  env?: { name: string; value?: string; valueFrom?: Record<string, { name?: string; key?: string; fieldPath?: string }> }[];
  securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[] } };
  livenessProbe?: { httpGet?: { path: string } };
  readinessProbe?: { httpGet?: { path: string } };
  startupProbe?: unknown;
  ports?: { name?: string }[];
  volumeMounts?: { name: string }[];
}
interface PodSpecLike {
  securityContext?: Record<string, unknown>;
  containers: ContainerLike[];
  initContainers?: ContainerLike[];
  volumes?: { name: string }[];
}

function podOwners(objects: readonly KubeObject[]): PodOwner[] {
  return objects
    .filter((o) => ['Deployment', 'StatefulSet', 'Job'].includes(o.kind))
    .map((o) => ({ object: o, pod: (o.spec as { template: PodOwner['pod'] }).template }));
}

const byName = (objects: readonly KubeObject[], kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);

describe('what the render reads from compose beyond the local runner', () => {
  const parse = (service: string) => normaliseCompose(parseComposeYaml(`services:\n  w:\n${service}`), () => undefined).project.services.w!;

  it('takes the health check timing in milliseconds and deploy.replicas', () => {
    const w = parse('    command: ["node", "dist/worker/main.js"]\n    healthcheck: { test: ["CMD", "true"], interval: 1m30s, timeout: 5s, retries: 2, start_period: 500ms }\n    deploy: { replicas: "3" }\n');
    expect(w.healthcheck).toEqual({ test: ['CMD', 'true'], intervalMs: 90_000, timeoutMs: 5000, retries: 2, startPeriodMs: 500 });
    expect(w.replicas).toBe(3);
    expect(parse('    image: redis\n').replicas).toBeUndefined();
  });

  it('refuses a health check interval that is not a duration, naming the field', () => {
    expect(() => parse('    healthcheck: { interval: soon }\n')).toThrow(ComposeFileError);
    expect(() => parse('    healthcheck: { interval: soon }\n')).toThrow(/services\.w\.healthcheck\.interval: a duration such as 10s/);
  });
});

describe('the Kubernetes manifests (deploy/k8s)', () => {
  let base: KubeObject[];
  let dev: KubeObject[];
  beforeAll(() => {
    base = kustomize(K8S_DIR);
    dev = kustomize(path.join(K8S_DIR, 'overlays', 'dev'));
  });

  describe('rendering', () => {
    it('renders the base and the dev overlay with kubectl kustomize', () => {
      expect(base.map((o) => o.kind)).toEqual(expect.arrayContaining(['ConfigMap', 'Deployment', 'Job', 'Service', 'PodDisruptionBudget', 'NetworkPolicy']));
      expect(dev.map((o) => o.kind)).toEqual(expect.arrayContaining(['Namespace', 'Secret', 'StatefulSet']));
      expect(dev.filter((o) => o.kind !== 'Namespace').every((o) => o.metadata.namespace === 'tickwatch-dev')).toBe(true);
    });

    it('is what npm run k8s renders from docker-compose.yml now (edit compose, then run npm run k8s)', () => {
      expect(diffRender(renderComposeFile(REPO_ROOT), path.join(REPO_ROOT, K8S_DIR))).toEqual([]);
    });

    it('renders the compose file\'s own defaults, whatever the shell or .env say', () => {
      const before = renderComposeFile(REPO_ROOT);
      process.env.TICKER_RATE_GROUP = 'from-the-shell';
      try {
        expect(renderComposeFile(REPO_ROOT)).toEqual(before);
      } finally {
        delete process.env.TICKER_RATE_GROUP;
      }
    });

    it('notices when compose declares a worker the manifests do not have', () => {
      const worker = pinnedWorkers[0]!;
      const added: ComposeProject = { services: { ...compose.services, 'worker-sol-usd': { ...worker, name: 'worker-sol-usd', environment: { ...worker.environment, PAIR: 'SOL-USD', COMPOSE_SERVICE: 'worker-sol-usd' } } } };
      expect(diffRender(renderKubernetes(added), path.join(REPO_ROOT, K8S_DIR))).toEqual(['changed: base/workers.yaml']);
    });

    it('writes exactly the rendered files, removing stale ones', () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'tickwatch-k8s-'));
      try {
        const render = renderComposeFile(REPO_ROOT);
        writeRender({ files: { ...render.files, 'base/old.yaml': 'stale' } }, dir);
        expect(diffRender(render, dir)).toEqual(['not generated: base/old.yaml']);
        writeRender(render, dir);
        expect(diffRender(render, dir)).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('refuses a service name Kubernetes cannot take, naming it', () => {
      const worker = pinnedWorkers[0]!;
      const bad: ComposeProject = { services: { ...compose.services, 'Worker_ÉTH': { ...worker, name: 'Worker_ÉTH' } } };
      expect(() => renderKubernetes(bad)).toThrow(ManifestError);
      expect(() => renderKubernetes(bad)).toThrow(/service Worker_ÉTH: "tickwatch-worker-éth" is not a Kubernetes name/);
    });
  });

  describe('against the Kubernetes API schemas, unknown fields refused', () => {
    it('validates every object of the base and the dev overlay', () => {
      expect(strictProblems([...base, ...dev])).toEqual([]);
    });

    const deployment = () => structuredClone(base.find((o) => o.kind === 'Deployment')!) as KubeObject & { spec: Record<string, unknown> & { template: { spec: PodSpecLike } } };

    it('refuses a misspelt top-level field (replicass)', () => {
      const d = deployment();
      d.spec.replicass = 2;
      expect(strictProblems([d])).toEqual([expect.stringMatching(/'"?replicass"?' does not exist in type 'DeploymentSpec'/)]);
    });

    it('refuses a misspelt field deep inside a pod (a probe handler path)', () => {
      const d = deployment();
      const container = d.spec.template.spec.containers[0] as unknown as Record<string, unknown>;
      container.readinessProbe = { httpGet: { paht: '/ready', port: 8080 } };
      expect(strictProblems([d]).join('\n')).toMatch(/'"?paht"?' does not exist in type 'HTTPGetAction'/);
    });

    it('refuses a value of the wrong format (a port that is not a number)', () => {
      const d = deployment();
      (d.spec.template.spec.containers[0] as unknown as Record<string, unknown>).ports = [{ containerPort: 'eighty' }];
      expect(strictProblems([d]).join('\n')).toMatch(/containerPort must be integer/);
    });
  });

  describe('names', () => {
    const label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
    const subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
    it('are DNS-1123: object names, Service names (labels, starting with a letter), containers, ports and volumes', () => {
      const bad: string[] = [];
      for (const o of [...base, ...dev]) {
        const name = o.metadata.name;
        if (!subdomain.test(name) || name.length > 253) bad.push(`${o.kind} ${name}`);
        if ((o.kind === 'Service' || o.kind === 'Namespace') && (!/^[a-z]/.test(name) || !label.test(name) || name.length > 63)) bad.push(`${o.kind} ${name} (DNS-1035 label)`);
      }
      for (const { object, pod } of podOwners([...base, ...dev])) {
        for (const c of pod.spec.containers) {
          if (!label.test(c.name) || c.name.length > 63) bad.push(`${object.metadata.name} container ${c.name}`);
          for (const p of c.ports ?? []) if (p.name !== undefined && (!/^[a-z]/.test(p.name) || !label.test(p.name) || p.name.length > 15)) bad.push(`${object.metadata.name} port ${p.name}`);
        }
        for (const v of pod.spec.volumes ?? []) if (!label.test(v.name)) bad.push(`${object.metadata.name} volume ${v.name}`);
      }
      expect(bad).toEqual([]);
    });
  });

  describe('against docker-compose.yml', () => {
    it('runs one Deployment per pinned worker, watching the pairs compose declares', () => {
      const pairs = (objects: readonly KubeObject[]) =>
        podOwners(objects)
          .flatMap(({ pod }) => pod.spec.containers.flatMap((c) => c.env ?? []))
          .filter((e) => e.name === 'PAIR')
          .map((e) => e.value)
          .sort();
      const composePairs = pinnedWorkers.map((w) => w.environment.PAIR).sort();
      expect(composePairs.length).toBeGreaterThan(0);
      expect(pairs(base)).toEqual(composePairs);
      expect(pairs(dev)).toEqual(composePairs);
    });

    it('gives each container the environment compose gives its service: credentials from the Secret, shared values from the ConfigMap', () => {
      const configMap = base.find((o) => o.kind === 'ConfigMap')! as KubeObject & { data: Record<string, string> };
      for (const service of composeServices.filter((s) => s.command?.[0] === 'node')) {
        const owner = podOwners(base).find((p) => p.pod.metadata?.labels?.['tickwatch/compose-service'] === service.name);
        expect({ service: service.name, rendered: owner !== undefined }).toEqual({ service: service.name, rendered: true });
        const env = owner!.pod.spec.containers[0]!.env ?? [];
        // Beyond compose: each pod's own name as its stream consumer or worker id, and no anonymous API on a Service.
        const added = env.filter((e) => !(e.name in service.environment)).map((e) => `${e.name}<-${e.valueFrom?.fieldRef?.fieldPath}`);
        expect(added).toEqual(service.name === 'master' ? ['CONSUMER_NAME<-metadata.name'] : service === pool ? ['WORKER_ID<-metadata.name'] : []);
        for (const [name, value] of Object.entries(service.environment)) {
          const e = env.find((x) => x.name === name)!;
          const resolved = e.value ?? (e.valueFrom?.configMapKeyRef ? configMap.data[e.valueFrom.configMapKeyRef.key!] : undefined);
          if (isSecretVariable(name, value as string)) expect({ name, from: e.valueFrom?.secretKeyRef?.name, key: e.valueFrom?.secretKeyRef?.key }).toEqual({ name, from: SECRET_NAME, key: name });
          else if (name === 'API_ALLOW_ANONYMOUS') expect(resolved).toBe('false');
          else expect({ service: service.name, name, value: resolved }).toEqual({ service: service.name, name, value });
        }
      }
    });

    it('keeps every credential out of the base: DATABASE_URL, REDIS_URL, SMTP, webhook and API tokens are Secret references', () => {
      const text = JSON.stringify(base);
      for (const name of ['DATABASE_URL', 'REDIS_URL', 'SMTP_URL', 'WEBHOOK_URL', 'WEBHOOK_SECRET', 'API_TOKEN', 'API_TOKENS']) expect(text).toContain(`"key":"${name}"`);
      expect(text).not.toMatch(/postgres:\/\/[^"]*@|redis:\/\//);
      expect(base.some((o) => o.kind === 'Secret')).toBe(false);
    });

    it('runs the migrations as a Job and sizes the generic pool as compose does', () => {
      const job = base.find((o) => o.kind === 'Job')! as KubeObject & { spec: { template: { spec: PodSpecLike & { restartPolicy: string } } } };
      expect((job.spec.template.spec.containers[0] as unknown as { args: string[] }).args).toEqual(compose.services.migrate!.command);
      expect(job.spec.template.spec.restartPolicy).toBe('Never');
      const poolDeployment = byName(base, 'Deployment', 'tickwatch-worker-pool') as KubeObject & { spec: { replicas: number } };
      expect(pool?.replicas).toBe(2);
      expect(poolDeployment.spec.replicas).toBe(pool!.replicas);
    });

    it('probes with the compose health checks: the worker health command, the master /ready (and /health for liveness)', () => {
      for (const { object, pod } of podOwners(base).filter((p) => p.object.kind === 'Deployment')) {
        const c = pod.spec.containers[0]!;
        expect({ name: object.metadata.name, live: c.livenessProbe !== undefined, ready: c.readinessProbe !== undefined, startup: c.startupProbe !== undefined }).toEqual({ name: object.metadata.name, live: true, ready: true, startup: true });
        if (object.metadata.name === 'tickwatch-master') {
          expect(c.readinessProbe?.httpGet?.path).toBe('/ready');
          expect(c.livenessProbe?.httpGet?.path).toBe('/health');
        } else {
          expect((c.livenessProbe as { exec: { command: string[] } }).exec.command).toEqual(['node', 'dist/worker/health.js']);
        }
        // Compose's timing: interval, timeout and retries as they are; start_period as extra startup attempts.
        const hc = composeServices.find((s) => s.name === pod.metadata?.labels?.['tickwatch/compose-service'])!.healthcheck!;
        const timing = (p: unknown) => {
          const { periodSeconds, timeoutSeconds, failureThreshold } = p as Record<string, number>;
          return { periodSeconds, timeoutSeconds, failureThreshold };
        };
        const expected = { periodSeconds: hc.intervalMs! / 1000, timeoutSeconds: hc.timeoutMs! / 1000, failureThreshold: hc.retries! };
        expect(timing(c.livenessProbe)).toEqual(expected);
        expect(timing(c.readinessProbe)).toEqual(expected);
        expect(timing(c.startupProbe)).toEqual({ ...expected, failureThreshold: hc.retries! + Math.ceil(hc.startPeriodMs! / hc.intervalMs!) });
      }
    });
  });

  describe('the master', () => {
    it(`runs ${MASTER_REPLICAS} replicas, guarded by a PodDisruptionBudget that selects them`, () => {
      const master = byName(base, 'Deployment', 'tickwatch-master') as KubeObject & { spec: { replicas: number; template: { metadata: { labels: Record<string, string> } } } };
      expect(master.spec.replicas).toBe(2);
      const pdb = base.find((o) => o.kind === 'PodDisruptionBudget') as KubeObject & { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } };
      expect(pdb.spec.minAvailable).toBe(1);
      expect(Object.entries(pdb.spec.selector.matchLabels).every(([k, v]) => master.spec.template.metadata.labels[k] === v)).toBe(true);
    });

    it('is the only pod the network policies let traffic into, on its API port', () => {
      const policies = base.filter((o) => o.kind === 'NetworkPolicy') as (KubeObject & { spec: { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress?: { ports?: { port: number }[] }[]; egress: { ports: { port: number }[] }[] } })[];
      const selects = (p: (typeof policies)[number], labels: Record<string, string>) => Object.entries(p.spec.podSelector.matchLabels).every(([k, v]) => labels[k] === v);
      for (const { object, pod } of podOwners(base)) {
        const own = policies.filter((p) => selects(p, pod.metadata?.labels ?? {}));
        expect({ pod: object.metadata.name, policies: own.length > 0, types: own.flatMap((p) => p.spec.policyTypes).sort() }).toEqual({ pod: object.metadata.name, policies: true, types: ['Egress', 'Ingress'] });
        const ingress = own.flatMap((p) => p.spec.ingress ?? []);
        if (object.metadata.name === 'tickwatch-master') expect(ingress).toEqual([{ ports: [{ protocol: 'TCP', port: 8080 }] }]);
        else expect({ pod: object.metadata.name, ingress }).toEqual({ pod: object.metadata.name, ingress: [] });
      }
      const workerEgress = policies.find((p) => p.metadata.name === 'tickwatch-worker')!.spec.egress.flatMap((r) => r.ports.map((x) => x.port));
      expect(workerEgress.sort((a, b) => a - b)).toEqual([53, 53, 443, 6379]);
    });
  });

  describe('every container, the dev overlay\'s Redis and PostgreSQL included', () => {
    it('runs as a non-root user on a read-only root filesystem, without privilege escalation or capabilities', () => {
      const problems: string[] = [];
      for (const { object, pod } of podOwners([...base, ...dev])) {
        for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
          const sc = { ...(pod.spec.securityContext ?? {}), ...(c.securityContext ?? {}) } as Record<string, unknown> & { capabilities?: { drop?: string[] } };
          const where = `${object.kind} ${object.metadata.name} ${c.name}`;
          if (sc.runAsNonRoot !== true) problems.push(`${where}: runAsNonRoot`);
          if (typeof sc.runAsUser !== 'number' || sc.runAsUser === 0) problems.push(`${where}: runAsUser ${String(sc.runAsUser)}`);
          if (c.securityContext?.readOnlyRootFilesystem !== true) problems.push(`${where}: readOnlyRootFilesystem`);
          if (c.securityContext?.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation`);
          if (!(c.securityContext?.capabilities?.drop ?? []).includes('ALL')) problems.push(`${where}: capabilities not dropped`);
        }
      }
      expect(problems).toEqual([]);
      const master = byName(base, 'Deployment', 'tickwatch-master') as KubeObject & { spec: { template: { spec: PodSpecLike } } };
      expect(master.spec.template.spec.containers[0]!.securityContext?.runAsUser).toBe(1000);
    });
  });
});
