// History: the API's filters over GET /alerts with keyset paging (next_cursor), and a CSV link (GET /alerts.csv)
// carrying exactly the same filters.
import { el, formatDateTime, formatPercent, formatPrice } from './format.js';

/** datetime-local gives a wall-clock time without zone; the API wants an absolute instant. */
function localToIso(value) {
  if (!value) return '';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/**
 * @param {{ api: object, form: HTMLFormElement, tbody: HTMLElement, error: HTMLElement, prev: HTMLButtonElement,
 *           next: HTMLButtonElement, page: HTMLElement, csv: HTMLAnchorElement }} deps
 */
export function createHistory(deps) {
  // Cursors of the pages seen so far: index 0 is the first page (no cursor).
  let cursors = [null];
  let pageIndex = 0;
  let nextCursor = null;

  function filters() {
    const f = new FormData(deps.form);
    return {
      pair: f.get('pair') || '',
      direction: f.get('direction') || '',
      since: localToIso(f.get('since')),
      until: localToIso(f.get('until')),
      min_change: String(f.get('min_change') ?? '').trim(),
      ordering: f.get('ordering') || '',
    };
  }

  function updateCsvLink() {
    deps.csv.href = deps.api.url('/alerts.csv', filters());
  }

  async function load() {
    const limit = new FormData(deps.form).get('limit') || '50';
    deps.error.textContent = '';
    updateCsvLink();
    let body;
    try {
      body = await deps.api.getJson('/alerts', { ...filters(), limit, cursor: cursors[pageIndex] ?? '' });
    } catch (err) {
      deps.error.textContent = err.body?.parameter ? `${err.body.parameter}: ${err.message}` : `Could not load alerts: ${err.message}`;
      deps.tbody.replaceChildren();
      return;
    }
    nextCursor = body.next_cursor;
    const rows = body.items.map((a) => {
      return el(
        'tr',
        { 'data-alert-id': a.id, 'data-silenced-by': a.silenced_by ?? undefined },
        el('td', {}, el('time', { datetime: a.observed_at }, formatDateTime(a.observed_at))),
        el('td', {}, a.pair),
        el('td', { class: `dir-${a.direction}` }, a.direction === 'up' ? '▲ up' : '▼ down'),
        el('td', { class: `num dir-${a.direction}` }, formatPercent(a.change_percent)),
        el('td', { class: 'num' }, formatPrice(a.price)),
        el('td', { class: 'num' }, formatPrice(a.reference_price)),
        // A silenced alert is history like any other; only its notifications were muted.
        el('td', {}, a.bot_id, a.silenced_by ? el('span', { class: 'detail' }, 'silenced: not notified') : null),
      );
    });
    if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 7, class: 'empty' }, 'No stored alert matches these filters.')));
    deps.tbody.replaceChildren(...rows);
    deps.prev.disabled = pageIndex === 0;
    deps.next.disabled = !nextCursor;
    deps.page.textContent = `Page ${pageIndex + 1}`;
  }

  deps.form.addEventListener('submit', (event) => {
    event.preventDefault();
    cursors = [null];
    pageIndex = 0;
    void load();
  });
  deps.form.addEventListener('reset', () => {
    // Let the browser clear the fields first.
    setTimeout(() => {
      cursors = [null];
      pageIndex = 0;
      void load();
    });
  });
  deps.form.addEventListener('change', updateCsvLink);
  deps.next.addEventListener('click', () => {
    if (!nextCursor) return;
    cursors = cursors.slice(0, pageIndex + 1);
    cursors.push(nextCursor);
    pageIndex++;
    void load();
  });
  deps.prev.addEventListener('click', () => {
    if (pageIndex === 0) return;
    pageIndex--;
    void load();
  });
  // With a token the browser cannot add the Authorization header to a plain link: fetch it and save the result.
  deps.csv.addEventListener('click', async (event) => {
    if (!deps.api.hasToken) return;
    event.preventDefault();
    try {
      const text = await deps.api.getText('/alerts.csv', filters());
      const blobUrl = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
      const a = el('a', { href: blobUrl, download: deps.csv.getAttribute('download') || 'alerts.csv' });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(blobUrl), 10_000);
    } catch (err) {
      deps.error.textContent = `Could not download CSV: ${err.message}`;
    }
  });

  return {
    load,
    /** Offers the pairs seen anywhere (fleet, stats) in the pair filter, keeping the current choice. */
    setPairs(pairs) {
      const select = deps.form.elements.namedItem('pair');
      const current = select.value;
      const known = new Set([...select.options].map((o) => o.value));
      for (const p of [...pairs].sort()) {
        if (!known.has(p)) select.append(el('option', { value: p }, p));
      }
      select.value = current;
    },
  };
}
