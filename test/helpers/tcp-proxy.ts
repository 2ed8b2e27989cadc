import net from 'node:net';

/** How a proxy that is "down" treats clients. */
export type ProxyOutage =
  /** Existing connections are reset and new ones are closed at once (the server died or its port closed). */
  | 'reset'
  /** New connections are accepted and nothing is forwarded or answered (a network partition); existing ones go silent. */
  | 'blackhole';

export interface TcpProxy {
  /** The port the proxy listens on (127.0.0.1). */
  readonly port: number;
  /** Client connections accepted so far (a reconnecting client shows up here). */
  readonly accepted: number;
  /** Connections currently open through the proxy. */
  readonly open: number;
  /** Cuts the path to the upstream until `up()`: see `ProxyOutage`. */
  down(mode?: ProxyOutage): void;
  /** Forwards new connections again. */
  up(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy on a free local port in front of `upstream`, which a test can take down and bring back, to put a real
 * server (Postgres) out of reach of the code under test without touching the server itself.
 */
export async function startTcpProxy(upstream: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<{ client: net.Socket; server?: net.Socket }>();
  let outage: ProxyOutage | null = null;
  let accepted = 0;

  const server = net.createServer((client) => {
    accepted += 1;
    if (outage === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const pair: { client: net.Socket; server?: net.Socket } = { client };
    pairs.add(pair);
    const forget = () => {
      pairs.delete(pair);
      client.destroy();
      pair.server?.destroy();
    };
    client.on('error', forget);
    client.on('close', forget);
    if (outage === 'blackhole') {
      // Swallow what the client sends; answer nothing.
      client.on('data', () => undefined);
      return;
    }
    const upstreamSocket = net.connect(upstream.port, upstream.host);
    pair.server = upstreamSocket;
    upstreamSocket.on('error', forget);
    upstreamSocket.on('close', forget);
    client.pipe(upstreamSocket);
    upstreamSocket.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    down(mode = 'reset') {
      outage = mode;
      for (const pair of [...pairs]) {
        if (mode === 'reset') {
          pairs.delete(pair);
          pair.server?.destroy();
          pair.client.resetAndDestroy();
        } else {
          // Stop forwarding both ways without closing: the peers see silence.
          pair.client.unpipe();
          pair.server?.unpipe();
          pair.server?.pause();
          pair.client.on('data', () => undefined);
        }
      }
    },
    up() {
      outage = null;
      // Blackholed connections never recover; clients must notice and reconnect (as after a real partition).
      for (const pair of [...pairs]) {
        if (!pair.server || pair.server.isPaused()) {
          pairs.delete(pair);
          pair.server?.destroy();
          pair.client.destroy();
        }
      }
    },
    async close() {
      for (const pair of [...pairs]) {
        pair.server?.destroy();
        pair.client.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
