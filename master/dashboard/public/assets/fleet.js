// The fleet table: every bot from GET /fleet (the workers' heartbeats), with a sparkline of its pair's recent ticks
// from GET /ticks. Bots whose heartbeat expired are shown as stale; degraded, unhealthy and invalid-pair rows stand out.
import { el, formatAgo, formatPrice } from './format.js';

const SPARK_WINDOW_MS = 10 * 60 * 1000;
const SPARK_POINTS = 300;

/** Reads a fleet entry whatever casing the API used. */
export function normalizeBot(raw) {
  const v = (...names) => {
    for (const n of names) if (raw[n] !== undefined && raw[n] !== null && raw[n] !== '') return raw[n];
    return undefined;
  };
  const config = raw.config ?? {};
  return {
    botId: String(v('botId', 'bot_id') ?? ''),
    pair: String(v('pair') ?? ''),
    status: String(v('status') ?? 'unknown'),
    stale: v('stale') === true || v('stale') === 'true',
    lastPrice: v('lastPrice', 'last_price'),
    lastFetchAt: v('lastFetchAt', 'last_fetch_at'),
    referencePrice: v('referencePrice', 'reference_price'),
    consecutiveErrors: Number(v('consecutiveErrors', 'consecutive_errors') ?? 0),
    lastError: v('lastError', 'last_error'),
    rateLimited: v('rateLimited', 'rate_limited') === true,
    thresholdPercent: config.thresholdPercent ?? config.threshold_percent ?? v('thresholdPercent', 'threshold_percent'),
  };
}

/** Extracts the list of bots from the /fleet answer (a bare array or an object holding one). */
export function fleetItems(body) {
  if (Array.isArray(body)) return body;
  return body?.items ?? body?.bots ?? body?.fleet ?? [];
}

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
        : b.lastError
          ? `${b.consecutiveErrors} error(s): ${b.lastError}`
          : b.rateLimited
            ? 'slowed by the shared rate budget'
            : '';
      return el(
        'tr',
        { class: `status-${shown}`, 'data-bot-id': b.botId, 'data-status': shown },
        el('td', {}, b.botId),
        el('td', {}, b.pair),
        el('td', {}, el('span', { class: `badge ${shown}` }, shown), detail ? el('span', { class: 'detail' }, detail) : null),
        el('td', { class: 'num' }, formatPrice(b.lastPrice)),
        el('td', {}, b.lastFetchAt ? el('time', { datetime: b.lastFetchAt }, formatAgo(b.lastFetchAt, now)) : 'never'),
        el('td', {}, sparkline(ticksByPair.get(b.pair) ?? [])),
      );
    });
    deps.tbody.replaceChildren(...rows);
    deps.empty.hidden = rows.length > 0;
  }

  /** Loads the bots (rendered at once), then their pairs' recent ticks for the sparklines. */
  async function refresh() {
    const body = await deps.api.getJson('/fleet');
    bots = fleetItems(body).map(normalizeBot);
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
