import { DateTime } from 'luxon';
import { Decimal } from '../../shared/contract/decimal';
import type { QuietHours, ReceiverMatch } from '../../shared/read-model/receiver-settings';

/** What routing looks at in an alert. */
export interface RoutedAlert {
  readonly pair: string;
  readonly direction: 'up' | 'down';
  /** Signed exact decimal text. */
  readonly changePercent: string;
}

/**
 * True when a receiver's match takes the alert: every condition given holds (pair in `pairs`, direction in
 * `directions`, |change_percent| >= `min_change`, compared exactly in decimals). An empty match takes every alert.
 */
export function receiverMatches(match: ReceiverMatch, alert: RoutedAlert): boolean {
  if (match.pairs && !match.pairs.includes(alert.pair)) return false;
  if (match.directions && !match.directions.includes(alert.direction)) return false;
  if (match.min_change !== undefined && new Decimal(alert.changePercent).abs().lt(new Decimal(match.min_change))) return false;
  return true;
}

const hm = (text: string) => ({ hour: Number(text.slice(0, 2)), minute: Number(text.slice(3, 5)) });

/**
 * When the quiet period holding `now` ends, or null when `now` is outside quiet hours. Wall-clock times in the
 * receiver's zone (luxon): a period that crosses midnight (22:00-07:00) starts on one local day and ends on the next.
 * Across a DST change the local times keep their meaning (a night of 22:00-05:00 lasts 6 or 8 hours then); a start or
 * end that falls in the skipped hour is shifted by the gap (01:30 on a night that jumps from 01:00 to 02:00 is 02:30),
 * and in the repeated hour the earlier instant counts.
 */
export function quietPeriodEnd(quiet: QuietHours, now: Date): Date | null {
  const local = DateTime.fromJSDate(now, { zone: quiet.tz });
  if (!local.isValid) return null;
  const start = hm(quiet.start);
  const end = hm(quiet.end);
  const crosses = quiet.end < quiet.start;
  // The period that started yesterday (only one crossing midnight can still run) and the one starting today.
  for (const dayOffset of crosses ? [-1, 0] : [0]) {
    const day = local.startOf('day').plus({ days: dayOffset });
    const from = day.set(start);
    const to = day.plus({ days: crosses ? 1 : 0 }).set(end);
    if (local >= from && local < to) return to.toJSDate();
  }
  return null;
}
