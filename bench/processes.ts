import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, fstatSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { SectionContext } from './context';
import type { BenchDatabase, BenchRedis } from './resources';

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
 * `compiled: true` the `tsc` output `node dist/<entry>.js`.
 *
 * Its stdout and stderr go to a file, not a pipe: a service logging a line per alert into a pipe that the busy bench
 * process drains late would block on a full pipe (pino writes synchronously) and the bench would measure itself.
 * `tail()` and `waitForOutput` read the end of that file; it is deleted when the process has exited and been stopped.
 */
export function spawnEntry(entry: string, env: Record<string, string>, options: { compiled?: boolean; args?: string[]; nodeArgs?: string[] } = {}): BenchProcess {
  const args = [...(options.nodeArgs ?? [])];
  args.push(...(options.compiled ? [path.join(REPO_ROOT, 'dist', entry.replace(/\.ts$/, '.js'))] : ['--import', 'tsx', path.join(REPO_ROOT, entry)]));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tw-bench-'));
  const file = path.join(dir, 'output.log');
  const fd = openSync(file, 'a+');
  const child = spawn(process.execPath, [...args, ...(options.args ?? [])], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'production', ...env },
    stdio: ['ignore', fd, fd],
  });
  const tail = () => {
    const size = fstatSync(fd).size;
    const length = Math.min(size, TAIL_MAX);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    return buffer.toString('utf8');
  };
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    child,
    pid: child.pid ?? -1,
    tail: () => (removed ? '' : tail()),
    exited,
    async waitForOutput(text, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const out = tail();
        if (typeof text === 'string' ? out.includes(text) : text.test(out)) return;
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${entry} exited before printing ${String(text)}:\n${out.slice(-2000)}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(text)} from ${entry}:\n${out.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(timer);
      }
      const code = await exited;
      remove();
      return code;
    },
  };
}

/** The real master process (stream delivery, log notifications, API on a free port) over a section's database and prefix. */
export function startBenchMaster(ctx: SectionContext, db: BenchDatabase, r: BenchRedis, env: Record<string, string> = {}): BenchProcess {
  return spawnEntry('master/main.ts', {
    DATABASE_URL: db.url,
    REDIS_URL: ctx.targets.redisUrl,
    REDIS_KEY_PREFIX: r.prefix,
    DELIVERY: 'stream',
    MASTER_PAIRS: '*',
    NOTIFY: 'log',
    API_HOST: '127.0.0.1',
    API_PORT: '0',
    LOG_LEVEL: 'info',
    ...env,
  }, { nodeArgs: process.env.BENCH_MASTER_NODE_ARGS?.split(' ').filter(Boolean) });
}
