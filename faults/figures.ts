/**
 * Each fault case prints exactly one line of figures, so a run of the suite reads as a table:
 *   FAULT <case> | produced=... stored=... duplicates=... lost=... recovery_ms=... | <notes>
 */
export function printFigures(caseName: string, figures: Record<string, string | number>, note = ''): void {
  const body = Object.entries(figures)
    .map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(1) : v}`)
    .join(' ');
  process.stdout.write(`FAULT ${caseName} | ${body}${note ? ` | ${note}` : ''}\n`);
}
