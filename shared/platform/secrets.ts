/**
 * How secrets are kept out of logs, error messages and `--dry-run` output. One module: the config loader, the error
 * describer, the logger's redaction and the fleet's dry run all use it.
 */

/** What is printed instead of a secret value. */
export const HIDDEN = '(hidden)';

/** `scheme://user:password@`: the password runs to the last `@` before the host (no spaces, no `/`). */
const URL_PASSWORD_RE = /\b([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*):[^\s/]*@/gi;

/** `text` with the password of every URL in it replaced by `***` (`redis://:***@host`, `postgres://app:***@db/x`). */
export function maskUrlPasswords(text: string): string {
  return text.replace(URL_PASSWORD_RE, '$1:***@');
}

/** URL schemes whose scheme and host may be shown for a secret URL (its user, password, path and query never are). */
const URL_SCHEMES = new Set(['http:', 'https:', 'smtp:', 'smtps:', 'redis:', 'rediss:', 'postgres:', 'postgresql:']);

/**
 * The part of a URL safe to show: scheme and host (`https://hooks.example.com`), nothing after it (a webhook URL often
 * carries its token in the path) and never the credentials. Null when `value` is not such a URL.
 */
export function urlSchemeAndHost(value: string): string | null {
  try {
    const url = new URL(value.trim());
    return URL_SCHEMES.has(url.protocol) && url.host !== '' ? `${url.protocol}//${url.host}` : null;
  } catch {
    return null;
  }
}

/**
 * A variable's value as it may be shown. A secret shows at most the scheme and host of a URL, with the rest marked
 * hidden; anything else is shown with URL passwords masked.
 */
export function displayValue(value: string, secret: boolean): string {
  if (!secret) return maskUrlPasswords(value);
  const origin = urlSchemeAndHost(value);
  return origin === null ? HIDDEN : `${origin}/${HIDDEN}`;
}

/**
 * `text` with every occurrence of each secret replaced by `***`. For text a remote party wrote (an SMTP reply, a
 * webhook receiver's answer), which may echo the credentials or the URL it was sent.
 */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so a secret containing another is replaced whole.
  for (const secret of [...secrets].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length)) out = out.split(secret).join('***');
  return out;
}

/**
 * The forms a URL's credentials can take on the wire and in replies: the password (raw and percent-decoded), and the
 * base64 of SMTP AUTH PLAIN and LOGIN, which servers sometimes quote back in their error replies.
 */
export function urlCredentialForms(value: string): string[] {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return [];
  }
  if (url.password === '') return [];
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  return [url.password, pass, b64(pass), b64(`\u0000${user}\u0000${pass}`), b64(`${user}\u0000${user}\u0000${pass}`)];
}
