import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeliveryError } from './notifier';
import { createWebhookSender } from './webhook-notifier';

describe('when a webhook receiver echoes the request back in its error answer', () => {
  const token = 'T0KEN-path-Hk72';
  const secret = 'signing-key-Pq58';
  let server: http.Server;
  let base: string;
  beforeAll(async () => {
    // A careless receiver: its 404 quotes the path it was called on and the signature header.
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(404).end(`no hook at ${req.url} (signature ${String(req.headers['x-tickwatch-signature'])}, key ${secret})`));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  it('fails with the status and the answer, the path token and the signing key masked', async () => {
    const sender = createWebhookSender({ timeoutMs: 2000 });
    const failure = await sender.send({ url: `${base}/hooks/${token}?key=${token}`, secret }, [], { summary: false, deliveryId: 'notification-1', receiverName: 'hook' }).catch((err: unknown) => err);
    if (!(failure instanceof DeliveryError)) throw failure;
    const message = (failure as DeliveryError).message;
    expect(message).toMatch(/^webhook answered HTTP 404: no hook at \*\*\* \(signature sha256=[0-9a-f]+, key \*\*\*\)$/);
    expect(message).not.toContain(token);
    expect(message).not.toContain(secret);
    expect((failure as DeliveryError).transient).toBe(false);
  });
});
