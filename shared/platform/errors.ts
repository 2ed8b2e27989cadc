import { maskUrlPasswords } from './secrets';

/**
 * The few error kinds that mean something to an operator. Each carries the underlying `cause`.
 */

/** Invalid configuration: the process must not start. `main` turns it into exit code 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    /** Every problem found, one line each, naming the variable, its value and what is allowed. */
    readonly problems: readonly string[] = [message],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Turns anything thrown into an `Error`, keeping the original as `cause` when it was not one. */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch {
    text = String(value);
  }
  return new Error(`Non-error thrown: ${text}`, { cause: value });
}

/**
 * A short, single-line description of an error for logs, status hashes and database columns. A URL in it never shows
 * its password (drivers may echo the connection URL they were given).
 */
export function describeError(value: unknown): string {
  const err = toError(value);
  const code = (err as { code?: unknown }).code;
  const text = maskUrlPasswords(`${err.name === 'Error' ? '' : `${err.name}: `}${err.message}`.replace(/\s+/g, ' ').trim());
  return (typeof code === 'string' && !text.includes(code) ? `${code}: ${text}` : text).slice(0, 500);
}
