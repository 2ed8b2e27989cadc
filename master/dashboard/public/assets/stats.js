// Statistics: alerts per pair over the last 20 minutes (GET /stats?window=20m) and alerts per minute over the last
// hour (GET /stats/timeseries?bucket=1m) as a small bar chart.
import { el, formatDecimal } from './format.js';
import { createRateChart } from './chart.js';

/** @param {{ api: object, tbody: HTMLElement, rateContainer: HTMLElement, onPairs: (pairs: string[]) => void }} deps */
export function createStatsPanel(deps) {
  const rate = createRateChart({ container: deps.rateContainer });

  async function refreshTable() {
    const body = await deps.api.getJson('/stats', { window: '20m' });
    const pairs = (body.pairs ?? []).slice().sort((a, b) => Number(b.count) - Number(a.count) || a.pair.localeCompare(b.pair));
    const top = Math.max(1, ...pairs.map((p) => Number(p.count)));
    const rows = pairs.map((p) => {
      const largest = p.max_abs_change_percent;
      const bar = el('span', { class: 'bar', 'aria-hidden': 'true' });
      // Through the CSSOM: the page's Content-Security-Policy refuses style="..." attributes.
      bar.style.width = `${Math.round((Number(p.count) / top) * 60)}px`;
      return el(
        'tr',
        { 'data-pair': p.pair },
        el('td', {}, p.pair),
        el('td', { class: 'num' }, bar, String(p.count)),
        el('td', { class: 'num dir-up' }, String(p.up ?? 0)),
        el('td', { class: 'num dir-down' }, String(p.down ?? 0)),
        el('td', { class: 'num' }, largest === null ? '–' : `${formatDecimal(largest, 4)} %`),
      );
    });
    const overall = body.overall;
    if (overall && pairs.length > 1) {
      rows.push(
        el(
          'tr',
          { class: 'total' },
          el('th', { scope: 'row' }, 'All pairs'),
          el('td', { class: 'num' }, String(overall.count)),
          el('td', { class: 'num dir-up' }, String(overall.up ?? 0)),
          el('td', { class: 'num dir-down' }, String(overall.down ?? 0)),
          el('td', { class: 'num' }, overall.max_abs_change_percent == null ? '–' : `${formatDecimal(overall.max_abs_change_percent, 4)} %`),
        ),
      );
    }
    if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 5, class: 'empty' }, 'No alerts in the last 20 minutes.')));
    deps.tbody.replaceChildren(...rows);
    deps.onPairs(pairs.map((p) => p.pair));
  }

  async function refreshRate() {
    const body = await deps.api.getJson('/stats/timeseries', { bucket: '1m', since: '1h' });
    const points = body.points;
    const times = points.map((p) => Date.parse(p.t) / 1000);
    const counts = points.map((p) => Number(p.count));
    rate.update(times, counts);
  }

  return {
    async refresh() {
      await Promise.all([refreshTable(), refreshRate()]);
    },
  };
}
