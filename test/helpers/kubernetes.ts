import { spawnSync } from 'node:child_process';
import path from 'node:path';
import ts from 'typescript';
import YAML from 'yaml';
import { REPO_ROOT } from './process';

/**
 * Offline checks of Kubernetes objects against the API's own types, strictly: unknown fields are errors. Two layers:
 * - kubernetes-types (the API's TypeScript types): each object is typechecked as an object literal of its kind, so the
 *   compiler's excess-property check rejects any field the API does not define (`replicass`, `imagePullPolicyy`), at
 *   any depth, as well as wrong types and missing required fields;
 * - kubernetes-models (the API's OpenAPI schemas, compiled): formats and constraints the types cannot say (integer
 *   ports, enums). Its validators accept unknown fields, hence the first layer.
 */

export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string> };
  readonly [field: string]: unknown;
}

/** `kubectl kustomize <dir>`: the objects it renders. Throws with kubectl's message if it cannot. */
export function kustomize(dir: string): KubeObject[] {
  const run = spawnSync('kubectl', ['kustomize', dir], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw new Error('kubectl is not on PATH: the manifest tests render with `kubectl kustomize` (kubectl 1.32 or later)');
  if (run.error) throw run.error;
  if (run.status !== 0) throw new Error(`kubectl kustomize ${dir} failed (${run.status}): ${run.stderr}`);
  return YAML.parseAllDocuments(run.stdout).map((d) => d.toJS() as KubeObject);
}

/** kubernetes-types module and type for an apiVersion/kind, e.g. apps/v1 Deployment -> kubernetes-types/apps/v1. */
function typesModule(apiVersion: string): string {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['core', apiVersion];
  return `kubernetes-types/${(group as string).replace(/\.k8s\.io$/, '')}/${version}`;
}

/** One line per problem the TypeScript compiler finds, naming the object; empty when every object is exact. */
export function typecheckObjects(objects: readonly KubeObject[]): string[] {
  const modules = [...new Set(objects.map((o) => typesModule(o.apiVersion)))];
  const alias = (m: string) => m.replace(/[^A-Za-z0-9]/g, '_');
  const lines = [
    ...modules.map((m) => `import type * as ${alias(m)} from '${m}';`),
    ...objects.map((o, i) => `// ${o.kind} ${o.metadata?.name}\nexport const object${i}: ${alias(typesModule(o.apiVersion))}.${o.kind} = ${JSON.stringify(o, null, 1)};`),
  ];
  const file = path.join(REPO_ROOT, 'test', '__kubernetes-objects__.ts');
  const source = lines.join('\n');
  const options: ts.CompilerOptions = { strict: true, noEmit: true, skipLibCheck: true, module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10, target: ts.ScriptTarget.ES2022, types: [] };
  const host = ts.createCompilerHost(options);
  const read = host.readFile.bind(host);
  const exists = host.fileExists.bind(host);
  host.readFile = (f) => (path.resolve(f) === file ? source : read(f));
  host.fileExists = (f) => path.resolve(f) === file || exists(f);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (f, v) => (path.resolve(f) === file ? ts.createSourceFile(f, source, v) : getSourceFile(f, v));
  const program = ts.createProgram([file], options, host);
  const sf = program.getSourceFile(file) as ts.SourceFile;
  const starts = objects.map((_, i) => source.indexOf(`export const object${i}:`));
  return ts.getPreEmitDiagnostics(program, sf).map((d) => {
    const at = d.start ?? 0;
    const index = starts.filter((s) => s <= at).length - 1;
    const o = objects[index];
    return `${o ? `${o.kind} ${o.metadata?.name}` : 'objects'}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}

// Runs as an ES module (kubernetes-models ships only those): reads the objects as JSON on stdin, prints the problems.
const MODELS_SCRIPT = `
const objects = JSON.parse(await new Promise((resolve) => { let t = ''; process.stdin.on('data', (c) => (t += c)); process.stdin.on('end', () => resolve(t)); }));
const problems = [];
for (const o of objects) {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : [null, o.apiVersion];
  const modulePath = 'kubernetes-models/' + (group ? group + '/' : '') + version + '/' + o.kind;
  let Model;
  try { Model = (await import(modulePath))[o.kind]; } catch (err) { problems.push(o.kind + ' ' + o.metadata?.name + ': no schema (' + err.message + ')'); continue; }
  try { new Model(o).validate(); } catch (err) { problems.push(o.kind + ' ' + o.metadata?.name + ': ' + err.message); }
}
process.stdout.write(JSON.stringify(problems));
`;

/** One line per problem kubernetes-models' schema validators find; empty when every object passes. */
export function validateWithModels(objects: readonly KubeObject[]): string[] {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', MODELS_SCRIPT], { cwd: REPO_ROOT, input: JSON.stringify(objects), encoding: 'utf8', timeout: 60_000 });
  if (run.error) throw run.error;
  if (run.status !== 0) throw new Error(`kubernetes-models validation did not run (${run.status}): ${run.stderr}`);
  return JSON.parse(run.stdout) as string[];
}

/**
 * Both layers. A Secret's base64 data may be wrapped over lines (kustomize wraps at 70 columns); the API server's
 * decoder skips the newlines, kubernetes-models' pattern does not, so they are joined for it.
 */
export function strictProblems(objects: readonly KubeObject[]): string[] {
  const unwrapped = objects.map((o) =>
    o.kind === 'Secret' && o.data ? { ...o, data: Object.fromEntries(Object.entries(o.data as Record<string, string>).map(([k, v]) => [k, v.replace(/\s+/g, '')])) } : o,
  );
  return [...typecheckObjects(objects), ...validateWithModels(unwrapped)];
}
