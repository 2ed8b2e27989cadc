import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { freePort } from './net';
import { waitFor } from './wait';

const run = promisify(execFile);

/** One redis-server of a test cluster. */
export interface ClusterNode {
  readonly port: number;
  /** `127.0.0.1:<port>`, as REDIS_CLUSTER_NODES lists it. */
  readonly address: string;
  /** Pid while running, undefined once stopped or killed. */
  readonly pid: number | undefined;
}

export interface TestRedisCluster {
  readonly nodes: readonly ClusterNode[];
  /** Every node, comma-separated: the value of REDIS_CLUSTER_NODES. */
  readonly nodesVar: string;
  /** The node serving `key`'s slot as primary now (asked of the cluster: `CLUSTER SHARDS` after any failover). */
  primaryFor(key: string): Promise<ClusterNode>;
  /** The role a node reports (`master` or `slave`), or null when it does not answer. */
  roleOf(node: ClusterNode): Promise<'master' | 'slave' | null>;
  /** SIGKILLs one node by its pid (a crash) and waits until it is gone. */
  kill(node: ClusterNode): Promise<void>;
  /** Starts a stopped node again, same port, directory and nodes.conf: it rejoins the cluster (as a replica after a failover). */
  restart(node: ClusterNode): Promise<void>;
  /** Waits until every live node reports `cluster_state:ok`. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Stops every node by pid and removes the directories. Safe to call twice. */
  destroy(): Promise<void>;
}

interface NodeProcess extends ClusterNode {
  readonly dir: string;
  child?: ChildProcess;
  exited: Promise<void>;
}

/**
 * A real Redis Cluster of 3 primaries and 3 replicas on free ports, each node a redis-server of its own
 * (`--cluster-enabled yes`, own temporary directory), formed with `redis-cli --cluster create --cluster-replicas 1`.
 * Fast failover for tests: `cluster-node-timeout` 1000 ms (a replica takes over about 2-3 s after its primary dies).
 */
export async function startRedisCluster(options: { nodeTimeoutMs?: number } = {}): Promise<TestRedisCluster> {
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1000;
  const root = await mkdtemp(path.join(os.tmpdir(), 'tw-cluster-'));
  const ports: number[] = [];
  while (ports.length < 6) {
    const port = await freePort();
    // The cluster bus listens on port + 10000: both must be free, and distinct from the other nodes'.
    if (port + 10_000 > 65_535 || ports.includes(port)) continue;
    ports.push(port);
  }
  const nodes: NodeProcess[] = [];
  let destroyed: Promise<void> | undefined;

  const startNode = async (node: NodeProcess) => {
    const args = [
      '--port', String(node.port), '--bind', '127.0.0.1', '--dir', node.dir, '--cluster-enabled', 'yes',
      '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(nodeTimeoutMs), '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--logfile', '', '--protected-mode', 'no',
      // A replica's first sync starts at once (the default waits 5 s for more replicas to share it).
      '--repl-diskless-sync-delay', '0',
    ];
    let log = '';
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
    child.stderr?.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
    node.child = child;
    node.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    await waitFor(`cluster node ${node.port} to answer PING`, async () => {
      if (child.exitCode !== null) throw new Error(`redis-server ${node.port} exited: ${log}`);
      return (await ask(node.port, 'PING').catch(() => null)) === 'PONG';
    }, { timeoutMs: 10_000, intervalMs: 20 });
  };

  const alive = (node: NodeProcess) => node.child !== undefined && node.child.exitCode === null && node.child.signalCode === null;

  const cluster: TestRedisCluster = {
    nodes,
    get nodesVar() {
      return nodes.map((n) => n.address).join(',');
    },
    async primaryFor(key) {
      for (const node of nodes.filter(alive)) {
        const slot = Number(await ask(node.port, 'CLUSTER', 'KEYSLOT', key).catch(() => NaN));
        if (!Number.isInteger(slot)) continue;
        const shards = (await ask(node.port, 'CLUSTER', 'SHARDS').catch(() => null)) as unknown[] | null;
        for (const shard of shards ?? []) {
          const info = toRecord(shard as unknown[]);
          const slots = (info.slots as number[]).map(Number);
          let owns = false;
          for (let i = 0; i + 1 < slots.length; i += 2) if (slot >= slots[i]! && slot <= slots[i + 1]!) owns = true;
          if (!owns) continue;
          for (const n of info.nodes as unknown[][]) {
            const rec = toRecord(n);
            if (rec.role === 'master' && rec.health === 'online') {
              const found = nodes.find((x) => x.port === Number(rec.port));
              if (found) return found;
            }
          }
        }
      }
      throw new Error(`no live primary serves ${key}`);
    },
    async roleOf(node) {
      const reply = (await ask(node.port, 'ROLE').catch(() => null)) as unknown[] | null;
      return reply ? (String(reply[0]) as 'master' | 'slave') : null;
    },
    async kill(node) {
      const proc = nodes.find((n) => n.port === node.port)!;
      if (!alive(proc)) return;
      process.kill(proc.child!.pid!, 'SIGKILL');
      await proc.exited;
    },
    async restart(node) {
      const proc = nodes.find((n) => n.port === node.port)!;
      if (alive(proc)) return;
      await startNode(proc);
    },
    async waitHealthy(timeoutMs = 30_000) {
      await waitFor('every live cluster node to report cluster_state:ok', async () => {
        for (const node of nodes.filter(alive)) {
          const info = String(await ask(node.port, 'CLUSTER', 'INFO').catch(() => ''));
          if (!info.includes('cluster_state:ok')) return false;
        }
        return true;
      }, { timeoutMs, intervalMs: 100 });
    },
    destroy() {
      destroyed ??= (async () => {
        for (const node of nodes) {
          if (alive(node)) {
            process.kill(node.child!.pid!, 'SIGKILL');
            await node.exited;
          }
        }
        await rm(root, { recursive: true, force: true });
      })();
      return destroyed;
    },
  };

  try {
    for (const port of ports) {
      const dir = path.join(root, String(port));
      await mkdir(dir);
      const node: NodeProcess = {
        port,
        address: `127.0.0.1:${port}`,
        dir,
        exited: Promise.resolve(),
        get pid() {
          return alive(this) ? this.child!.pid : undefined;
        },
      };
      nodes.push(node);
    }
    await Promise.all(nodes.map(startNode));
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => n.address), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 30_000 });
    await cluster.waitHealthy();
    // Every replica attached and in sync: until then a WAIT 1 on its primary cannot succeed.
    await waitFor('every primary to have a replica in sync', async () => {
      let primaries = 0;
      for (const node of nodes) {
        const info = String(await ask(node.port, 'INFO', 'replication').catch(() => ''));
        if (info.includes('role:master')) {
          primaries++;
          if (!/slave0:.*state=online/.test(info)) return false;
        }
      }
      return primaries === 3;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    return cluster;
  } catch (err) {
    await cluster.destroy();
    throw err;
  }
}

/** One command to one node, on a short-lived plain connection. */
async function ask(port: number, ...args: string[]): Promise<unknown> {
  const conn = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null, connectTimeout: 1000 });
  conn.on('error', () => undefined);
  try {
    await conn.connect();
    return await conn.call(args[0]!, ...args.slice(1));
  } finally {
    conn.disconnect();
  }
}

function toRecord(flat: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}
