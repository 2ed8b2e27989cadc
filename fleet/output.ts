import { Writable } from 'node:stream';

/**
 * Interleaves the output of every service the way `docker compose up` does: each line prefixed by its service name,
 * padded to a common width, coloured per service when the output is a terminal. On a terminal, pino JSON lines are
 * pretty-printed too (services log JSON because their own stdout is a pipe).
 */
export interface FleetOutput {
  /** A line-oriented sink for one service's stream. Partial lines are held until their newline (or `flush`). */
  lineWriter(service: string, stream: 'stdout' | 'stderr'): LineWriter;
  /** A Writable for one service's stream (e.g. a pino destination). */
  writable(service: string, stream: 'stdout' | 'stderr'): Writable;
}

export interface LineWriter {
  write(chunk: string | Buffer): void;
  /** Writes a held partial line, if any. */
  flush(): void;
}

export interface FleetOutputOptions {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Every name that will be printed, to pad the prefixes to one width. */
  readonly names: readonly string[];
  /** ANSI colours. @defaultValue false */
  readonly colour?: boolean;
  /** Formats one JSON log line for people; returns undefined to print the line as it is. */
  readonly formatJson?: (line: string) => string | undefined;
}

const COLOURS = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94];

export function createFleetOutput(options: FleetOutputOptions): FleetOutput {
  const width = Math.max(...options.names.map((n) => n.length), 5);
  const colourOf = new Map<string, number>();
  const prefixOf = (service: string) => {
    const padded = service.padEnd(width);
    if (!options.colour) return `${padded} | `;
    let code = colourOf.get(service);
    if (code === undefined) {
      code = COLOURS[colourOf.size % COLOURS.length] as number;
      colourOf.set(service, code);
    }
    return `\u001b[${code}m${padded} |\u001b[0m `;
  };
  const emit = (service: string, stream: 'stdout' | 'stderr', line: string) => {
    const text = line.startsWith('{') && options.formatJson ? (options.formatJson(line) ?? line) : line;
    const prefix = prefixOf(service);
    const out = text
      .replace(/\n+$/, '')
      .split('\n')
      .map((l) => `${prefix}${l}\n`)
      .join('');
    (stream === 'stdout' ? options.stdout : options.stderr).write(out);
  };
  const lineWriter = (service: string, stream: 'stdout' | 'stderr'): LineWriter => {
    let pending = '';
    return {
      write(chunk) {
        pending += chunk.toString();
        let newline = pending.indexOf('\n');
        while (newline >= 0) {
          emit(service, stream, pending.slice(0, newline).replace(/\r$/, ''));
          pending = pending.slice(newline + 1);
          newline = pending.indexOf('\n');
        }
      },
      flush() {
        if (pending !== '') emit(service, stream, pending);
        pending = '';
      },
    };
  };
  return {
    lineWriter,
    writable(service, stream) {
      const writer = lineWriter(service, stream);
      return new Writable({
        write(chunk, _encoding, callback) {
          writer.write(chunk as Buffer);
          callback();
        },
        final(callback) {
          writer.flush();
          callback();
        },
      });
    },
  };
}

/**
 * pino-pretty's formatter for JSON log lines, if pino-pretty is installed (it is a dev dependency: present after
 * `npm ci`, absent in the production image, where nobody runs the local runner).
 */
export function loadPrettyFormatter(): ((line: string) => string | undefined) | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { prettyFactory } = require('pino-pretty') as { prettyFactory: (o: object) => (line: string) => string };
    const pretty = prettyFactory({ colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' });
    return (line) => {
      try {
        JSON.parse(line);
      } catch {
        return undefined;
      }
      return pretty(line);
    };
  } catch {
    return undefined;
  }
}
