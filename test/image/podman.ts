import { execFile } from 'node:child_process';

/** The image `test/image/prepare.sh` builds (override both with TICKWATCH_IMAGE). */
export const IMAGE = process.env.TICKWATCH_IMAGE ?? 'localhost/tickwatch:image-test';

/** The Dockerfile's base image (test/image/prepare.sh: NODE_BASE_IMAGE). */
export const BASE_IMAGE = process.env.NODE_BASE_IMAGE ?? 'docker.io/library/node:20-bookworm-slim';

export interface PodmanResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `podman <args>` and resolves with its exit code and output, never rejecting on a non-zero exit (the tests assert
 * on codes: a health command's 1 is an answer, not an error). Rejects only when podman itself cannot be started.
 */
export function podman(args: readonly string[], timeoutMs = 60_000): Promise<PodmanResult> {
  return new Promise((resolve, reject) => {
    execFile('podman', [...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code === 'string') {
        reject(new Error(`podman ${args.join(' ')}: ${err.message}`));
        return;
      }
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
    });
  });
}

/** Like `podman`, but rejects with the command and its output unless it exits 0. */
export async function podmanOk(args: readonly string[], timeoutMs?: number): Promise<string> {
  const r = await podman(args, timeoutMs);
  if (r.code !== 0) throw new Error(`podman ${args.join(' ')} exited ${r.code}:\n${r.stderr.slice(-3000)}${r.stdout.slice(-3000)}`);
  return r.stdout;
}

/** `-e NAME=value` for each variable. */
export function envArgs(env: Readonly<Record<string, string>>): string[] {
  return Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
}

/** The container's state, as `podman inspect` reports it. */
export async function containerState(name: string): Promise<{ running: boolean; exitCode: number; pid: number; status: string }> {
  const out = await podmanOk(['inspect', '--type', 'container', '--format', '{{.State.Running}} {{.State.ExitCode}} {{.State.Pid}} {{.State.Status}}', name]);
  const [running, exitCode, pid, status] = out.trim().split(' ');
  return { running: running === 'true', exitCode: Number(exitCode), pid: Number(pid), status: status ?? '' };
}
