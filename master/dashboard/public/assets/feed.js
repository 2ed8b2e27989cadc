// The live alert feed: server-sent events from GET /events (fed by the master's Redis publication after each alert is
// stored), newest first. After every (re)connection it fetches the latest stored alerts, so nothing published while
// the stream was down (e.g. a master restart) is missing.
import { el, formatPercent, formatPrice, formatTime, normalizeAlert } from './format.js';

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
  const newerFirst = (a, b) => b.observedAt.localeCompare(a.observedAt) || b.id.localeCompare(a.id);

  function itemFor(a, fresh) {
    const arrow = a.direction === 'up' ? '▲' : '▼';
    return el(
      'li',
      { class: `${a.direction}${fresh ? ' fresh' : ''}`, 'data-alert-id': a.id, 'data-pair': a.pair },
      el('span', { class: 'pair' }, `${arrow} ${a.pair}`),
      el('span', { class: 'change', 'aria-label': `${a.direction} ${formatPercent(a.changePercent)}` }, formatPercent(a.changePercent)),
      el('time', { datetime: a.observedAt }, formatTime(a.observedAt)),
      el('span', { class: 'prices' }, `price ${formatPrice(a.price)} · reference ${formatPrice(a.referencePrice)} · ${a.botId}`),
    );
  }

  function add(raw, live) {
    const alert = normalizeAlert(raw);
    if (!alert.id || alerts.has(alert.id)) return;
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

  function connect() {
    clearTimeout(retryTimer);
    source?.close();
    source = new EventSource(deps.api.eventsUrl());
    // 'ready' (not 'open') means the server's Redis subscription is active: from then on no stored alert can be missed,
    // and the backfill picks up anything stored before it.
    source.addEventListener('ready', () => {
      deps.setConnection('live', 'Live');
      void backfill();
    });
    source.addEventListener('alert', (event) => {
      try {
        add(JSON.parse(event.data), true);
      } catch (err) {
        console.warn('ignored an unreadable alert event', err);
      }
    });
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CONNECTING) {
        // The browser retries by itself after the server's `retry:` delay.
        deps.setConnection('reconnecting', 'Reconnecting…');
        return;
      }
      // CLOSED: the server answered with an error (401 without a token, 5xx from a proxy). Check why, then retry.
      deps.setConnection('reconnecting', 'Reconnecting…');
      retryTimer = setTimeout(async () => {
        try {
          await deps.api.getJson('/alerts', { limit: 1 }); // asks for a token on 401
        } catch {
          /* still down: try the stream again anyway */
        }
        connect();
      }, 2000);
    });
  }

  return {
    start() {
      connect();
    },
  };
}
