import { startService } from './process';

/** What one `npm run alerts -- ...` run showed: its exit code (or signal) and everything it printed. */
export interface CliRun {
  readonly code: number | string;
  readonly out: string;
}

/** Runs the CLI (`cli/main.ts`) as a real process with `env` and `args`, to its exit. */
export async function runCli(env: Record<string, string>, args: readonly string[]): Promise<CliRun> {
  const proc = startService('cli/main.ts', env, [...args]);
  const code = await proc.exited;
  return { code, out: proc.output() };
}
