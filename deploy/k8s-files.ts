import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { normaliseCompose, readComposeFile } from '../fleet/compose-file';
import { renderKubernetes, type KubernetesRender } from './kubernetes';

/** Where the rendered manifests live, relative to the repository root. */
export const K8S_DIR = path.join('deploy', 'k8s');

/**
 * Renders docker-compose.yml with the file's own defaults only: neither the shell nor .env takes part, so the committed
 * manifests are the same on every machine (operators change them with overlays, not with variables).
 */
export function renderComposeFile(root: string): KubernetesRender {
  const { project } = normaliseCompose(readComposeFile(path.join(root, 'docker-compose.yml')), () => undefined);
  return renderKubernetes(project);
}

/** Every file under `dir`, relative to it. */
export function listFiles(dir: string, base = ''): string[] {
  let entries;
  try {
    entries = readdirSync(path.join(dir, base), { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => (e.isDirectory() ? listFiles(dir, path.join(base, e.name)) : [path.join(base, e.name)])).sort();
}

function readOrUndefined(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** How `dir` differs from the render: one line per missing, changed or extra file. */
export function diffRender(render: KubernetesRender, dir: string): string[] {
  const out: string[] = [];
  for (const [file, text] of Object.entries(render.files)) {
    const current = readOrUndefined(path.join(dir, file));
    if (current === undefined) out.push(`missing: ${file}`);
    else if (current !== text) out.push(`changed: ${file}`);
  }
  for (const file of listFiles(dir)) if (!(file in render.files)) out.push(`not generated: ${file}`);
  return out;
}

/** Makes `dir` hold exactly the render: writes changed files, removes files it no longer renders. */
export function writeRender(render: KubernetesRender, dir: string): void {
  for (const file of listFiles(dir)) if (!(file in render.files)) rmSync(path.join(dir, file));
  for (const [file, text] of Object.entries(render.files)) {
    const target = path.join(dir, file);
    if (readOrUndefined(target) === text) continue;
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, text);
  }
}
