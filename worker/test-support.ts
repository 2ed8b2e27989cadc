import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import Redis from 'ioredis';
import { parseAlertMessage, type AlertMessage } from '../shared/alert';
import type { RedisKeys } from '../shared/redis-keys';
import { loadWorkerConfig, type WorkerConfig } from '../shared/worker-config';
import { waitFor } from '../test/helpers/wait';

/** Test-only helpers shared by the worker's test files. */

/** Every alert in a pair's durable stream, oldest first, checked against the contract. */
export async function readAlertStream(redis: Redis, keys: RedisKeys, pair: string): Promise<AlertMessage[]> {
  const entries = await redis.xrange(keys.alertStream(pair), '-', '+');
  return entries.map(([id, fields]) => {
    const parsed = parseAlertMessage(fields[fields.indexOf('alert') + 1] ?? '');
    if (!parsed.ok) throw new Error(`stream entry ${id} breaks the contract: ${parsed.reason}`);
    return parsed.alert;
  });
}

/** Subscribes to a pair's alert channel and collects every message. */
export async function subscribeAlerts(url: string, keys: RedisKeys, pair: string): Promise<{ alerts: AlertMessage[]; close(): Promise<void> }> {
  const sub = new Redis(url, { maxRetriesPerRequest: 1 });
  const alerts: AlertMessage[] = [];
  sub.on('message', (_channel: string, message: string) => {
    const parsed = parseAlertMessage(message);
    if (!parsed.ok) throw new Error(`published message breaks the contract: ${parsed.reason}`);
    alerts.push(parsed.alert);
  });
  await sub.subscribe(keys.alertChannel(pair));
  // quit, not disconnect: ioredis keeps a 2 s timer alive after disconnect(), which holds jest open.
  return { alerts, close: async () => void (await sub.quit().catch(() => sub.disconnect())) };
}

/** "up 100.01 vs 100": how a test states an expected alert. */
export const describeAlert = (a: AlertMessage) => `${a.direction} ${a.price} vs ${a.referencePrice}`;

export function workerConfig(env: Record<string, string>): WorkerConfig {
  return loadWorkerConfig({ LOG_LEVEL: 'silent', ...env });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A private, non-persistent redis-server on `port`, stopped by pid. */
export interface PrivateRedis {
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/** One raw PING over TCP (no client library: nothing lingers after a refused connection). */
function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString();
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}

export async function startPrivateRedis(port: number): Promise<PrivateRedis> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `redis://127.0.0.1:${port}`;
  await waitFor(`redis-server on ${port}`, () => pingOnce(port));
  return {
    url,
    child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
