import http from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import { probeHttp } from './http-probe';
import { createFleetOutput } from './output';
import type { FleetPlan } from './plan';
import { checkPortFree, checkTcp, preflight } from './preflight';

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  const port = await listen(server);
  await close(server);
  return port;
}

describe('the master and simulator health probe (dist/fleet/http-probe.js)', () => {
  let server: http.Server;
  let port: number;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      res.statusCode = req.url === '/ready' ? 200 : 503;
      res.end('{}');
    });
    port = await listen(server);
  });
  afterAll(() => close(server));

  it('is healthy on a 2xx answer', async () => {
    expect(await probeHttp(`http://127.0.0.1:${port}/ready`, 2000)).toEqual({ healthy: true, detail: `http://127.0.0.1:${port}/ready answered 200` });
  });

  it('is unhealthy on a 503 (the master is up but Postgres or Redis is not)', async () => {
    expect(await probeHttp(`http://127.0.0.1:${port}/down`, 2000)).toEqual({ healthy: false, detail: `http://127.0.0.1:${port}/down answered 503` });
  });

  it('is unhealthy, saying why, when nothing listens', async () => {
    const closed = await closedPort();
    expect(await probeHttp(`http://127.0.0.1:${closed}/ready`, 2000)).toEqual({ healthy: false, detail: `http://127.0.0.1:${closed}/ready unreachable: ECONNREFUSED` });
  });
});

describe('the checks before npm start', () => {
  const plan = (redisPort: number, masterPort: number): FleetPlan => ({
    profiles: [],
    external: [{ name: 'redis', image: 'redis:7-alpine', host: '127.0.0.1', ports: [redisPort], usedBy: ['master', 'worker-btc-usd'] }],
    services: [
      {
        name: 'master',
        role: 'master',
        entry: 'master/main.ts',
        args: [],
        nodeFlags: [],
        env: {},
        restart: { mode: 'unless-stopped' },
        oneShot: false,
        waitsFor: [],
        startRank: 2,
        stopGracePeriodMs: 10_000,
        listenPort: masterPort,
      },
    ],
  });

  it('passes when the infrastructure answers and the listen ports are free', async () => {
    const redisStandIn = net.createServer((socket) => socket.end());
    const redisPort = await listen(redisStandIn);
    try {
      expect(await preflight(plan(redisPort, await closedPort()))).toEqual([]);
    } finally {
      await close(redisStandIn);
    }
  });

  it('names a missing service, where it was looked for, who needs it and what to do', async () => {
    const port = await closedPort();
    expect(await checkTcp('127.0.0.1', port)).toBe('ECONNREFUSED');
    const problems = await preflight(plan(port, await closedPort()));
    expect(problems).toEqual([
      {
        service: 'redis',
        message: `Redis (compose service "redis") is not reachable at 127.0.0.1:${port} (ECONNREFUSED); master, worker-btc-usd need it. Start it (e.g. \`redis-server --daemonize yes\`), or run the whole fleet with Docker: docker compose up`,
      },
    ]);
  });

  it('names a listen port that is taken', async () => {
    const squatter = net.createServer();
    const taken = await new Promise<number>((resolve) => squatter.listen(0, '0.0.0.0', () => resolve((squatter.address() as net.AddressInfo).port)));
    const redisStandIn = net.createServer((socket) => socket.end());
    const redisPort = await listen(redisStandIn);
    try {
      expect(await checkPortFree(taken)).toBe('EADDRINUSE');
      expect(await preflight(plan(redisPort, taken))).toEqual([
        { service: 'master', message: `port ${taken}, where master would listen, is not free (EADDRINUSE); stop what uses it or choose another port` },
      ]);
    } finally {
      await close(squatter);
      await close(redisStandIn);
    }
  });
});

describe('the interleaved output', () => {
  function sink() {
    let text = '';
    return {
      stream: new Writable({
        write(chunk, _e, cb) {
          text += chunk.toString();
          cb();
        },
      }),
      text: () => text,
    };
  }

  it('holds a partial line until its newline, then prefixes it', () => {
    const out = sink();
    const output = createFleetOutput({ stdout: out.stream, stderr: out.stream, names: ['master', 'worker-btc-usd'] });
    const w = output.lineWriter('master', 'stdout');
    w.write('hello ');
    expect(out.text()).toBe('');
    w.write('world\nsecond');
    expect(out.text()).toBe('master         | hello world\n');
    w.flush();
    expect(out.text()).toBe('master         | hello world\nmaster         | second\n');
  });

  it('colours the prefix per service and formats JSON log lines on a terminal', () => {
    const out = sink();
    const output = createFleetOutput({
      stdout: out.stream,
      stderr: out.stream,
      names: ['sim', 'master'],
      colour: true,
      formatJson: (line) => `pretty(${(JSON.parse(line) as { msg: string }).msg})\n`,
    });
    output.lineWriter('sim', 'stdout').write('{"msg":"listening"}\nplain text\n');
    output.lineWriter('master', 'stdout').write('{"msg":"ready"}\n');
    expect(out.text()).toBe(
      '\u001b[36msim    |\u001b[0m pretty(listening)\n\u001b[36msim    |\u001b[0m plain text\n\u001b[33mmaster |\u001b[0m pretty(ready)\n',
    );
  });
});
