import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export const REPO_ROOT = path.join(__dirname, '..');

export interface BenchProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The last ~256 KB of stdout and stderr (a long run's logs are not all kept). */
  tail(): string;
  readonly exited: Promise<number | string>;
  waitForOutput(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** SIGTERM (or `signal`), then SIGKILL after `timeoutMs`; resolves with the exit code or signal. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string>;
}

const TAIL_MAX = 256 * 1024;

/**
 * Runs one of our entry points as a real process: `node --import tsx <entry>.ts` (as `npm run` does), or with
 * `compiled: true` the `tsc` output `node dist/<entry>.js`. Output is kept as a bounded tail, since a bench run can log
 * hundreds of thousands of lines.
 */
export function spawnEntry(entry: string, env: Record<string, string>, options: { compiled?: boolean; args?: string[]; nodeArgs?: string[] } = {}): BenchProcess {
  const args = [...(options.nodeArgs ?? [])];
  args.push(...(options.compiled
    ? [path.join(REPO_ROOT, 'dist', entry.replace(/\.ts$/, '.js'))]
    : ['--import', 'tsx', path.join(REPO_ROOT, entry)]));
  const child = spawn(process.execPath, [...args, ...(options.args ?? [])], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    if (out.length > TAIL_MAX * 2) out = out.slice(-TAIL_MAX);
    for (const l of listeners) l();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    pid: child.pid ?? -1,
    tail: () => out.slice(-TAIL_MAX),
    exited,
    waitForOutput(text, timeoutMs = 20_000) {
      const matches = () => (typeof text === 'string' ? out.includes(text) : text.test(out));
      if (matches()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const done = (err?: Error) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (err) reject(err);
          else resolve();
        };
        const timer = setTimeout(() => done(new Error(`timed out waiting for ${String(text)} from ${entry}:\n${out.slice(-2000)}`)), timeoutMs);
        const check = () => {
          if (matches()) done();
        };
        listeners.add(check);
        void exited.then((code) => {
          if (!matches()) done(new Error(`${entry} exited (${code}) before printing ${String(text)}:\n${out.slice(-2000)}`));
        });
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
