import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './helpers/process';

/**
 * The layout's one-way dependencies, checked on every import of every TypeScript file:
 *   shared/contract <- shared/platform <- shared/config, shared/read-model <- services (worker, master, cli, fleet, sim) <- mains.
 * Tests, the fault suite and the bench may import anything; production code never imports them.
 */

const SOURCE_DIRS = ['shared', 'worker', 'master', 'cli', 'fleet', 'sim', 'migrations', 'deploy', 'bench', 'faults', 'test'];

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (name === 'node_modules' || name === 'public') continue;
    if (statSync(full).isDirectory()) out.push(...listTs(full));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

const IMPORT_RE = /(?:from|import|require)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g;

interface Edge {
  readonly from: string;
  readonly to: string;
}

const files = SOURCE_DIRS.flatMap((d) => listTs(path.join(REPO_ROOT, d))).map((f) => path.relative(REPO_ROOT, f));
const edges: Edge[] = files.flatMap((from) => {
  const text = readFileSync(path.join(REPO_ROOT, from), 'utf8');
  return [...text.matchAll(IMPORT_RE)].map((m) => ({ from, to: path.normalize(path.join(path.dirname(from), m[1]!)) }));
});

const isTestOrBench = (f: string) => /\.test\.ts$/.test(f) || /^(test|bench|faults)\//.test(f);
const room = (f: string) => {
  const parts = f.split('/');
  return parts[0] === 'shared' ? `shared/${parts[1]}` : parts[0]!;
};

/** What each room of production code may import besides itself. */
const ALLOWED: Record<string, readonly string[]> = {
  'shared/contract': [],
  'shared/platform': ['shared/contract'],
  'shared/config': ['shared/contract', 'shared/platform'],
  'shared/read-model': ['shared/contract', 'shared/platform', 'shared/config'],
  worker: ['shared/contract', 'shared/platform', 'shared/config'],
  master: ['shared/contract', 'shared/platform', 'shared/config', 'shared/read-model'],
  cli: ['shared/contract', 'shared/platform', 'shared/config', 'shared/read-model'],
  fleet: ['shared/contract', 'shared/platform', 'shared/config', 'sim'],
  // The Kubernetes generator reads the compose file the way the local runner does.
  deploy: ['shared/contract', 'shared/platform', 'shared/config', 'fleet'],
  sim: ['shared/contract', 'shared/platform', 'shared/config'],
  migrations: ['shared/contract', 'shared/platform', 'shared/read-model'],
};

describe('the layout', () => {
  it('finds the imports it checks', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(edges.length).toBeGreaterThan(300);
  });

  it('has no production file importing test, fault-suite or bench code', () => {
    const leaks = edges.filter((e) => !isTestOrBench(e.from) && isTestOrBench(e.to)).map((e) => `${e.from} -> ${e.to}`);
    expect(leaks).toEqual([]);
  });

  it('points every production import one way: contract <- platform <- config, read model <- services', () => {
    const wrong = edges
      .filter((e) => !isTestOrBench(e.from) && room(e.from) !== room(e.to))
      .filter((e) => !(ALLOWED[room(e.from)] ?? []).includes(room(e.to)))
      .map((e) => `${e.from} -> ${e.to}`);
    expect(wrong).toEqual([]);
  });

  it('gives every room a README saying what belongs there', () => {
    // A room: a top-level folder, or a folder directly inside shared/ or master/.
    const rooms = [...new Set(files.map((f) => f.split('/').slice(0, ['shared', 'master'].includes(f.split('/')[0]!) && f.split('/').length > 2 ? 2 : 1).join('/')))];
    const missing = rooms.filter((d) => {
      try {
        return !statSync(path.join(REPO_ROOT, d, 'README.md')).isFile();
      } catch {
        return true;
      }
    });
    expect(rooms.length).toBeGreaterThan(12);
    expect(missing).toEqual([]);
  });
});
