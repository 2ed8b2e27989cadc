/**
 * A request parameter that cannot be served. The API answers it with 400 and the body
 * `{ "error": "bad_request", "parameter": ..., "value": ..., "allowed": ... }`; the CLI prints the same facts and exits 2.
 */
export class BadRequestError extends Error {
  override readonly name = 'BadRequestError';
  constructor(
    /** The query parameter (or path parameter, or header) at fault. */
    readonly parameter: string,
    /** What the client sent (as received: a string, a list of strings, or undefined). */
    readonly value: unknown,
    /** What would have been accepted, in words (or a list of allowed names). */
    readonly allowed: string | readonly string[],
  ) {
    super(`${parameter}=${JSON.stringify(value)} is invalid: expected ${Array.isArray(allowed) ? `one of ${allowed.join(', ')}` : allowed}`);
  }

  /** The JSON body of the 400 answer. */
  toJSON(): { error: 'bad_request'; parameter: string; value: unknown; allowed: string | readonly string[]; message: string } {
    return { error: 'bad_request', parameter: this.parameter, value: this.value, allowed: this.allowed, message: this.message };
  }
}
