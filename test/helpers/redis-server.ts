import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { freePort } from './net';
import { waitFor } from './wait';

export { freePort };

/** Persistence of a test-owned Redis. */
export type RedisPersistence =
  /** Nothing on disk: a restart starts empty (`--save "" --appendonly no`). */
  | 'none'
  /** Append-only file fsynced on every write (`--appendonly yes --appendfsync always`): a restart keeps every acknowledged write. */
  | 'aof-always';

export interface OwnRedisServer {
  readonly port: number;
  readonly url: string;
  readonly persistence: RedisPersistence;
  /** The data directory (removed by `destroy()`). */
  readonly dir: string;
  /** Pid of the running server, or undefined while stopped. */
  readonly pid: number | undefined;
  /** Stops the server by pid (SIGKILL: a crash; SIGTERM: a clean stop) and waits until it is gone. */
  stop(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  /** Starts it again on the same port and directory and waits until it answers PING. */
  start(): Promise<void>;
  /** Stops it if running and removes its directory. */
  destroy(): Promise<void>;
}

/**
 * Starts a redis-server of the test's own on a free port, in its own temporary directory, so a test can stop and
 * restart it (by pid) without touching the shared Redis on 6379.
 */
export async function startOwnRedis(options: { persistence?: RedisPersistence } = {}): Promise<OwnRedisServer> {
  const persistence = options.persistence ?? 'none';
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tw-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log = '';

  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no', '--logfile', ''];
  if (persistence === 'aof-always') args.push('--appendonly', 'yes', '--appendfsync', 'always');
  else args.push('--appendonly', 'no');

  const start = async () => {
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    proc.stdout?.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
    proc.stderr?.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await waitFor(
        `redis-server on port ${port} to answer PING`,
        async () => {
          if (proc.exitCode !== null) throw new Error(`redis-server exited: ${log}`);
          if (probe.status !== 'ready') {
            probe.disconnect();
            await probe.connect();
          }
          // A server loading its AOF answers LOADING errors until it is done.
          return (await probe.ping()) === 'PONG';
        },
        { timeoutMs: 10_000, intervalMs: 20 },
      );
    } finally {
      probe.disconnect();
    }
  };

  await start();
  return {
    port,
    url,
    persistence,
    dir,
    get pid() {
      return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    async stop(signal = 'SIGKILL') {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      process.kill(child.pid!, signal);
      await exited;
    },
    start,
    async destroy() {
      if (child && child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, 'SIGKILL');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
