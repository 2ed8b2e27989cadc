import { parseAlertBatch, parseAlertMessage, serializeAlert, serializeAlertBatch } from './alert';
import { makeAlert } from '../../test/helpers/alerts';

describe('the alert contract', () => {
  it('round-trips an alert and names the field that breaks it', () => {
    const alert = makeAlert({ pair: 'ETH-USD' });
    expect(parseAlertMessage(serializeAlert(alert))).toEqual({ ok: true, alert });
    expect(parseAlertMessage(serializeAlert({ ...alert, price: '-1' }))).toEqual({ ok: false, reason: expect.stringMatching(/^breaks the alert contract v1: price: /) });
    expect(parseAlertMessage('{')).toEqual({ ok: false, reason: expect.stringMatching(/^not valid JSON: /) });
  });

  describe('batches (the stored-alerts announcement)', () => {
    it('round-trips a batch in order', () => {
      const alerts = [makeAlert({ pair: 'BTC-USD' }), makeAlert({ pair: 'XRP-USD' }), makeAlert({ pair: 'ETH-USD' })];
      expect(parseAlertBatch(serializeAlertBatch(alerts))).toEqual({ alerts, errors: [] });
    });

    it('keeps the valid alerts of a batch and names the bad element by its index', () => {
      const [a, b] = [makeAlert({ pair: 'BTC-USD' }), makeAlert({ pair: 'XRP-USD' })];
      const raw = `[${serializeAlert(a)},${serializeAlert({ ...a, direction: 'down' })},${serializeAlert(b)}]`;
      expect(parseAlertBatch(raw)).toEqual({ alerts: [a, b], errors: [expect.stringMatching(/^\[1\] breaks the alert contract v1: direction: must agree with the sign of changePercent/)] });
    });

    it('accepts a single alert object, as older masters announced them', () => {
      const alert = makeAlert({ pair: 'BTC-USD' });
      expect(parseAlertBatch(Buffer.from(serializeAlert(alert)))).toEqual({ alerts: [alert], errors: [] });
    });

    it('reports a message that is not JSON, or not an alert, without throwing', () => {
      expect(parseAlertBatch('[{"version":1}')).toEqual({ alerts: [], errors: [expect.stringMatching(/^not valid JSON: /)] });
      expect(parseAlertBatch('42')).toEqual({ alerts: [], errors: [expect.stringMatching(/^breaks the alert contract v1: /)] });
      expect(parseAlertBatch('[]')).toEqual({ alerts: [], errors: [] });
    });
  });
});
