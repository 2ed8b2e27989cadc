import path from 'node:path';
import { describeError } from '../shared/platform/errors';
import { diffRender, K8S_DIR, renderComposeFile, writeRender } from './k8s-files';

/**
 * `npm run k8s`: renders docker-compose.yml into deploy/k8s/ (the kustomize base and the dev overlay).
 * `npm run k8s -- --check` writes nothing and exits 1 when the committed files differ from a fresh render.
 */
function main(argv: readonly string[]): number {
  const root = path.join(__dirname, '..');
  const dir = path.join(root, K8S_DIR);
  const render = renderComposeFile(root);
  const differences = diffRender(render, dir);
  if (argv.includes('--check')) {
    for (const d of differences) process.stdout.write(`${d}\n`);
    process.stdout.write(differences.length === 0 ? `${K8S_DIR} matches docker-compose.yml\n` : `${K8S_DIR} is out of date: run npm run k8s\n`);
    return differences.length === 0 ? 0 : 1;
  }
  writeRender(render, dir);
  process.stdout.write(`${K8S_DIR}: ${Object.keys(render.files).length} files from docker-compose.yml, ${differences.length} changed\n`);
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`${describeError(err)}\n`);
  process.exitCode = 2;
}
