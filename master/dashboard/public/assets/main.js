// Tickwatch dashboard: wires the sections together. Plain ES modules served by the master; nothing is fetched from
// anywhere else.
import { createApiClient } from './api.js';
import { createAlertFeed } from './feed.js';
import { createFleetTable } from './fleet.js';
import { createBotControls } from './bots.js';
import { createSilences } from './silences.js';
import { createPriceChart } from './chart.js';
import { createStatsPanel } from './stats.js';
import { createHistory } from './history.js';
import { every, el } from './format.js';

const $ = (id) => document.getElementById(id);

const FLEET_REFRESH_MS = 5000;
const STATS_REFRESH_MS = 10_000;
const CHART_REFRESH_MS = 5000;

function setConnection(state, text) {
  const node = $('connection');
  node.dataset.state = state;
  node.textContent = text;
}

/** Shows the token form and resolves with the token typed into it. */
function askForToken(reason) {
  const panel = $('token-panel');
  const form = $('token-form');
  const input = $('token-input');
  panel.hidden = false;
  document.body.classList.add('locked');
  setConnection('locked', 'Token needed');
  $('token-error').textContent = reason || '';
  input.value = '';
  input.focus();
  return new Promise((resolve) => {
    form.addEventListener(
      'submit',
      (event) => {
        event.preventDefault();
        panel.hidden = true;
        document.body.classList.remove('locked');
        setConnection('connecting', 'Connecting…');
        resolve(input.value.trim());
      },
      { once: true },
    );
  });
}

async function start() {
  const api = createApiClient({ askForToken });
  const chart = createPriceChart({ container: $('price-chart') });
  const pairSelect = $('chart-pair');
  const windowSelect = $('chart-window');
  let bots = [];

  const knownPairs = new Set();
  function offerPairs(pairs) {
    const fresh = pairs.filter((p) => p && !knownPairs.has(p));
    if (fresh.length === 0) return;
    for (const p of fresh) knownPairs.add(p);
    const current = pairSelect.value;
    const options = [...knownPairs].sort().map((p) => el('option', { value: p }, p));
    pairSelect.replaceChildren(el('option', { value: '' }, 'Choose a pair'), ...options);
    // Show something at once: the pair named in the address (#pair=BTC-USD), else the first one, unless one is chosen.
    const wanted = new URLSearchParams(location.hash.slice(1)).get('pair');
    pairSelect.value = current || (wanted && knownPairs.has(wanted) ? wanted : [...knownPairs].sort()[0]);
    if (!current) void drawChart().catch((err) => console.warn('chart failed', err));
    historyPanel.setPairs([...knownPairs]);
  }

  async function drawChart() {
    const pair = pairSelect.value;
    const container = $('price-chart');
    if (!pair) {
      chart.clear();
      container.setAttribute('aria-label', 'Price chart: choose a pair');
      return;
    }
    const sinceMs = Date.now() - Number(windowSelect.value);
    const [ticks, alerts] = await Promise.all([
      api.getJson('/ticks', { pair, since: String(sinceMs), limit: 5000 }),
      api.getJson('/alerts', { pair, since: new Date(sinceMs).toISOString(), limit: 1000 }),
    ]);
    if (pairSelect.value !== pair) return; // the viewer chose another pair meanwhile
    const bot = bots.find((b) => b.pair === pair && !b.stale) ?? bots.find((b) => b.pair === pair);
    chart.update({
      ticks: ticks.items ?? [],
      alerts: alerts.items ?? [],
      reference: bot?.reference_price ?? undefined,
      thresholdPercent: bot?.config?.thresholdPercent,
    });
    container.dataset.pair = pair;
    container.dataset.points = String((ticks.items ?? []).length);
    container.setAttribute('aria-label', `Price chart of ${pair}: ${(ticks.items ?? []).length} ticks, ${(alerts.items ?? []).length} alerts`);
  }

  const controls = createBotControls({
    api,
    toolbar: $('bot-toolbar'),
    addButton: $('bot-add'),
    form: $('bot-form'),
    error: $('bot-error'),
    onChanged: () => fleet.refresh(),
  });
  const silences = createSilences({
    api,
    tbody: $('silences-table').tBodies[0],
    empty: $('silences-empty'),
    error: $('silences-error'),
    canOperate: () => controls.canOperate,
    onChanged: () => fleet.refresh(),
  });
  const fleet = createFleetTable({
    api,
    tbody: $('fleet-table').tBodies[0],
    empty: $('fleet-empty'),
    controls,
    mute: silences,
    actionsHead: $('fleet-actions-head'),
    onBots(list) {
      bots = list;
      offerPairs(list.map((b) => b.pair));
    },
  });
  const stats = createStatsPanel({ api, tbody: $('stats-table').tBodies[0], rateContainer: $('rate-chart'), onPairs: offerPairs });
  const historyPanel = createHistory({
    api,
    form: $('history-filters'),
    tbody: $('history-table').tBodies[0],
    error: $('history-error'),
    prev: $('history-prev'),
    next: $('history-next'),
    page: $('history-page'),
    csv: $('csv-link'),
  });
  const feed = createAlertFeed({
    api,
    list: $('feed'),
    empty: $('feed-empty'),
    setConnection,
    onAlert(alert) {
      offerPairs([alert.pair]);
      if (alert.pair === pairSelect.value) void drawChart().catch((err) => console.warn('chart refresh failed', err));
    },
  });

  pairSelect.addEventListener('change', () => {
    // Keep the choice in the address so a reload or a shared link shows the same pair.
    window.history.replaceState(null, '', pairSelect.value ? `#pair=${encodeURIComponent(pairSelect.value)}` : location.pathname);
    void drawChart().catch((err) => console.warn('chart failed', err));
  });
  windowSelect.addEventListener('change', () => void drawChart().catch((err) => console.warn('chart failed', err)));

  // The first request asks for a token if the API wants one, before the live stream is opened with it.
  // Who the token is (GET /me) decides whether the fleet table offers bot controls (operators only).
  await controls.loadScope();
  await silences.refresh();
  await fleet.refresh().catch((err) => console.warn('fleet failed', err));
  feed.start();
  every(FLEET_REFRESH_MS, () => fleet.refresh(), { immediate: false });
  every(FLEET_REFRESH_MS, () => silences.refresh(), { immediate: false });
  every(STATS_REFRESH_MS, () => stats.refresh());
  every(CHART_REFRESH_MS, () => drawChart(), { immediate: false });
  setInterval(() => fleet.tick(), 1000);
  await historyPanel.load();
}

void start();
