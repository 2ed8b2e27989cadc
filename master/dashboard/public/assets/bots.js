// Runtime bots for operators: add, edit (interval, threshold, price field, reference mode), pause/resume and remove, through
// POST /bots, PATCH /bots/{bot_id} and DELETE /bots/{bot_id} with the token the page already keeps. GET /me says whether the
// token may write (scope operator); for an analyst, or when the master does not answer /me, no control is shown at all.
// The API checks every field; its refusals (400 naming the field, 409, 403) are shown next to the form, and the field it
// names is marked invalid. Compose-declared bots (source compose) belong to docker-compose.yml and get no control.
import { el } from './format.js';

const FIELDS = ['pair', 'bot_id', 'interval_ms', 'threshold_percent', 'price_field', 'reference_mode'];
/** Remove asks for a second click within this long. */
const CONFIRM_MS = 5000;

/** The message for an API refusal, as the operator should read it. */
export function describeRefusal(err) {
  const body = err?.body;
  if (err?.status === 400 && body?.parameter) {
    const allowed = body.allowed ? ` (allowed: ${body.allowed})` : '';
    return `${body.parameter}: ${body.message || 'invalid value'}${allowed}`;
  }
  if (err?.status === 403) return body?.message || 'This token may only read: changing bots needs an operator token.';
  if (err?.status === 409) return body?.message || 'Conflict: the bot changed or already exists.';
  if (err?.status === 404) return body?.message || 'That bot no longer exists.';
  return err?.message || String(err);
}

/**
 * @param {{ api: object, toolbar: HTMLElement, addButton: HTMLButtonElement, form: HTMLFormElement, error: HTMLElement,
 *   onChanged: () => Promise<void> }} deps  onChanged reloads the fleet table after a change
 */
export function createBotControls(deps) {
  const { api, form, error } = deps;
  let scope = null;
  let bots = new Map();
  /** The bot being edited, or null while adding. */
  let editing = null;
  let pendingRemoval = null;

  const input = (name) => form.elements.namedItem(name);

  function showError(message, parameter) {
    error.textContent = message;
    for (const name of FIELDS) input(name)?.removeAttribute('aria-invalid');
    const field = parameter && input(parameter);
    if (field) {
      field.setAttribute('aria-invalid', 'true');
      if (!form.hidden) field.focus();
    }
  }

  function clearError() {
    showError('');
  }

  function openForm(bot) {
    editing = bot;
    clearError();
    form.reset();
    form.hidden = false;
    form.dataset.mode = bot ? 'edit' : 'add';
    form.querySelector('.bot-form-title').textContent = bot ? `Edit ${bot.bot_id}` : 'Add a bot';
    form.querySelector('button[type="submit"]').textContent = bot ? 'Save changes' : 'Add bot';
    input('bot_id').disabled = Boolean(bot);
    if (bot) {
      for (const name of FIELDS) input(name).value = String(bot[name] ?? '');
    }
    (bot ? input('threshold_percent') : input('pair')).focus();
  }

  function closeForm() {
    form.hidden = true;
    editing = null;
    clearError();
  }

  /** The form's values as the API takes them; while editing, only what changed. Empty fields are left to the API's defaults. */
  function formBody() {
    const body = {};
    for (const name of FIELDS) {
      const field = input(name);
      if (field.disabled) continue;
      const raw = field.value.trim();
      if (raw === '') continue;
      const value = name === 'interval_ms' && /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
      if (editing && String(editing[name]) === String(value)) continue;
      body[name] = value;
    }
    return body;
  }

  async function act(what) {
    clearError();
    try {
      await what();
      await deps.onChanged();
      return true;
    } catch (err) {
      showError(describeRefusal(err), err?.status === 400 ? err.body?.parameter : undefined);
      return false;
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = formBody();
    const bot = editing;
    if (bot && Object.keys(body).length === 0) {
      showError('Nothing changed.');
      return;
    }
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    void act(() => (bot ? api.send('PATCH', `/bots/${encodeURIComponent(bot.bot_id)}`, body) : api.send('POST', '/bots', body)))
      .then((ok) => {
        if (ok) closeForm();
      })
      .finally(() => {
        submit.disabled = false;
      });
  });
  form.querySelector('.bot-cancel').addEventListener('click', closeForm);
  deps.addButton.addEventListener('click', () => openForm(null));

  function setEnabled(bot, enabled) {
    void act(() => api.send('PATCH', `/bots/${encodeURIComponent(bot.bot_id)}`, { enabled }));
  }

  function remove(bot, button) {
    if (pendingRemoval?.botId !== bot.bot_id) {
      clearTimeout(pendingRemoval?.timer);
      pendingRemoval = { botId: bot.bot_id, timer: setTimeout(() => (pendingRemoval = null), CONFIRM_MS) };
      button.textContent = `Confirm removal of ${bot.bot_id}`;
      button.setAttribute('aria-label', button.textContent);
      button.classList.add('danger');
      return;
    }
    clearTimeout(pendingRemoval.timer);
    pendingRemoval = null;
    void act(async () => {
      await api.send('DELETE', `/bots/${encodeURIComponent(bot.bot_id)}`);
      if (editing?.bot_id === bot.bot_id) closeForm();
    });
  }

  return {
    /** Asks the master who this token is (GET /me); shows the add button only for an operator. */
    async loadScope() {
      try {
        scope = (await api.getJson('/me')).scope ?? null;
      } catch (err) {
        console.warn('GET /me failed; showing no bot controls', err);
        scope = null;
      }
      deps.toolbar.hidden = !this.canOperate;
      if (!this.canOperate) closeForm();
    },
    get canOperate() {
      return scope === 'operator';
    },
    /** GET /bots: every bot in the bots table (runtime and compose), by id. Keeps the last list when the request fails. */
    async loadBots() {
      try {
        const body = await api.getJson('/bots');
        bots = new Map((body.bots ?? []).map((b) => [b.bot_id, b]));
      } catch (err) {
        console.warn('GET /bots failed', err);
      }
      return bots;
    },
    /** The controls of one row: edit, pause/resume and remove for a runtime bot; none for a compose one or an analyst. */
    actionsFor(botId) {
      const bot = bots.get(botId);
      if (!this.canOperate || !bot) return null;
      if (bot.source !== 'api') return el('span', { class: 'detail' }, `managed by compose${bot.service ? ` (${bot.service})` : ''}`);
      const button = (label, action) =>
        el('button', { type: 'button', class: 'secondary small', 'data-action': action, 'aria-label': label.includes(botId) ? label : `${label} ${botId}` }, label);
      const edit = button('Edit', 'edit');
      edit.addEventListener('click', () => openForm(bots.get(botId)));
      const toggle = bot.enabled ? button('Pause', 'pause') : button('Resume', 'resume');
      toggle.addEventListener('click', () => setEnabled(bot, !bot.enabled));
      const removal = button(pendingRemoval?.botId === botId ? `Confirm removal of ${botId}` : 'Remove', 'remove');
      if (pendingRemoval?.botId === botId) removal.classList.add('danger');
      removal.addEventListener('click', () => remove(bot, removal));
      return el('span', { class: 'row-actions' }, edit, toggle, removal);
    },
  };
}
