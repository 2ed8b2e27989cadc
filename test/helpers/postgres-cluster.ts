import { execFile } from 'node:child_process';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { freePort } from './net';
import { waitFor } from './wait';

const run = promisify(execFile);

/** Where Debian's postgresql-15 puts its server binaries; PG_BIN overrides it. */
export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** One server of the test's own cluster. */
export interface OwnPostgresServer {
  readonly port: number;
  /** Its data directory. */
  readonly dataDir: string;
  /** A URL without a database path: append `/<database>`. */
  readonly url: string;
  /** The postmaster's pid while it runs (from postmaster.pid), else undefined. */
  pid(): Promise<number | undefined>;
  /** `pg_ctl stop -m fast` on its own data directory (the postmaster whose pid it recorded); waits until it is gone. */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory and waits until it accepts connections. */
  start(): Promise<void>;
  /** A query on its `postgres` database (a connection of its own). */
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
}

export interface PostgresCluster {
  readonly primary: OwnPostgresServer;
  /** A streaming replica of the primary (`pg_basebackup -R`, hot standby). */
  readonly replica: OwnPostgresServer;
  /** The temporary directory holding both data directories and their unix sockets. */
  readonly dir: string;
  /** Stops both (replica first) and removes the directory. Safe to call twice. */
  destroy(): Promise<void>;
}

/**
 * initdb, pg_ctl and the server refuse to run as root: as root, every command runs as the `postgres` OS user (runuser)
 * on a directory handed to it; as anyone else, as that user.
 */
async function asServerUser(command: string, args: readonly string[]): Promise<string> {
  const file = path.join(PG_BIN, command);
  const [cmd, argv] = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, [...args]];
  try {
    const { stdout } = await run(cmd, argv, { timeout: 60_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

async function handToServerUser(target: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const { stdout } = await run('id', ['-u', 'postgres']);
  const { stdout: gid } = await run('id', ['-g', 'postgres']);
  await chown(target, Number(stdout.trim()), Number(gid.trim()));
}

function server(name: string, dir: string, port: number): OwnPostgresServer {
  const dataDir = path.join(dir, name);
  const url = `postgres://postgres@127.0.0.1:${port}`;
  // Loopback only, the unix socket in our own directory (never /var/run/postgresql, the shared server's), WAL a standby
  // can replay (the replica, a copy of this directory, runs with the same settings), no fsync:
  // a test cluster that a crash would lose costs nothing, and fsync on a shared disk costs seconds.
  const options = [`-p ${port}`, "-c listen_addresses='127.0.0.1'", `-c unix_socket_directories='${dir}'`, '-c wal_level=replica', '-c max_wal_senders=5', '-c hot_standby=on', '-c fsync=off', '-c full_page_writes=off'].join(' ');
  const self: OwnPostgresServer = {
    port,
    dataDir,
    url,
    async pid() {
      try {
        const first = (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0];
        const pid = Number(first);
        return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
      } catch {
        return undefined;
      }
    },
    async start() {
      await asServerUser('pg_ctl', ['-D', dataDir, '-l', path.join(dir, `${name}.log`), '-o', options, '-w', '-t', '30', 'start']);
      await waitFor(`${name} on port ${port} to accept connections`, async () => (await self.query('SELECT 1 AS one'))[0]?.one === 1, { timeoutMs: 15_000, intervalMs: 50 });
    },
    async stop() {
      if ((await self.pid()) === undefined) return;
      await asServerUser('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '30', 'stop']);
    },
    async query<R extends Record<string, unknown>>(sql: string, params: unknown[] = []) {
      const client = new Client({ connectionString: `${url}/postgres`, application_name: 'tickwatch-test-cluster', connectionTimeoutMillis: 5000 });
      await client.connect();
      try {
        return (await client.query(sql, params)).rows as R[];
      } finally {
        await client.end();
      }
    },
  };
  return self;
}

/**
 * A Postgres primary and a streaming replica of the test's own, on free ports on 127.0.0.1, in one temporary
 * directory: initdb (trust auth, wal_level=replica), then `pg_basebackup -R` from the running primary (which writes
 * the replica's primary_conninfo and standby.signal), and the replica started and waited for until the primary sees
 * it streaming. Takes about a second. Stop both with `destroy()` in afterAll.
 */
export async function startPostgresCluster(): Promise<PostgresCluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tw-pg-'));
  await handToServerUser(dir);
  const [primaryPort, replicaPort] = [await freePort(), await freePort()];
  const primary = server('primary', dir, primaryPort);
  const replica = server('replica', dir, replicaPort);
  let destroyed: Promise<void> | undefined;
  const destroy = () =>
    (destroyed ??= (async () => {
      // Each stopped by its own data directory's pid, the replica first, whatever the other did.
      const errors: unknown[] = [];
      for (const s of [replica, primary]) await s.stop().catch((err: unknown) => errors.push(err));
      await rm(dir, { recursive: true, force: true });
      if (errors.length) throw errors[0];
    })());
  try {
    await asServerUser('initdb', ['-D', primary.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    await primary.start();
    await asServerUser('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primaryPort), '-U', 'postgres', '-D', replica.dataDir, '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
    await replica.start();
    await waitFor(
      'the replica to stream from the primary',
      async () => (await primary.query<{ state: string }>("SELECT state FROM pg_stat_replication WHERE state = 'streaming'")).length > 0,
      { timeoutMs: 15_000, intervalMs: 50 },
    );
    return { primary, replica, dir, destroy };
  } catch (err) {
    await destroy().catch(() => undefined);
    throw err;
  }
}
