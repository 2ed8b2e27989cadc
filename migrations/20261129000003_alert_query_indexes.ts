import type { Knex } from 'knex';

/**
 * Indexes for the analysts' queries beyond the time orderings of the first migration (see shared/read-model/alert-queries.ts):
 * - `ordering=(-)change_percent`, overall and per pair: btrees on (change_percent, id) and (pair, change_percent, id),
 *   scanned forwards or backwards, with id as the keyset tie-breaker;
 * - `min_change` (abs(change_percent) >= x): an expression index, which also gives the planner statistics on
 *   abs(change_percent), so a rare large move is found through it instead of by walking the time index.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX alerts_change_percent_idx ON alerts (change_percent, id)');
  await knex.raw('CREATE INDEX alerts_pair_change_percent_idx ON alerts (pair, change_percent, id)');
  await knex.raw('CREATE INDEX alerts_abs_change_percent_idx ON alerts (abs(change_percent))');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS alerts_abs_change_percent_idx');
  await knex.raw('DROP INDEX IF EXISTS alerts_pair_change_percent_idx');
  await knex.raw('DROP INDEX IF EXISTS alerts_change_percent_idx');
}
