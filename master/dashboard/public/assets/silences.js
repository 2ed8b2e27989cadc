// Silences: the active and pending ones in a table for everyone (GET /silences?state=active|pending) and, for operators,
// "Mute 1 h / 8 h / 24 h" on each bot row of the fleet (POST /silences with matchers {bot_id} and that duration) and an
// Expire button on each silence (DELETE /silences/{id}: it ends now and stays listed by the API as expired). A silence
// mutes the notifications of the alerts it matches; the alerts are still stored and shown in the feed and the history.
// The API checks everything; its refusals are shown under the table.
import { describeRefusal } from './bots.js';
import { el, formatDateTime } from './format.js';

/** The mute lengths offered on a bot row: label, and the API duration. */
const MUTES = [
  ['1 h', '1h'],
  ['8 h', '8h'],
  ['24 h', '24h'],
];

/** "pair=BTC-USD, bot_id=btc-1": the matchers as the API names them. */
function describeMatchers(matchers) {
  return ['pair', 'bot_id', 'direction']
    .filter((k) => matchers?.[k] !== undefined)
    .map((k) => `${k}=${matchers[k]}`)
    .join(', ');
}

/**
 * @param {{ api: object, tbody: HTMLElement, empty: HTMLElement, error: HTMLElement, canOperate: () => boolean,
 *   onChanged: () => Promise<void> }} deps  onChanged redraws the fleet rows (their "muted until" note)
 */
export function createSilences(deps) {
  const { api } = deps;
  /** Active and pending silences, newest first. */
  let silences = [];

  function showError(message) {
    deps.error.textContent = message;
  }

  function render() {
    const operate = deps.canOperate();
    const focused = document.activeElement?.closest?.('#silences-table button[data-silence-id]');
    const refocus = focused?.dataset.silenceId;
    const rows = silences.map((s) => {
      let expire = null;
      if (operate) {
        expire = el('button', { type: 'button', class: 'secondary small', 'data-action': 'expire', 'data-silence-id': s.id, 'aria-label': `Expire the silence of ${describeMatchers(s.matchers)}` }, 'Expire');
        expire.addEventListener('click', () => void expireSilence(s));
      }
      return el(
        'tr',
        { 'data-silence-id': s.id, 'data-state': s.state },
        el('td', {}, describeMatchers(s.matchers)),
        el('td', {}, el('span', { class: `badge ${s.state === 'active' ? 'ok' : 'paused'}` }, s.state)),
        el('td', {}, el('time', { datetime: s.starts_at }, formatDateTime(s.starts_at))),
        el('td', {}, el('time', { datetime: s.ends_at }, formatDateTime(s.ends_at))),
        el('td', {}, s.comment),
        el('td', {}, s.created_by),
        el('td', { class: 'actions' }, expire),
      );
    });
    deps.tbody.replaceChildren(...rows);
    deps.empty.hidden = rows.length > 0;
    if (refocus) deps.tbody.querySelector(`button[data-silence-id="${refocus}"]`)?.focus();
  }

  async function refresh() {
    try {
      const [active, pending] = await Promise.all([api.getJson('/silences', { state: 'active' }), api.getJson('/silences', { state: 'pending' })]);
      silences = [...(active.silences ?? []), ...(pending.silences ?? [])];
    } catch (err) {
      console.warn('GET /silences failed', err);
    }
    render();
  }

  async function act(what) {
    showError('');
    try {
      await what();
      await refresh();
      await deps.onChanged();
    } catch (err) {
      showError(describeRefusal(err));
    }
  }

  function expireSilence(silence) {
    return act(() => api.send('DELETE', `/silences/${encodeURIComponent(silence.id)}`));
  }

  function mute(botId, label, duration) {
    return act(() => api.send('POST', '/silences', { matchers: { bot_id: botId }, duration, comment: `muted for ${label} from the dashboard` }));
  }

  return {
    refresh,
    /** The mute buttons of a bot row (operators), with a note while an active silence on the bot runs. */
    buttonsFor(botId) {
      if (!deps.canOperate()) return null;
      const muting = silences.find((s) => s.state === 'active' && s.matchers?.bot_id === botId && Object.keys(s.matchers).length === 1);
      const buttons = MUTES.map(([label, duration]) => {
        const button = el('button', { type: 'button', class: 'secondary small', 'data-action': `mute-${duration}`, 'aria-label': `Mute ${botId} for ${label}` }, `Mute ${label}`);
        button.addEventListener('click', () => void mute(botId, label, duration));
        return button;
      });
      return el('span', { class: 'row-actions mute-actions' }, ...buttons, muting ? el('span', { class: 'detail' }, `muted until ${formatDateTime(muting.ends_at)}`) : null);
    },
  };
}
