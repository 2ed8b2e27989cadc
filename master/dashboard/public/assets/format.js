// Formatting helpers. Every alert the page sees, from GET /alerts or the live stream /events, is the API's one wire
// alert (id, bot_id, pair, direction, price, reference_price, change_percent, threshold_percent, observed_at, config,
// received_at), so the sections read its fields as they are.
import { DISPLAY_LOCALE } from './locale.js';

/** Trims an exact decimal string for display without turning it into a float (no rounding surprises). */
export function formatDecimal(value, maxDecimals = 8) {
  if (value === undefined || value === null || value === '') return '–';
  const s = String(value);
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(s);
  if (!m) return s;
  const [, sign, int, frac = ''] = m;
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const cut = frac.slice(0, maxDecimals).replace(/0+$/, '');
  return `${sign}${grouped}${cut ? `.${cut}` : ''}`;
}

/** Price: enough digits for small-valued coins, no trailing zeros. */
export function formatPrice(value) {
  const n = Number(value);
  const decimals = n >= 1000 ? 2 : n >= 1 ? 4 : 8;
  return formatDecimal(value, decimals);
}

/** Signed percent with 4 decimals, e.g. "+0.0123 %". */
export function formatPercent(value) {
  if (value === undefined || value === null || value === '') return '–';
  const s = String(value);
  const negative = s.startsWith('-');
  const body = formatDecimal(negative ? s.slice(1) : s, 4);
  return `${negative ? '−' : '+'}${body} %`;
}

export function formatTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '–';
  return d.toLocaleTimeString(DISPLAY_LOCALE, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

export function formatDateTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '–';
  return d.toLocaleString(DISPLAY_LOCALE, { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** "4 s ago", "3 min ago", "2 h ago". */
export function formatAgo(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return 'never';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** Creates an element with attributes and children (strings become text nodes, never HTML). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** Runs `task` now (or after `delayMs` when `immediate` is false) and `delayMs` after each run finishes (never overlapping); returns stop(). */
export function every(delayMs, task, { immediate = true } = {}) {
  let timer = null;
  let stopped = false;
  const run = async () => {
    try {
      await task();
    } catch (err) {
      console.warn('refresh failed', err);
    }
    if (!stopped) timer = setTimeout(run, delayMs);
  };
  if (immediate) void run();
  else timer = setTimeout(run, delayMs);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
