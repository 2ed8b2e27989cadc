import fc from 'fast-check';
import { interpolate, interpolateTree, InterpolationError } from './interpolate';

const vars = (env: Record<string, string>) => (name: string) => env[name];

describe('compose variable interpolation', () => {
  it('substitutes ${VAR} and $VAR from the variables', () => {
    expect(interpolate('redis://${HOST}:$PORT/0', vars({ HOST: 'redis', PORT: '6379' })).value).toBe('redis://redis:6379/0');
  });

  it('uses the default of ${VAR:-default} when the variable is unset or empty, and of ${VAR-default} only when unset', () => {
    expect(interpolate('${A:-x}', vars({})).value).toBe('x');
    expect(interpolate('${A:-x}', vars({ A: '' })).value).toBe('x');
    expect(interpolate('${A-x}', vars({ A: '' })).value).toBe('');
    expect(interpolate('${A-x}', vars({})).value).toBe('x');
    expect(interpolate('${A:-x}', vars({ A: 'set' })).value).toBe('set');
  });

  it('keeps the colon inside a default such as a URL', () => {
    expect(interpolate('${TICKER_BASE_URL:-https://api.uphold.com/v0/ticker}', vars({})).value).toBe('https://api.uphold.com/v0/ticker');
  });

  it('expands nested expressions in defaults', () => {
    expect(interpolate('${A:-${B:-deep}}', vars({})).value).toBe('deep');
    expect(interpolate('${A:-${B}}', vars({ B: 'b' })).value).toBe('b');
  });

  it('gives the alternative of ${VAR:+alt} only when the variable is set and not empty', () => {
    expect(interpolate('${A:+on}', vars({ A: '1' })).value).toBe('on');
    expect(interpolate('${A:+on}', vars({ A: '' })).value).toBe('');
    expect(interpolate('${A+on}', vars({ A: '' })).value).toBe('on');
  });

  it('fails on ${VAR:?message} with the variable unset, naming it and quoting the message', () => {
    expect(() => interpolate('${API_TOKEN:?set a token}', vars({}))).toThrow(new InterpolationError('required variable API_TOKEN is unset: set a token'));
    expect(() => interpolate('${API_TOKEN:?set a token}', vars({ API_TOKEN: '' }))).toThrow(/API_TOKEN is empty/);
    expect(interpolate('${API_TOKEN?x}', vars({ API_TOKEN: '' })).value).toBe('');
  });

  it('writes $$ as a literal dollar and leaves a lone $ alone', () => {
    expect(interpolate('pg_isready -U $${POSTGRES_USER}', vars({ POSTGRES_USER: 'nope' })).value).toBe('pg_isready -U ${POSTGRES_USER}');
    expect(interpolate('costs 5 $ or $1', vars({})).value).toBe('costs 5 $ or $1');
  });

  it('reports variables used unset without a default (compose substitutes "" and warns)', () => {
    const r = interpolate('${A}-${B:-b}-$C', vars({ C: 'c' }));
    expect(r).toEqual({ value: '-b-c', unset: ['A'] });
  });

  it('refuses malformed expressions with the text that is wrong', () => {
    expect(() => interpolate('${A', vars({}))).toThrow(/unclosed/);
    expect(() => interpolate('${1A}', vars({}))).toThrow(/invalid variable name/);
    expect(() => interpolate('${A*b}', vars({}))).toThrow(/invalid expression/);
  });

  it('leaves any text without a $ exactly as it was', () => {
    fc.assert(
      fc.property(fc.string().filter((s) => !s.includes('$')), (s) => {
        expect(interpolate(s, vars({ A: 'x' })).value).toBe(s);
      }),
    );
  });

  it('interpolates every string in a document, naming the path of a bad one', () => {
    const doc = { services: { w: { environment: { PAIR: '${PAIR:-BTC-USD}', N: 5 }, command: ['node', '$ENTRY'] } } };
    expect(interpolateTree(doc, vars({ ENTRY: 'dist/worker/main.js' })).value).toEqual({
      services: { w: { environment: { PAIR: 'BTC-USD', N: 5 }, command: ['node', 'dist/worker/main.js'] } },
    });
    expect(() => interpolateTree({ services: { w: { image: '${TAG:?needed}' } } }, vars({}))).toThrow(/services\.w\.image: required variable TAG/);
  });
});
