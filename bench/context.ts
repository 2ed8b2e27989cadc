import type { Figure } from './report';
import type { BenchTargets } from './resources';

export const SECTIONS = ['ingest', 'latency', 'notify', 'api', 'worker', 'control', 'capacity'] as const;
export type SectionName = (typeof SECTIONS)[number];

/** What `npm run bench -- <flags>` asked for. */
export interface BenchOptions {
  readonly only: readonly SectionName[];
  /** Smaller sizes for a smoke run (seconds instead of minutes). */
  readonly quick: boolean;
  /** How long the worker RSS run lasts. */
  readonly workerMinutes: number;
  /** How long each fetch mode of the capacity section is measured (after its warm-up). */
  readonly capacityRunMinutes: number;
  /** The capacity section's memory warm-up before PSS is read. */
  readonly capacityMinutes: number;
  /** Keep (and reuse) the 1M-row API database between runs. */
  readonly cacheApiDb: boolean;
  readonly out: string;
}

export interface SectionContext {
  readonly options: BenchOptions;
  readonly targets: BenchTargets;
  /** Progress line on stderr (the table goes to stdout). */
  log(message: string): void;
}

export interface SectionResult {
  readonly figures: Figure[];
  readonly details: Record<string, unknown>;
}

export type Section = (ctx: SectionContext) => Promise<SectionResult>;
