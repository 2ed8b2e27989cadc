import fc from 'fast-check';
import type { StoredAlert } from '../ingest/alert-repository';
import { backoffDelay } from '../../shared/platform/retry';
import { classifySmtpError } from './email-notifier';
import { WIRE_ALERT_FIELDS, wireDecimal } from '../../shared/read-model/alert-wire';
import { formatChange, renderDigest, renderWebhook, signWebhookBody, verifyWebhookSignature } from './notification-format';
import { isTransientStatus } from './webhook-notifier';

const stored = (over: Partial<StoredAlert> = {}): StoredAlert => ({
  id: '6f1c1f4e-9a57-4c1e-8f0e-2b7d3c9a1e11',
  botId: 'btc-bot',
  pair: 'BTC-USD',
  direction: 'up',
  price: '51250.500000000000000000',
  referencePrice: '50000.000000000000000000',
  changePercent: '2.501000000000000000',
  thresholdPercent: '0.010000000000000000',
  observedAt: new Date('2026-11-29T12:00:00.000Z'),
  receivedAt: '2026-11-29T12:00:00.020000Z',
  config: { botId: 'btc-bot', pair: 'BTC-USD', intervalMs: 5000, thresholdPercent: '0.01', priceField: 'ask', referenceMode: 'first', tickerBaseUrl: 'https://api.uphold.com/v0/ticker' },
  ...over,
});

describe('notification formatting', () => {
  it('shows decimals without the database padding and keeps their value', () => {
    expect(wireDecimal('51250.500000000000000000')).toBe('51250.5');
    expect(wireDecimal('100.000000000000000000')).toBe('100');
    expect(wireDecimal('0.000000000000000001')).toBe('0.000000000000000001');
    expect(formatChange('-1.000000000000000000')).toBe('-1');
    expect(formatChange('0.010000000000000000')).toBe('+0.01');
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 38n - 1n }), (n) => {
        const padded = `${n / 10n ** 18n}.${(n % 10n ** 18n).toString().padStart(18, '0')}`;
        const trimmed = wireDecimal(padded);
        const [int, frac = ''] = trimmed.split('.');
        return BigInt(int!) * 10n ** 18n + BigInt(frac.padEnd(18, '0')) === n && !trimmed.endsWith('.') && !/\.\d*0$/.test(trimmed);
      }),
    );
  });

  it('lists every alert in the digest text and HTML table, escaping what it prints', () => {
    const mail = renderDigest([stored(), stored({ pair: 'ETH-USD', direction: 'down', changePercent: '-0.5', botId: '<b>&bot' })], { summary: false });
    expect(mail.subject).toBe('Tickwatch: 2 price alerts (BTC-USD, ETH-USD)');
    expect(mail.text).toContain('BTC-USD up +2.501% at 51250.5 (reference 50000, threshold 0.01%) 2026-11-29T12:00:00.000Z [btc-bot]');
    expect(mail.html).toContain('&lt;b&gt;&amp;bot');
    expect(mail.html).not.toContain('<b>&bot');
    expect(mail.html.match(/<tr><td/g)).toHaveLength(2);
  });

  it('says how many alerts were held back in the summary mail, and counts what it does not list', () => {
    const many = Array.from({ length: 501 }, () => stored());
    const mail = renderDigest(many, { summary: true });
    expect(mail.subject).toBe('Tickwatch: 501 alerts held back by the hourly email limit');
    expect(mail.text).toContain('so 501 alerts were held back');
    expect(mail.text).toContain('…and 1 more');
    expect(mail.html.match(/<tr><td/g)).toHaveLength(500);
  });

  it('builds a Slack-compatible webhook body whose signature verifies only with the right secret and bytes', () => {
    const body = JSON.stringify(renderWebhook([stored()], 'delivery-1', new Date('2026-11-29T12:00:01Z')));
    const payload = JSON.parse(body);
    expect(payload.text).toBe('Tickwatch alert\n• BTC-USD up +2.501% at 51250.5 (reference 50000, threshold 0.01%) 2026-11-29T12:00:00.000Z [btc-bot]');
    expect(Object.keys(payload).sort()).toEqual(['alerts', 'delivery_id', 'sent_at', 'text']);
    expect(payload).toMatchObject({ delivery_id: 'delivery-1', sent_at: '2026-11-29T12:00:01.000Z' });
    // The wire alert of GET /alerts: snake_case, decimals without padding, config as the alert carried it.
    expect(payload.alerts[0]).toEqual({
      id: '6f1c1f4e-9a57-4c1e-8f0e-2b7d3c9a1e11',
      bot_id: 'btc-bot',
      pair: 'BTC-USD',
      direction: 'up',
      price: '51250.5',
      reference_price: '50000',
      change_percent: '2.501',
      threshold_percent: '0.01',
      silenced_by: null,
      observed_at: '2026-11-29T12:00:00.000Z',
      config: stored().config,
      received_at: '2026-11-29T12:00:00.020Z',
    });
    expect(Object.keys(payload.alerts[0])).toEqual([...WIRE_ALERT_FIELDS]);
    const signature = signWebhookBody(body, 'a-secret-key');
    expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifyWebhookSignature(body, 'a-secret-key', signature)).toBe(true);
    expect(verifyWebhookSignature(body, 'another-key', signature)).toBe(false);
    expect(verifyWebhookSignature(`${body} `, 'a-secret-key', signature)).toBe(false);
    expect(verifyWebhookSignature(body, 'a-secret-key', undefined)).toBe(false);
  });
});

describe('delivery failure classification', () => {
  it('retries SMTP 4xx and network errors, gives up on SMTP 5xx', () => {
    expect(classifySmtpError(Object.assign(new Error('busy'), { responseCode: 451 })).transient).toBe(true);
    expect(classifySmtpError(Object.assign(new Error('no such user'), { responseCode: 550 })).transient).toBe(false);
    expect(classifySmtpError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNECTION' })).transient).toBe(true);
  });

  it('retries HTTP 408, 429 and 5xx, gives up on other answers', () => {
    expect([408, 429, 500, 502, 503].every(isTransientStatus)).toBe(true);
    expect([301, 400, 401, 403, 404, 410, 422].some(isTransientStatus)).toBe(false);
  });

  it('backs off exponentially with jitter, within the cap', () => {
    expect(backoffDelay(1, 1000, 60_000, () => 0)).toBe(500);
    expect(backoffDelay(1, 1000, 60_000, () => 1)).toBe(1000);
    expect(backoffDelay(4, 1000, 60_000, () => 1)).toBe(8000);
    fc.assert(fc.property(fc.integer({ min: 1, max: 1000 }), fc.double({ min: 0, max: 1, noNaN: true }), (attempt, r) => {
      const d = backoffDelay(attempt, 1000, 60_000, () => r);
      return d >= 500 && d <= 60_000;
    }));
  });
});
