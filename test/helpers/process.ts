import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The one way tests, the fault suite and the bench run our entry points as real processes.
 */

export const REPO_ROOT = path.join(__dirname, '..', '..');

export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything written to stdout and stderr so far (with `outputFile`, the last 256 KiB of it). */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process exits. */
  readonly exited: Promise<number | string>;
  /** Waits until `text` (or a match of the RegExp) appears in the output; rejects on exit or timeout. */
  waitForOutput(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Sends `signal` and waits for exit; SIGKILLs after `timeoutMs`. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string>;
}

export interface StartOptions {
  /** Run the `tsc` output `dist/<entry>.js` instead of the TypeScript source under tsx. */
  readonly compiled?: boolean;
  /** Node flags before the entry (e.g. `--max-semi-space-size=2`, `--cpu-prof`). */
  readonly nodeArgs?: readonly string[];
  /**
   * Send stdout and stderr to a file instead of a pipe: a service logging a line per alert into a pipe that a busy
   * parent drains late blocks on the full pipe, and a measurement would measure the parent. The file is deleted once
   * the process has exited and `stop()` was called.
   */
  readonly outputFile?: boolean;
  /** Variables under `env` (which wins). @defaultValue `{ LOG_LEVEL: 'debug' }` */
  readonly baseEnv?: Readonly<Record<string, string>>;
}

const TAIL_MAX = 256 * 1024;

/**
 * Runs an entry point (relative to the repo root) as a real process, the way `npm run` does (`node --import tsx`), with
 * `env` added to a clean environment (PATH and HOME only).
 */
export function startService(entry: string, env: Record<string, string>, args: readonly string[] = [], options: StartOptions = {}): ServiceProcess {
  const target = options.compiled ? [path.join(REPO_ROOT, 'dist', entry.replace(/\.ts$/, '.js'))] : ['--import', 'tsx', path.join(REPO_ROOT, entry)];
  const file = options.outputFile ? createOutputFile() : undefined;
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...target, ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...(options.baseEnv ?? { LOG_LEVEL: 'debug' }), ...env },
    stdio: file ? ['ignore', file.fd, file.fd] : ['ignore', 'pipe', 'pipe'],
  });
  let piped = '';
  const onData = (chunk: Buffer) => {
    piped += chunk.toString();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const output = () => (file ? file.tail() : piped);
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const hasExited = () => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    pid: child.pid ?? -1,
    output,
    exited,
    async waitForOutput(text, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      const matches = () => (typeof text === 'string' ? output().includes(text) : text.test(output()));
      for (;;) {
        if (matches()) return;
        if (hasExited()) {
          // A pipe may still hold the last lines: give them a moment to arrive.
          await new Promise((r) => setTimeout(r, 50));
          if (matches()) return;
          throw new Error(`${entry} exited before printing ${String(text)}:\n${output().slice(-3000)}`);
        }
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(text)} in output of ${entry}:\n${output().slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (!hasExited()) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(timer);
      }
      const code = await exited;
      file?.remove();
      return code;
    },
  };
}

function createOutputFile(): { fd: number; tail(): string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tw-proc-'));
  const fd = openSync(path.join(dir, 'output.log'), 'a+');
  let removed = false;
  return {
    fd,
    tail() {
      if (removed) return '';
      const size = fstatSync(fd).size;
      const length = Math.min(size, TAIL_MAX);
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, size - length);
      return buffer.toString('utf8');
    },
    remove() {
      if (removed) return;
      removed = true;
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether a process with this pid still exists (signal 0 probes without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
