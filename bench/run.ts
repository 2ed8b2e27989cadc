import { describeError } from '../shared/platform/errors';
import type { BenchOptions, Section, SectionContext, SectionName } from './context';
import { machineInfo, renderTable, writeReport, type BenchReport, type Figure } from './report';
import { benchTargets } from './resources';

/**
 * Runs the asked-for sections one after another (never in parallel: each is measured against its own baseline on a
 * quiet-as-possible machine), prints the table and writes the JSON. A failing section is reported, not fatal.
 */
export async function runBench(options: BenchOptions, sections: Record<SectionName, Section>, out: { log(line: string): void; print(text: string): void }): Promise<BenchReport> {
  const started = new Date();
  const startedNs = process.hrtime.bigint();
  const ctx: SectionContext = { options, targets: benchTargets(), log: (m) => out.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}`) };
  ctx.log(`sections ${options.only.join(', ')}${options.quick ? ' (quick)' : ''}; worker run ${options.workerMinutes} min; results -> ${options.out}`);
  const figures: Figure[] = [];
  const details: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const name of options.only) {
    const t = process.hrtime.bigint();
    try {
      const result = await sections[name](ctx);
      figures.push(...result.figures);
      details[name] = { ...result.details, sectionSeconds: Math.round(Number(process.hrtime.bigint() - t) / 1e7) / 100 };
    } catch (err) {
      errors[name] = describeError(err);
      ctx.log(`${name} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
  const report: BenchReport = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    wallSeconds: Math.round(Number(process.hrtime.bigint() - startedNs) / 1e7) / 100,
    machine: machineInfo(),
    options,
    figures,
    details,
    errors,
  };
  out.print(renderTable(figures));
  for (const [name, error] of Object.entries(errors)) out.print(`section ${name} failed: ${error}`);
  out.print(`wall-clock ${report.wallSeconds} s; figures in ${options.out}`);
  await writeReport(options.out, report);
  return report;
}
