import { ConfigError } from '../platform/errors';
import { BotConfigSnapshotSchema } from '../contract/alert';
import { parseDesiredBot } from '../contract/bots';
import { botConfigSnapshot, loadWorkerConfig, runtimeBotConfig, loadWorkerStartup } from './worker-config';

/** The rule variables of a pinned worker (RULE, WINDOW_MS, PENDING_POLLS, COOLDOWN_MS, MAX_ALERTS, EXPIRES_AT). */

describe('the rule variables', () => {
  it('default to today behaviour, and a default bot snapshot is what it always was', () => {
    const c = loadWorkerConfig({ PAIR: 'BTC-USD' });
    expect(c).toMatchObject({ rule: 'reference', windowMs: null, pendingPolls: 1, cooldownMs: 0, maxAlerts: null, expiresAt: null });
    expect(Object.keys(botConfigSnapshot(c)).sort()).toEqual(['botId', 'intervalMs', 'pair', 'priceField', 'referenceMode', 'thresholdPercent', 'tickerBaseUrl']);
  });

  it('are read from env and flags, EXPIRES_AT normalised to UTC, and carried by the snapshot', () => {
    const c = loadWorkerConfig({ PAIR: 'BTC-USD', RULE: 'window', WINDOW_MS: '60000', EXPIRES_AT: '2027-01-01T01:00:00+01:00' }, ['--pending-polls', '3', '--cooldown-ms', '300000', '--max-alerts', '1']);
    expect(c).toMatchObject({ rule: 'window', windowMs: 60_000, pendingPolls: 3, cooldownMs: 300_000, maxAlerts: 1, expiresAt: '2027-01-01T00:00:00.000Z' });
    const snapshot = botConfigSnapshot(c);
    expect(snapshot).toMatchObject({ rule: 'window', windowMs: 60_000, pendingPolls: 3, cooldownMs: 300_000, maxAlerts: 1, expiresAt: '2027-01-01T00:00:00.000Z' });
    expect(BotConfigSnapshotSchema.parse(snapshot)).toEqual(snapshot);
  });

  it.each([
    [{ RULE: 'sliding' }, /RULE="sliding" is invalid: expected one of reference, window/],
    [{ RULE: 'window' }, /WINDOW_MS is required with RULE=window/],
    [{ RULE: 'window', WINDOW_MS: '0' }, /WINDOW_MS="0" is invalid: expected an integer from 1 to 86400000/],
    [{ PENDING_POLLS: '0' }, /PENDING_POLLS="0" is invalid: expected an integer from 1 to 1000/],
    [{ COOLDOWN_MS: '-5' }, /COOLDOWN_MS="-5" is invalid: expected an integer from 0 to 2592000000/],
    [{ MAX_ALERTS: '0' }, /MAX_ALERTS="0" is invalid: expected an integer from 1 to 1000000000/],
    [{ EXPIRES_AT: 'next week' }, /EXPIRES_AT="next week" is invalid: expected an ISO-8601 time with a zone/],
    [{ EXPIRES_AT: '2027-01-01T00:00:00' }, /EXPIRES_AT="2027-01-01T00:00:00" is invalid/],
  ])('refuse %j with a line naming the variable, the value and what is allowed', (env, message) => {
    expect(() => loadWorkerConfig({ PAIR: 'BTC-USD', ...env })).toThrow(ConfigError);
    expect(() => loadWorkerConfig({ PAIR: 'BTC-USD', ...env })).toThrow(message);
  });

  it('of a runtime bot come from its mirror entry; an entry of an older master (no rule fields) means the defaults', () => {
    const { base } = loadWorkerStartup({});
    const old = parseDesiredBot(JSON.stringify({ botId: 'b', pair: 'BTC-USD', intervalMs: 1000, thresholdPercent: '1', priceField: 'ask', referenceMode: 'first', enabled: true, version: 1 }));
    if (!old.ok) throw new Error(old.reason);
    expect(runtimeBotConfig(base, old.bot)).toMatchObject({ rule: 'reference', windowMs: null, pendingPolls: 1, cooldownMs: 0, maxAlerts: null, expiresAt: null });
    const ruled = parseDesiredBot(JSON.stringify({ ...old.bot, rule: 'window', windowMs: 5000, pendingPolls: 2, cooldownMs: 10, maxAlerts: 3, expiresAt: '2027-01-01T00:00:00.000Z' }));
    if (!ruled.ok) throw new Error(ruled.reason);
    expect(runtimeBotConfig(base, ruled.bot)).toMatchObject({ rule: 'window', windowMs: 5000, pendingPolls: 2, cooldownMs: 10, maxAlerts: 3, expiresAt: '2027-01-01T00:00:00.000Z' });
  });
});
