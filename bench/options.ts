import path from 'node:path';
import { parseArgs } from 'node:util';
import { SECTIONS, type BenchOptions, type SectionName } from './context';

export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError';
}

export const BENCH_USAGE = `npm run bench -- [--only ${SECTIONS.join(',')}] [--quick] [--worker-minutes N] [--capacity-minutes N] [--capacity-run-minutes N] [--no-cache] [--out FILE]
  --only            comma list of sections to run (default: all)
  --quick           smaller sizes for a smoke run (about 9 minutes in all)
  --worker-minutes  how long the worker RSS run lasts (default 10; 1 with --quick)
  --capacity-minutes      capacity section: warm-up before the PSS reading (default 5; 1 with --quick)
  --capacity-run-minutes  capacity section: how long each of TICKER_FETCH=pair and auto is measured (default 2; 0.5 with --quick)
  --no-cache        build the 1M-row API database afresh and drop it at the end (default: keep and reuse it)
  --out             where the JSON results go (default bench/results.json)`;

/** Parses the bench's flags; any mistake is a BenchUsageError naming the flag and what is allowed. */
export function parseBenchOptions(argv: readonly string[]): BenchOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        only: { type: 'string' },
        quick: { type: 'boolean' },
        'worker-minutes': { type: 'string' },
        'capacity-minutes': { type: 'string' },
        'capacity-run-minutes': { type: 'string' },
        'no-cache': { type: 'boolean' },
        out: { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new BenchUsageError(`${(err as Error).message}\n${BENCH_USAGE}`);
  }
  if (values.help) throw new BenchUsageError(BENCH_USAGE);
  const quick = values.quick === true;
  let only: SectionName[] = [...SECTIONS];
  if (typeof values.only === 'string') {
    const asked = values.only.split(',').map((s) => s.trim()).filter(Boolean);
    const unknown = asked.filter((s) => !(SECTIONS as readonly string[]).includes(s));
    if (asked.length === 0 || unknown.length) throw new BenchUsageError(`--only=${JSON.stringify(values.only)}: expected a comma list of ${SECTIONS.join(', ')}`);
    only = SECTIONS.filter((s) => asked.includes(s));
  }
  let workerMinutes = quick ? 1 : 10;
  if (typeof values['worker-minutes'] === 'string') {
    workerMinutes = Number(values['worker-minutes']);
    if (!Number.isFinite(workerMinutes) || workerMinutes < 0.25 || workerMinutes > 120) {
      throw new BenchUsageError(`--worker-minutes=${JSON.stringify(values['worker-minutes'])}: expected a number of minutes from 0.25 to 120`);
    }
  }
  const minutesFlag = (flag: string, fallback: number, min: number, max: number): number => {
    const text = values[flag];
    if (typeof text !== 'string') return fallback;
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new BenchUsageError(`--${flag}=${JSON.stringify(text)}: expected a number of minutes from ${min} to ${max}`);
    return n;
  };
  return Object.freeze({
    only,
    quick,
    workerMinutes,
    capacityMinutes: minutesFlag('capacity-minutes', quick ? 1 : 5, 0.25, 120),
    capacityRunMinutes: minutesFlag('capacity-run-minutes', quick ? 0.5 : 2, 0.25, 30),
    cacheApiDb: values['no-cache'] !== true,
    out: path.resolve(typeof values.out === 'string' ? values.out : path.join(__dirname, 'results.json')),
  });
}
