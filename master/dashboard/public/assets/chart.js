// The price chart of one pair (uPlot, served by the master from the installed package): ticks as a line, the
// threshold band around the reference price, and alerts as triangles (up or down).
import { formatPrice } from './format.js';
import { DISPLAY_LOCALE } from './locale.js';

export const PRICE_COLOUR = 'rgb(29, 78, 216)';
const BAND_FILL = 'rgba(245, 158, 11, 0.16)';
const BAND_STROKE = 'rgba(180, 83, 9, 0.55)';
const UP_COLOUR = '#0f7a3d';
const DOWN_COLOUR = '#b42318';

/**
 * The reference in force at each tick. A bot measures each move against a reference; the reference an alert was
 * measured against is in force from the previous alert up to that alert, and after the last alert the bot's current
 * reference (its heartbeat) applies. This holds for both reference modes.
 */
export function referenceAt(times, alertsAsc, currentReference) {
  let next = 0;
  return times.map((t) => {
    while (next < alertsAsc.length && alertsAsc[next].t < t) next++;
    if (next < alertsAsc.length) return Number(alertsAsc[next].reference_price);
    return currentReference === undefined ? null : Number(currentReference);
  });
}

/** 24-hour clock labels for time axes (uPlot's default is am/pm). */
function timeAxisValues(_u, splits) {
  return splits.map((v) => (v == null ? '' : new Date(v * 1000).toLocaleTimeString(DISPLAY_LOCALE, { hour: '2-digit', minute: '2-digit', hour12: false })));
}

function sizeOf(container) {
  const width = Math.max(280, Math.floor(container.clientWidth || 600));
  const height = window.matchMedia('(max-width: 600px)').matches ? 240 : window.matchMedia('(min-width: 1000px)').matches ? 440 : 320;
  return { width, height };
}

/** @param {{ container: HTMLElement }} deps */
export function createPriceChart(deps) {
  let plot = null;
  let markers = [];

  function drawMarkers(u) {
    const { ctx } = u;
    ctx.save();
    for (const m of markers) {
      const x = u.valToPos(m.t, 'x', true);
      const y = u.valToPos(m.price, 'y', true);
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      // Smaller on a narrow plot, so a busy hour on a phone does not hide the line under its own markers.
      const s = Math.min(7, Math.max(3.5, u.bbox.width / devicePixelRatio / 110)) * devicePixelRatio;
      ctx.beginPath();
      if (m.direction === 'up') {
        ctx.moveTo(x, y - s);
        ctx.lineTo(x - s, y + s * 0.7);
        ctx.lineTo(x + s, y + s * 0.7);
      } else {
        ctx.moveTo(x, y + s);
        ctx.lineTo(x - s, y - s * 0.7);
        ctx.lineTo(x + s, y - s * 0.7);
      }
      ctx.closePath();
      ctx.fillStyle = m.direction === 'up' ? UP_COLOUR : DOWN_COLOUR;
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = devicePixelRatio;
      ctx.fill();
      ctx.stroke();
    }
    ctx.restore();
  }

  function create(data) {
    const opts = {
      ...sizeOf(deps.container),
      cursor: { drag: { x: true, y: false } },
      legend: { show: true, live: true },
      scales: { x: { time: true } },
      axes: [
        { stroke: '#55606e', grid: { stroke: '#e5e7eb' }, values: timeAxisValues },
        { stroke: '#55606e', grid: { stroke: '#e5e7eb' }, size: 80, values: (_u, vals) => vals.map((v) => formatPrice(String(v))) },
      ],
      series: [
        {},
        { label: 'Price', stroke: PRICE_COLOUR, width: 2, points: { show: false }, value: (_u, v) => (v == null ? '–' : formatPrice(String(v))) },
        { label: 'Band high', stroke: BAND_STROKE, width: 1, dash: [4, 4], points: { show: false }, value: (_u, v) => (v == null ? '–' : formatPrice(String(v))) },
        { label: 'Band low', stroke: BAND_STROKE, width: 1, dash: [4, 4], points: { show: false }, value: (_u, v) => (v == null ? '–' : formatPrice(String(v))) },
      ],
      bands: [{ series: [2, 3], fill: BAND_FILL }],
      hooks: { draw: [drawMarkers] },
    };
    // eslint-disable-next-line no-undef
    plot = new uPlot(opts, data, deps.container);
  }

  window.addEventListener('resize', () => {
    if (plot) plot.setSize(sizeOf(deps.container));
  });

  return {
    /**
     * @param {{ ticks: {at: string, price: string}[], alerts: object[], reference?: string, thresholdPercent?: string }} input
     *   alerts are wire alerts from GET /alerts; reference and thresholdPercent are the bot's current ones (GET /fleet)
     */
    update(input) {
      const times = input.ticks.map((t) => Date.parse(t.at) / 1000);
      const prices = input.ticks.map((t) => Number(t.price));
      const alertsAsc = input.alerts
        .map((a) => ({ ...a, t: Date.parse(a.observed_at) / 1000, price: Number(a.price) }))
        .filter((a) => Number.isFinite(a.t))
        .sort((a, b) => a.t - b.t);
      // The bot's current threshold, else the one the latest alert crossed.
      const threshold = Number(input.thresholdPercent ?? alertsAsc.at(-1)?.threshold_percent ?? NaN);
      const refs = referenceAt(times, alertsAsc, input.reference);
      const high = refs.map((r) => (r == null || !Number.isFinite(threshold) ? null : r * (1 + threshold / 100)));
      const low = refs.map((r) => (r == null || !Number.isFinite(threshold) ? null : r * (1 - threshold / 100)));
      markers = alertsAsc.filter((a) => times.length === 0 || (a.t >= times[0] && a.t <= times.at(-1)));
      const data = [times, prices, high, low];
      if (!plot) create(data);
      else plot.setData(data);
    },
    clear() {
      plot?.destroy();
      plot = null;
      markers = [];
    },
  };
}

/** The small alerts-per-minute chart (bars). */
export function createRateChart(deps) {
  let plot = null;
  function sizeOf2() {
    return { width: Math.max(260, Math.floor(deps.container.clientWidth || 320)), height: 140 };
  }
  window.addEventListener('resize', () => plot?.setSize(sizeOf2()));
  return {
    update(times, counts) {
      const data = [times, counts];
      if (plot) {
        plot.setData(data);
        return;
      }
      // eslint-disable-next-line no-undef
      const bars = uPlot.paths.bars({ size: [0.8, 40] });
      plot = new uPlot(
        {
          ...sizeOf2(),
          legend: { show: false },
          cursor: { show: true, drag: { x: false, y: false } },
          scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
          axes: [
            { stroke: '#55606e', grid: { show: false }, size: 30, values: timeAxisValues },
            { stroke: '#55606e', grid: { stroke: '#e5e7eb' }, size: 36 },
          ],
          series: [{}, { label: 'Alerts', fill: 'rgba(29, 78, 216, 0.75)', stroke: PRICE_COLOUR, paths: bars, points: { show: false } }],
        },
        data,
        deps.container,
      );
    },
  };
}
