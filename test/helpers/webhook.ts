import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from './wait';

/** One request the receiver got. */
export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** The raw body, byte for byte (what a signature covers). */
  readonly body: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: unknown;
  /** The status this receiver answered. */
  readonly status: number;
}

/** Chooses the answer to the n-th request since `respond()` was called (0-based): a status code, optionally after a delay (to provoke timeouts). */
export type WebhookResponder = (request: { index: number; body: string }) => number | { status: number; delayMs?: number; headers?: Record<string, string> };

export interface TestWebhookReceiver {
  /** http://127.0.0.1:<port>/hook */
  readonly url: string;
  readonly requests: ReceivedRequest[];
  respond(responder: WebhookResponder): void;
  waitForRequests(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  stop(): Promise<void>;
}

/** A real local HTTP server recording every request; answers 200 unless told otherwise. */
export async function startWebhookReceiver(options: { responder?: WebhookResponder } = {}): Promise<TestWebhookReceiver> {
  const requests: ReceivedRequest[] = [];
  let responder: WebhookResponder = options.responder ?? (() => 200);
  let index = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const answer = responder({ index: index++, body });
      const { status, delayMs = 0, headers = {} } = typeof answer === 'number' ? { status: answer } : answer;
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const reply = () => {
        requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, json, status });
        res.writeHead(status, { 'content-type': 'text/plain', ...headers }).end(status < 300 ? 'ok' : `status ${status}`);
      };
      if (delayMs > 0) setTimeout(reply, delayMs);
      else reply();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    respond(r) {
      responder = r;
      index = 0;
    },
    waitForRequests(count, timeoutMs = 10_000) {
      return waitFor(`${count} webhook request(s)`, () => (requests.length >= count ? requests.slice() : null), { timeoutMs });
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
