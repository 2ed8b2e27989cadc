import { writeSync } from 'node:fs';
import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Paths whose values never reach a log line: every secret variable under its config field name, at the top level and
 * one level down (`{ email: { smtpUrl } }`), and inside a logged config object. Error texts are masked separately
 * (describeError hides URL passwords); no code logs a secret on purpose, so this is the net under that rule.
 */
const SECRET_FIELDS = ['password', 'pass', 'secret', 'token', 'apiToken', 'authorization', 'cookie', 'smtpUrl', 'databaseUrl', 'redisUrl', 'webhookUrl', 'webhookSecret'];
const REDACT = [
  ...SECRET_FIELDS.flatMap((f) => [f, `*.${f}`]),
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'config.databaseUrl',
  'config.redisUrl',
  'config.email.smtpUrl',
  'config.webhook.url',
  'config.webhook.secret',
  'config.api.token',
];

/**
 * The one way services make a logger: JSON lines for machines, pretty output only on a TTY, secrets redacted.
 * `name` is the service (worker, master, ...).
 */
export function createLogger(options: { name: string; level?: string; pretty?: boolean; destination?: pino.DestinationStream }): Logger {
  const pretty = options.pretty ?? (process.stdout.isTTY === true && !options.destination);
  const base: pino.LoggerOptions = {
    name: options.name,
    level: options.level ?? 'info',
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } });
  }
  if (options.destination) return pino(base, options.destination);
  return pino(base, new ServiceDestination(pino.destination({ dest: 1, sync: false }), 1));
}

type SonicBoom = ReturnType<typeof pino.destination>;

/**
 * Lines go to stdout asynchronously (sonic-boom coalesces them into few writes and never blocks the event loop on a
 * full pipe, where a synchronous writer would sleep and retry). `close()` waits for every line to be written; after it,
 * any late line is written synchronously, so nothing logged before process.exit is lost or reordered.
 */
class ServiceDestination implements pino.DestinationStream {
  private closed: Promise<void> | undefined;
  /** 'async': through `inner`; 'held': `inner` is finishing its writes, new lines wait; 'direct': written at once. */
  private mode: 'async' | 'held' | 'direct' = 'async';
  private held: string[] = [];

  /** `inner`: an asynchronous sonic-boom writing to the file descriptor `fd`. */
  constructor(
    private readonly inner: SonicBoom,
    private readonly fd: number,
  ) {}

  write(line: string): void {
    if (this.mode === 'async') this.inner.write(line);
    else if (this.mode === 'held') this.held.push(line);
    else this.writeDirect(line);
  }

  private writeDirect(text: string): void {
    try {
      writeSync(this.fd, text);
    } catch {
      // stdout is gone (EPIPE, or full while exiting): nothing left to tell
    }
  }

  close(timeoutMs: number): Promise<void> {
    const inner = this.inner;
    this.closed ??= new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.mode !== 'held') return;
        this.mode = 'direct';
        if (this.held.length > 0) this.writeDirect(this.held.join(''));
        this.held = [];
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.mode = 'held';
      inner.once('close', done);
      inner.once('error', done);
      inner.end();
    });
    return this.closed;
  }
}

/**
 * Waits (at most `timeoutMs`) until every line logged so far is written out. Call it right before process.exit: an
 * asynchronous write still in flight would otherwise be lost, or land after the lines pino flushes on exit.
 */
export function flushLogger(logger: Logger, timeoutMs = 2000): Promise<void> {
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
  return stream instanceof ServiceDestination ? stream.close(timeoutMs) : Promise.resolve();
}
