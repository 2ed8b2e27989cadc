import { readFile } from 'node:fs/promises';

/** What /proc says about one process: resident memory and CPU time consumed so far. */
export interface ProcSample {
  /** Resident set size, bytes (VmRSS). */
  readonly rssBytes: number;
  /** User + system CPU time, milliseconds. */
  readonly cpuMs: number;
  /** When sampled (process.hrtime, ms). */
  readonly atMs: number;
}

// Linux reports utime/stime in clock ticks; USER_HZ is 100 on every Linux ABI Node supports.
const CLOCK_TICKS_PER_SECOND = 100;

/** Reads /proc/<pid>/stat and /proc/<pid>/status. Linux only. */
export async function sampleProcess(pid: number): Promise<ProcSample> {
  const [stat, status] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8')]);
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the name, field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rssKb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? Number.NaN);
  return { rssBytes: rssKb * 1024, cpuMs: (ticks * 1000) / CLOCK_TICKS_PER_SECOND, atMs: Number(process.hrtime.bigint()) / 1e6 };
}

/** Total CPU time of the whole machine (all cores, busy and idle), from /proc/stat, in ms. */
export async function machineCpu(): Promise<{ busyMs: number; totalMs: number }> {
  const text = await readFile('/proc/stat', 'utf8');
  const cpu = text.split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = cpu;
  const busy = user + nice + system + irq + softirq + steal;
  return { busyMs: (busy * 1000) / CLOCK_TICKS_PER_SECOND, totalMs: ((busy + idle + iowait) * 1000) / CLOCK_TICKS_PER_SECOND };
}
