/**
 * The one duration grammar, for variables, query parameters and compose files alike: one or more `<number><unit>`
 * parts with no spaces, units `us`, `ms`, `s`, `m`, `h`, `d`, `w`. Examples: `500ms`, `90s`, `20m`, `1h`, `1m30s`, `7d`,
 * `2w`, `1.5s`. A part's number has at most 7 integer digits.
 */

const PART_RE = /(\d{1,7}(?:\.\d{1,6})?)(us|ms|s|m|h|d|w)/gy;
const UNIT_MS = { us: 0.001, ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** Milliseconds (rounded to whole ones), or null when `text` is not a duration in the grammar above. */
export function parseDuration(text: string): number | null {
  const s = text.trim();
  if (s === '') return null;
  PART_RE.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  for (let m = PART_RE.exec(s); m; m = PART_RE.exec(s)) {
    total += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
    consumed = PART_RE.lastIndex;
  }
  return consumed === s.length ? Math.round(total) : null;
}
