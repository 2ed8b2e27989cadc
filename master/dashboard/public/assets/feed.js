// The live alert feed: server-sent events from GET /events (fed by the master's Redis publication after each alert is
// stored), newest first. After every (re)connection it fetches the latest stored alerts, so nothing published while
// the stream was down (e.g. a master restart) is missing.
import { el, formatPercent, formatPrice, formatTime } from './format.js';

const MAX_ITEMS = 100;

/**
 * @param {{ api: ReturnType<import('./api.js').createApiClient>, list: HTMLElement, empty: HTMLElement,
 *           setConnection: (state: string, text: string) => void, onAlert: (alert: object) => void }} deps
 */
export function createAlertFeed(deps) {
  const alerts = new Map();
  let source = null;
  let retryTimer = null;

  // Newest first. Only new alerts are inserted (existing items stay), so screen readers announce just the additions.
  const newerFirst = (a, b) => b.observed_at.localeCompare(a.observed_at) || b.id.localeCompare(a.id);

  function itemFor(a, fresh) {
    const arrow = a.direction === 'up' ? '▲' : '▼';
    return el(
      'li',
      { class: `${a.direction}${fresh ? ' fresh' : ''}`, 'data-alert-id': a.id, 'data-pair': a.pair },
      el('span', { class: 'pair' }, `${arrow} ${a.pair}`),
      el('span', { class: 'change', 'aria-label': `${a.direction} ${formatPercent(a.change_percent)}` }, formatPercent(a.change_percent)),
      el('time', { datetime: a.observed_at }, formatTime(a.observed_at)),
      el('span', { class: 'prices' }, `price ${formatPrice(a.price)} · reference ${formatPrice(a.reference_price)} · ${a.bot_id}`),
    );
  }

  /** Adds a wire alert (the same shape from /events and GET /alerts). */
  function add(alert, live) {
    if (!alert?.id || typeof alert.observed_at !== 'string' || alerts.has(alert.id)) return;
    const node = itemFor(alert, live);
    alerts.set(alert.id, { alert, node });
    const before = [...alerts.values()].filter((x) => x.node !== node && newerFirst(alert, x.alert) < 0).sort((x, y) => newerFirst(x.alert, y.alert))[0];
    deps.list.insertBefore(node, before ? before.node : null);
    if (alerts.size > MAX_ITEMS) {
      const oldest = [...alerts.values()].sort((x, y) => newerFirst(x.alert, y.alert)).at(-1);
      oldest.node.remove();
      alerts.delete(oldest.alert.id);
    }
    deps.empty.hidden = true;
    if (live) deps.onAlert(alert);
  }

  async function backfill() {
    try {
      const page = await deps.api.getJson('/alerts', { limit: 50 });
      for (const item of page.items ?? []) add(item, false);
    } catch (err) {
      console.warn('could not load recent alerts', err);
    }
  }

  // A ticket opens one connection, so the browser's own EventSource reconnect (same URL, used ticket) cannot work: on any
  // error the stream is closed here and reopened with a fresh ticket, waiting longer after each failure in a row.
  let failures = 0;
  let generation = 0;

  function retryLater() {
    clearTimeout(retryTimer);
    deps.setConnection('reconnecting', 'Reconnecting…');
    const delay = Math.min(1000 * 2 ** failures, 15_000);
    failures += 1;
    retryTimer = setTimeout(() => void connect(), delay);
  }

  async function connect() {
    clearTimeout(retryTimer);
    source?.close();
    source = null;
    const mine = ++generation;
    let streamUrl;
    try {
      streamUrl = await deps.api.eventsUrl(); // asks for the token on 401
    } catch (err) {
      console.warn('could not get a live feed ticket', err);
      if (mine === generation) retryLater();
      return;
    }
    if (mine !== generation) return;
    const current = new EventSource(streamUrl);
    source = current;
    // 'ready' (not 'open') means the server's Redis subscription is active: from then on no stored alert can be missed,
    // and the backfill picks up anything stored before it.
    current.addEventListener('ready', () => {
      failures = 0;
      deps.setConnection('live', 'Live');
      void backfill();
    });
    current.addEventListener('alert', (event) => {
      try {
        add(JSON.parse(event.data), true);
      } catch (err) {
        console.warn('ignored an unreadable alert event', err);
      }
    });
    current.addEventListener('error', () => {
      if (source !== current) return;
      // The stream dropped (master restart, network) or was refused (ticket, 503 at the connection cap).
      current.close();
      source = null;
      retryLater();
    });
  }

  return {
    start() {
      void connect();
    },
  };
}
