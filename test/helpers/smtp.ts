import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { waitFor } from './wait';

/** A mail as the test SMTP server received it. */
export interface ReceivedMail {
  readonly from: string;
  readonly to: string[];
  /** The raw RFC 5322 message. */
  readonly raw: string;
  /** Decoded by mailparser: subject, text, html, headers. */
  readonly parsed: ParsedMail;
}

/** Lets a test refuse mails: return an SMTP reply code (4xx transient, 5xx permanent) and text, or undefined to accept. */
export type SmtpResponder = (mail: { from: string; to: string[] }) => { code: number; message: string } | undefined;

export interface TestSmtpServer {
  /** smtp://127.0.0.1:<port> (no TLS, no auth), for SMTP_URL. */
  readonly url: string;
  readonly port: number;
  /** Every accepted mail, in arrival order. */
  readonly mails: ReceivedMail[];
  /** Delivery attempts refused by the responder. */
  readonly refused: { to: string[]; code: number }[];
  /** User names of every AUTH the server accepted (only with the `auth` option). */
  readonly logins: string[];
  respond(responder: SmtpResponder | undefined): void;
  waitForMails(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  /** Stops listening (dropping open connections); `start()` listens again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** A real local SMTP server (smtp-server) that records what it receives. `port` 0 picks a free one. */
export async function startSmtpServer(
  options: {
    port?: number;
    responder?: SmtpResponder;
    /**
     * Offer AUTH (PLAIN, LOGIN) without offering STARTTLS, and accept these credentials: the server that would take a
     * password in clear text. Without it the server offers neither AUTH nor STARTTLS.
     */
    auth?: { user: string; pass: string };
  } = {},
): Promise<TestSmtpServer> {
  const mails: ReceivedMail[] = [];
  const logins: string[] = [];
  const refused: { to: string[]; code: number }[] = [];
  let responder = options.responder;
  let server: SMTPServer | undefined;
  let port = options.port ?? 0;

  const make = () =>
    new SMTPServer({
      authOptional: true,
      disabledCommands: options.auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
      allowInsecureAuth: options.auth !== undefined,
      onAuth(auth, _session, callback) {
        if (options.auth && auth.username === options.auth.user && auth.password === options.auth.pass) {
          logins.push(auth.username ?? '');
          callback(null, { user: auth.username });
        } else {
          // A careless server that quotes the refused credentials back, so tests can check they are scrubbed.
          callback(new Error(`Invalid username or password: ${auth.username ?? ''}/${auth.password ?? ''}`));
        }
      },
      logger: false,
      // Stopping must not wait for the client's pooled idle connections.
      closeTimeout: 50,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
          const to = session.envelope.rcptTo.map((r) => r.address);
          const answer = responder?.({ from, to });
          if (answer) {
            refused.push({ to, code: answer.code });
            callback(Object.assign(new Error(answer.message), { responseCode: answer.code }));
            return;
          }
          const raw = Buffer.concat(chunks).toString('utf8');
          simpleParser(raw).then(
            (parsed) => {
              mails.push({ from, to, raw, parsed });
              callback();
            },
            (err: Error) => callback(err),
          );
        });
      },
    });

  const listen = async () => {
    server = make();
    server.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(port, '127.0.0.1', () => resolve());
    });
    port = ((server as unknown as { server: { address(): AddressInfo } }).server.address()).port;
  };
  await listen();

  return {
    get url() {
      return `smtp://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    mails,
    refused,
    logins,
    respond(r) {
      responder = r;
    },
    waitForMails(count, timeoutMs = 10_000) {
      return waitFor(`${count} mail(s)`, () => (mails.length >= count ? mails.slice() : null), { timeoutMs });
    },
    async stop() {
      const s = server;
      server = undefined;
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    async start() {
      if (!server) await listen();
    },
  };
}
