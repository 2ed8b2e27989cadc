// The fleet table: every bot from GET /fleet (the workers' heartbeats), with a sparkline of its pair's recent ticks
// from GET /ticks. Bots whose heartbeat expired are shown as stale; degraded, unhealthy and invalid-pair rows stand out.
// Each bot is GET /fleet's own entry (bot_id, status, stale, last_price, last_fetch_at, last_error, ...), read as it is.
import { el, formatAgo, formatPrice } from './format.js';

const SPARK_WINDOW_MS = 10 * 60 * 1000;
const SPARK_POINTS = 300;

function sparkline(ticks) {
  const svgNs = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(svgNs, 'svg');
  svg.setAttribute('class', 'sparkline');
  svg.setAttribute('viewBox', '0 0 120 28');
  svg.setAttribute('preserveAspectRatio', 'none');
  const prices = ticks.map((t) => Number(t.price)).filter(Number.isFinite);
  if (prices.length < 2) {
    svg.setAttribute('aria-label', 'not enough ticks yet');
    return svg;
  }
  const min = Math.min(...prices);
  const max = Math.max(...prices);
  const span = max - min || 1;
  const points = prices.map((p, i) => `${((i / (prices.length - 1)) * 120).toFixed(1)},${(26 - ((p - min) / span) * 24).toFixed(1)}`);
  const line = document.createElementNS(svgNs, 'polyline');
  line.setAttribute('points', points.join(' '));
  svg.append(line);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `${prices.length} ticks from ${min} to ${max}`);
  return svg;
}

/**
 * @param {{ api: object, tbody: HTMLElement, empty: HTMLElement, onBots: (bots: object[]) => void }} deps
 */
export function createFleetTable(deps) {
  let bots = [];
  const ticksByPair = new Map();

  function render() {
    const now = Date.now();
    const rows = bots.map((b) => {
      const shown = b.stale ? 'stale' : b.status;
      const detail = b.stale
        ? `heartbeat expired (last status: ${b.status})`
        : b.last_error
          ? `${b.consecutive_errors} error(s): ${b.last_error}`
          : b.rate_limited
            ? 'slowed by the shared rate budget'
            : '';
      return el(
        'tr',
        { class: `status-${shown}`, 'data-bot-id': b.bot_id, 'data-status': shown },
        el('td', {}, b.bot_id),
        el('td', {}, b.pair),
        el('td', {}, el('span', { class: `badge ${shown}` }, shown), detail ? el('span', { class: 'detail' }, detail) : null),
        el('td', { class: 'num' }, formatPrice(b.last_price)),
        el('td', {}, b.last_fetch_at ? el('time', { datetime: b.last_fetch_at }, formatAgo(b.last_fetch_at, now)) : 'never'),
        el('td', {}, sparkline(ticksByPair.get(b.pair) ?? [])),
      );
    });
    deps.tbody.replaceChildren(...rows);
    deps.empty.hidden = rows.length > 0;
  }

  /** Loads the bots (rendered at once), then their pairs' recent ticks for the sparklines. */
  async function refresh() {
    const body = await deps.api.getJson('/fleet');
    bots = body.bots;
    deps.onBots(bots);
    render();
    void refreshSparklines();
  }

  async function refreshSparklines() {
    const since = String(Date.now() - SPARK_WINDOW_MS);
    const pairs = [...new Set(bots.map((b) => b.pair))];
    await Promise.all(
      pairs.map(async (pair) => {
        try {
          const ticks = await deps.api.getJson('/ticks', { pair, since, limit: SPARK_POINTS });
          ticksByPair.set(pair, ticks.items ?? []);
        } catch {
          ticksByPair.delete(pair);
        }
      }),
    );
    render();
  }

  return {
    refresh,
    /** Re-renders the "time since last fetch" column without asking the server. */
    tick: render,
    get bots() {
      return bots;
    },
  };
}
