// The fleet table: every bot from GET /fleet (the workers' heartbeats), with a sparkline of its pair's recent ticks
// from GET /ticks. Bots whose heartbeat expired are shown as stale; degraded, unhealthy and invalid-pair rows stand out.
// Each bot is GET /fleet's own entry (bot_id, status, stale, last_price, last_fetch_at, last_error, worker_id, source,
// bot_version, ...), read as it is. Runtime bots from GET /bots join it: one no worker holds yet shows as waiting, a
// disabled one as paused; the Worker column says which worker holds which bot (and for compose bots, their service).
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

/** Status and detail of one row: a runtime bot's desired state (paused, waiting) wins over an old heartbeat. */
function describeRow(b, desired) {
  // A bot whose rule is done says why, also once the master has disabled it for that reason.
  if (b && !b.stale && (b.status === 'exhausted' || b.status === 'expired')) return { shown: b.status, detail: b.status_reason ?? '' };
  if (desired && desired.source === 'api' && !desired.enabled) return { shown: 'paused', detail: `paused by ${desired.updated_by ?? 'an operator'}` };
  if (!b && desired?.source === 'compose') return { shown: 'stale', detail: `no heartbeat from ${desired.service ?? 'its compose service'}` };
  if (!b) return { shown: 'waiting', detail: 'waiting for a generic worker to claim it' };
  const shown = b.stale ? 'stale' : b.status;
  const detail = b.stale
    ? `heartbeat expired (last status: ${b.status})`
    : b.last_error
      ? `${b.consecutive_errors} error(s): ${b.last_error}`
      : b.rate_limited
        ? 'slowed by the shared rate budget'
        : b.alerts_suppressed
          ? `${b.alerts_suppressed} alert(s) suppressed by the cooldown`
          : '';
  return { shown, detail };
}

/** The Worker cell: who holds the bot, and how it is declared (compose service, or runtime bot version). */
function workerCell(b, desired) {
  const source = desired?.source ?? b?.source ?? null;
  const holder = b && !b.stale && b.worker_id ? b.worker_id : null;
  let how = '';
  if (source === 'compose') how = `compose${(desired?.service ?? b?.service) ? `: ${desired?.service ?? b?.service}` : ''}`;
  else if (source === 'api') {
    const version = desired?.version ?? b?.bot_version;
    how = `runtime bot${version ? ` v${version}` : ''}`;
    if (desired && b?.bot_version && !b.stale && b.bot_version !== desired.version) how += ` (worker on v${b.bot_version})`;
  }
  return el('td', { class: 'worker' }, holder ?? '–', how ? el('span', { class: 'detail' }, how) : null);
}

/**
 * @param {{ api: object, tbody: HTMLElement, empty: HTMLElement, onBots: (bots: object[]) => void,
 *   controls?: { loadBots: () => Promise<Map<string, object>>, actionsFor: (botId: string) => Node | null, readonly canOperate: boolean },
 *   actionsHead?: HTMLElement, mute?: { buttonsFor: (botId: string) => Node | null } }} deps  mute: the silences' mute buttons
 */
export function createFleetTable(deps) {
  let bots = [];
  let desired = new Map();
  const ticksByPair = new Map();

  function render() {
    const now = Date.now();
    const operate = deps.controls?.canOperate === true;
    if (deps.actionsHead) deps.actionsHead.hidden = !operate;
    const heartbeatIds = new Set(bots.map((b) => b.bot_id));
    const entries = [...bots.map((b) => [b.bot_id, b]), ...[...desired.keys()].filter((id) => !heartbeatIds.has(id)).map((id) => [id, null])];
    // A row rebuilt under the keyboard keeps the focus on the same control.
    const focused = document.activeElement?.closest?.('#fleet-table tr[data-bot-id] button[data-action]');
    const refocus = focused ? { botId: focused.closest('tr').dataset.botId, action: focused.dataset.action } : null;
    const rows = entries.map(([botId, b]) => {
      const d = desired.get(botId);
      const pair = b?.pair ?? d?.pair;
      const { shown, detail } = describeRow(b, d);
      return el(
        'tr',
        {
          class: `status-${shown}`,
          'data-bot-id': botId,
          'data-status': shown,
          'data-worker-id': b && !b.stale ? b.worker_id : undefined,
          'data-source': d?.source ?? b?.source,
          'data-version': d?.version,
        },
        el('td', {}, botId),
        el('td', {}, pair),
        el('td', {}, el('span', { class: `badge ${shown}` }, shown), detail ? el('span', { class: 'detail' }, detail) : null),
        workerCell(b, d),
        el('td', { class: 'num' }, formatPrice(b?.last_price)),
        el('td', {}, b?.last_fetch_at ? el('time', { datetime: b.last_fetch_at }, formatAgo(b.last_fetch_at, now)) : 'never'),
        el('td', {}, sparkline(ticksByPair.get(pair) ?? [])),
        operate ? el('td', { class: 'actions' }, deps.controls.actionsFor(botId), deps.mute?.buttonsFor(botId) ?? null) : null,
      );
    });
    deps.tbody.replaceChildren(...rows);
    deps.empty.hidden = rows.length > 0;
    if (refocus) {
      const row = [...deps.tbody.rows].find((r) => r.dataset.botId === refocus.botId);
      row?.querySelector(`button[data-action="${refocus.action}"]`)?.focus();
    }
  }

  /** Loads the bots (rendered at once), then their pairs' recent ticks for the sparklines. */
  async function refresh() {
    const [body, runtime] = await Promise.all([deps.api.getJson('/fleet'), deps.controls?.loadBots() ?? new Map()]);
    bots = body.bots;
    desired = runtime;
    deps.onBots(bots);
    render();
    void refreshSparklines();
  }

  /** Updates the "time since last fetch" column in place (rebuilding rows every second would steal the focus). */
  function tick() {
    const now = Date.now();
    for (const time of deps.tbody.querySelectorAll('time[datetime]')) time.textContent = formatAgo(time.getAttribute('datetime'), now);
  }

  async function refreshSparklines() {
    const since = String(Date.now() - SPARK_WINDOW_MS);
    const pairs = [...new Set([...bots.map((b) => b.pair), ...[...desired.values()].map((d) => d.pair)])];
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
    tick,
    get bots() {
      return bots;
    },
  };
}
