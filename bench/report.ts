import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import Table from 'cli-table3';
import { round } from './stats';

/** One line of the bench table: a measured figure, optionally beside its same-run baseline and its target. */
export interface Figure {
  readonly section: string;
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** The same measure for the baseline run in this process (e.g. raw COPY), when there is one. */
  readonly baseline?: { readonly name: string; readonly value: number };
  /** value / baseline.value. */
  readonly ratio?: number;
  /** What the issue asks for, e.g. ">= 0.5x COPY" or "<= 25 ms", and whether this run met it. */
  readonly target?: { readonly text: string; readonly met: boolean };
  /** What limits the figure or how it was measured, when that needs saying. */
  readonly note?: string;
}

export interface BenchReport {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly wallSeconds: number;
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly memoryGb: number; readonly node: string; readonly loadAverage: number[] };
  readonly options: unknown;
  readonly figures: readonly Figure[];
  /** Everything else each section measured (raw samples summaries, counts, settings). */
  readonly details: Record<string, unknown>;
  /** Sections that failed, with the error: a failing section never hides the others' figures. */
  readonly errors: Record<string, string>;
}

/** A figure with its ratio and target verdict computed. `higherIsBetter` decides how the target compares. */
export function figure(input: {
  section: string;
  name: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number };
  target?: { text: string; min?: number; max?: number; ofRatio?: boolean };
  note?: string;
}): Figure {
  const ratio = input.baseline && input.baseline.value > 0 ? input.value / input.baseline.value : undefined;
  let target: Figure['target'];
  if (input.target) {
    const compared = input.target.ofRatio ? ratio : input.value;
    const met =
      compared !== undefined &&
      Number.isFinite(compared) &&
      (input.target.min === undefined || compared >= input.target.min) &&
      (input.target.max === undefined || compared <= input.target.max);
    target = { text: input.target.text, met };
  }
  return { section: input.section, name: input.name, value: input.value, unit: input.unit, baseline: input.baseline, ratio, target, note: input.note };
}

export function machineInfo(): BenchReport['machine'] {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

const fmt = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '' : String(round(v)));

/** The human table: one row per figure. */
export function renderTable(figures: readonly Figure[]): string {
  const table = new Table({
    head: ['section', 'measure', 'value', 'baseline (same run)', 'ratio', 'target', 'met'],
    style: { head: [], border: [] },
    wordWrap: true,
    colWidths: [9, 34, 16, 26, 8, 16, 5],
  });
  for (const f of figures) {
    table.push([
      f.section,
      f.note ? `${f.name}\n(${f.note})` : f.name,
      `${fmt(f.value)} ${f.unit}`,
      f.baseline ? `${f.baseline.name}: ${fmt(f.baseline.value)}` : '',
      f.ratio === undefined ? '' : `${fmt(f.ratio)}x`,
      f.target?.text ?? '',
      f.target ? (f.target.met ? 'yes' : 'NO') : '',
    ]);
  }
  return table.toString();
}

export async function writeReport(file: string, report: BenchReport): Promise<void> {
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
}
