/**
 * Compose variable interpolation, as the compose specification defines it for `docker-compose.yml` values:
 * `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`,
 * nested expressions inside defaults (`${A:-${B}}`), and `$$` for a literal `$`.
 *
 * Pure: the caller passes the variables (shell environment over `.env`), so `npm start` and `docker compose` resolve the
 * same file the same way.
 */

/** A variable used without a default while unset: compose substitutes "" and warns; we report it the same way. */
export interface InterpolationResult {
  readonly value: string;
  readonly unset: readonly string[];
}

/** Thrown for `${VAR:?message}` on an unset variable, and for malformed expressions. Names the variable and the text. */
export class InterpolationError extends Error {
  override readonly name = 'InterpolationError';
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*/;

/** Index of the `}` closing the `${` that starts at `open`, honouring nested `${...}`. -1 if unclosed. */
function closingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i += 1) {
    if (text[i] === '$' && text[i + 1] === '$') {
      i += 1;
    } else if (text[i] === '$' && text[i + 1] === '{') {
      depth += 1;
      i += 1;
    } else if (text[i] === '}') {
      depth -= 1;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/**
 * Substitutes every variable in `text`. `vars` gives the value of a variable, `undefined` when unset.
 * @throws InterpolationError on `${VAR:?msg}`/`${VAR?msg}` with the variable unset, or on a malformed `${`.
 */
export function interpolate(text: string, vars: (name: string) => string | undefined): InterpolationResult {
  const unset: string[] = [];
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch !== '$') {
      out += ch;
      i += 1;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      const close = closingBrace(text, i);
      if (close < 0) throw new InterpolationError(`unclosed "\${" in ${JSON.stringify(text)}`);
      out += expand(text.slice(i + 2, close), text, vars, unset);
      i = close + 1;
      continue;
    }
    const name = NAME_RE.exec(text.slice(i + 1))?.[0];
    if (name === undefined) {
      // A lone "$" (e.g. "price in $") stays as written, as compose does.
      out += '$';
      i += 1;
      continue;
    }
    const value = vars(name);
    if (value === undefined) unset.push(name);
    out += value ?? '';
    i += 1 + name.length;
  }
  return { value: out, unset: [...new Set(unset)] };
}

function expand(body: string, whole: string, vars: (name: string) => string | undefined, unset: string[]): string {
  const name = NAME_RE.exec(body)?.[0];
  if (name === undefined) throw new InterpolationError(`invalid variable name in "\${${body}}" (in ${JSON.stringify(whole)})`);
  const rest = body.slice(name.length);
  const value = vars(name);
  if (rest === '') {
    if (value === undefined) unset.push(name);
    return value ?? '';
  }
  const operator = /^(:-|-|:\?|\?|:\+|\+)/.exec(rest)?.[0];
  if (operator === undefined) throw new InterpolationError(`invalid expression "\${${body}}" (in ${JSON.stringify(whole)})`);
  const operand = () => {
    const inner = interpolate(rest.slice(operator.length), vars);
    unset.push(...inner.unset);
    return inner.value;
  };
  const isSet = value !== undefined;
  const isSetNonEmpty = isSet && value !== '';
  switch (operator) {
    case ':-':
      return isSetNonEmpty ? value : operand();
    case '-':
      return isSet ? value : operand();
    case ':?':
    case '?':
      if (operator === ':?' ? isSetNonEmpty : isSet) return value as string;
      throw new InterpolationError(`required variable ${name} is ${isSet ? 'empty' : 'unset'}: ${operand() || 'no message given'}`);
    case ':+':
      return isSetNonEmpty ? operand() : '';
    default:
      return isSet ? operand() : '';
  }
}

/**
 * Interpolates every string in a parsed compose document (keys are left alone, as compose does).
 * Returns the new tree and every variable used unset without a default.
 */
export function interpolateTree(node: unknown, vars: (name: string) => string | undefined): { value: unknown; unset: string[] } {
  const unset = new Set<string>();
  const walk = (n: unknown, path: string): unknown => {
    if (typeof n === 'string') {
      try {
        const r = interpolate(n, vars);
        r.unset.forEach((u) => unset.add(u));
        return r.value;
      } catch (err) {
        if (err instanceof InterpolationError) throw new InterpolationError(`${path}: ${err.message}`);
        throw err;
      }
    }
    if (Array.isArray(n)) return n.map((item, index) => walk(item, `${path}[${index}]`));
    if (n !== null && typeof n === 'object') {
      return Object.fromEntries(Object.entries(n).map(([k, v]) => [k, walk(v, path ? `${path}.${k}` : k)]));
    }
    return n;
  };
  const value = walk(node, '');
  return { value, unset: [...unset] };
}
