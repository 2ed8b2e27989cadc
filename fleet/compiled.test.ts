import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startService } from '../test/helpers/process';
import { ensureCompiled, FleetRunError, parseRunFrom, staleReason, withCompiledWorkers } from './compiled';
import { loadFleetPlan } from './load-plan';

const ROOT = path.join(__dirname, '..');

describe('choosing how workers run', () => {
  it('runs compiled by default, from source with --from-source or FLEET_RUN=source|tsx', () => {
    expect(parseRunFrom(false, undefined)).toBe('compiled');
    expect(parseRunFrom(false, 'compiled')).toBe('compiled');
    expect(parseRunFrom(false, 'source')).toBe('source');
    expect(parseRunFrom(false, 'tsx')).toBe('source');
    expect(parseRunFrom(true, 'compiled')).toBe('source');
  });

  it('names a bad FLEET_RUN and what is allowed', () => {
    expect(() => parseRunFrom(false, 'fast')).toThrow(new FleetRunError('FLEET_RUN="fast": expected one of compiled, source, tsx'));
  });

  it('points the workers and the generic pool at dist/ and leaves the other services on their sources', () => {
    const { plan } = loadFleetPlan({ root: ROOT, demo: true, env: {} });
    const compiled = withCompiledWorkers(plan);
    const workers = compiled.services.filter((s) => s.role === 'worker');
    expect(workers.length).toBeGreaterThan(0);
    for (const w of workers) expect(w.entry).toBe('dist/worker/main.js');
    expect(compiled.pool?.entry).toBe('dist/worker/main.js');
    expect(compiled.services.find((s) => s.role === 'master')?.entry).toBe('master/main.ts');
  });
});

describe('npm start -- --dry-run', () => {
  it('shows workers as node dist/worker/main.js with the compose file node flags, the master through tsx', async () => {
    const run = startService('fleet/main.ts', {}, ['--demo', '--dry-run']);
    expect(await run.exited).toBe(0);
    const described = JSON.parse(run.output()) as { services: { role: string; command: string }[]; pool?: { command: string } };
    expect(described.services.find((s) => s.role === 'worker')?.command).toBe('node --max-semi-space-size=2 dist/worker/main.js');
    expect(described.pool?.command).toBe('node --max-semi-space-size=2 dist/worker/main.js');
    expect(described.services.find((s) => s.role === 'master')?.command).toBe('node --import tsx master/main.ts');
  });

  it('shows them through tsx with --from-source, and refuses a bad FLEET_RUN with exit code 2', async () => {
    const source = startService('fleet/main.ts', {}, ['--demo', '--dry-run', '--from-source']);
    expect(await source.exited).toBe(0);
    const described = JSON.parse(source.output()) as { services: { role: string; command: string }[] };
    expect(described.services.find((s) => s.role === 'worker')?.command).toBe('node --import tsx --max-semi-space-size=2 worker/main.ts');

    const bad = startService('fleet/main.ts', { FLEET_RUN: 'fast' }, ['--dry-run']);
    expect(await bad.exited).toBe(2);
    expect(bad.output().trim()).toBe('fleet: FLEET_RUN="fast": expected one of compiled, source, tsx');
  });
});

/** A two-file project built by the repository's own tsc: the build decision and the build itself, for real. */
describe('building dist/ when it is missing or older than the sources', () => {
  let root: string;
  const lines: string[] = [];
  const log = { info: (l: string) => lines.push(`info ${l}`), warn: (l: string) => lines.push(`warn ${l}`) };
  const entry = 'dist/worker/main.js';

  beforeAll(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'tw-compiled-'));
    mkdirSync(path.join(root, 'worker'));
    mkdirSync(path.join(root, 'shared'));
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
    writeFileSync(
      path.join(root, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'commonjs', strict: true, outDir: 'dist', rootDir: '.', types: ['node'] }, include: ['worker', 'shared'] }),
    );
    writeFileSync(path.join(root, 'shared', 'word.ts'), "export const word: string = 'one';\n");
    writeFileSync(path.join(root, 'worker', 'main.ts'), "import { word } from '../shared/word';\nprocess.stdout.write(word);\n");
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  beforeEach(() => lines.splice(0));

  const runCompiled = () => execFileSync(process.execPath, [path.join(root, entry)], { encoding: 'utf8' });

  it('builds when dist/ is missing, saying so in one line, and the compiled entry runs', async () => {
    expect(staleReason(root, [entry])).toBe('dist/worker/main.js is missing');
    await ensureCompiled(root, [entry], log);
    expect(lines).toEqual([expect.stringMatching(/^info building dist\/ with tsc for the compiled workers \(dist\/worker\/main\.js is missing; about 20 s\) \.\.\.$/)]);
    expect(runCompiled()).toBe('one');
  });

  it('does nothing when dist/ is newer than every source', async () => {
    expect(staleReason(root, [entry])).toBeUndefined();
    await ensureCompiled(root, [entry], log);
    expect(lines).toEqual([]);
  });

  it('rebuilds when a source the entry imports changed', async () => {
    writeFileSync(path.join(root, 'shared', 'word.ts'), "export const word: string = 'two';\n");
    const later = new Date(Date.now() + 5000);
    utimesSync(path.join(root, 'shared', 'word.ts'), later, later);
    expect(staleReason(root, [entry])).toBe('sources are newer than dist/worker/main.js');
    await ensureCompiled(root, [entry], log);
    expect(lines).toHaveLength(1);
    expect(runCompiled()).toBe('two');
  });

  it('says how to get TypeScript when it is not installed, and builds nothing', async () => {
    const bare = mkdtempSync(path.join(os.tmpdir(), 'tw-compiled-bare-'));
    try {
      writeFileSync(path.join(bare, 'tsconfig.json'), '{}');
      await expect(ensureCompiled(bare, [entry], log)).rejects.toThrow(
        new FleetRunError(`dist/ needs a build (dist/worker/main.js is missing) but TypeScript is not installed at ${path.join(bare, 'node_modules', 'typescript', 'bin', 'tsc')}: run npm ci (it installs the dev dependencies), or npm start -- --from-source`),
      );
      expect(lines).toEqual([]);
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
  });

  it('runs what tsc wrote despite a type error elsewhere, with the error as a warning', async () => {
    writeFileSync(path.join(root, 'shared', 'other.ts'), 'export const n: number = "not a number";\n');
    const later = new Date(Date.now() + 10_000);
    utimesSync(path.join(root, 'shared', 'other.ts'), later, later);
    await ensureCompiled(root, [entry], log);
    expect(lines[0]).toMatch(/^info building/);
    expect(lines[1]).toMatch(/^warn tsc reported errors but wrote the compiled workers; running them:\n.*other\.ts.*TS2322/s);
    expect(existsSync(path.join(root, 'dist', 'shared', 'other.js'))).toBe(true);
  });
});
