import pino, { type Logger } from 'pino';

export type { Logger };

/** Paths whose values never reach a log line. */
const REDACT = [
  'password',
  '*.password',
  'smtpUrl',
  '*.smtpUrl',
  'secret',
  '*.secret',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'databaseUrl',
  '*.databaseUrl',
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
  // Synchronous writes to stdout: a line is out of the process when the call returns, so a crash or process.exit never
  // drops or reorders the last lines (the log channel is one of the ways alerts reach people). Costs about 5 us a line.
  return pino(base, options.destination ?? pino.destination({ dest: 1, sync: true }));
}
