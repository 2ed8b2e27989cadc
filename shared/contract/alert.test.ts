import { ALERT_BATCH_MAX_BYTES, ALERT_MESSAGE_MAX_BYTES, parseAlertBatch, parseAlertMessage, serializeAlert, serializeAlertBatch } from './alert';
import { makeAlert } from '../../test/helpers/alerts';

describe('the alert contract', () => {
  it('round-trips an alert and names the field that breaks it', () => {
    const alert = makeAlert({ pair: 'ETH-USD' });
    expect(parseAlertMessage(serializeAlert(alert))).toEqual({ ok: true, alert });
    expect(parseAlertMessage(serializeAlert({ ...alert, price: '-1' }))).toEqual({ ok: false, reason: expect.stringMatching(/^breaks the alert contract v1: price: /) });
    expect(parseAlertMessage('{')).toEqual({ ok: false, reason: expect.stringMatching(/^not valid JSON: /) });
  });

  describe('when a message is larger than any real alert', () => {
    it('refuses it unparsed, with a reason naming its size and the limit', () => {
      const alert = makeAlert({ pair: 'ETH-USD' });
      // Valid JSON and a valid alert apart from its size: only the cap refuses it.
      const padded = serializeAlert(alert) + ' '.repeat(ALERT_MESSAGE_MAX_BYTES);
      const bytes = Buffer.byteLength(padded);
      expect(parseAlertMessage(padded)).toEqual({ ok: false, reason: `an alert message of ${bytes} bytes is over the ${ALERT_MESSAGE_MAX_BYTES}-byte limit` });
      expect(parseAlertMessage(Buffer.from(padded))).toEqual({ ok: false, reason: expect.stringContaining(`${bytes} bytes`) });
    });

    it('counts bytes, not characters', () => {
      const base = serializeAlert(makeAlert({ pair: 'ETH-USD' }));
      // Each "é" is one character and two UTF-8 bytes: this message fits the limit by characters, not by bytes.
      const wide = `${base.slice(0, -1)},"x":"${'é'.repeat(ALERT_MESSAGE_MAX_BYTES / 2)}"}`;
      expect(wide.length).toBeLessThan(ALERT_MESSAGE_MAX_BYTES);
      expect(parseAlertMessage(wide)).toEqual({ ok: false, reason: expect.stringMatching(/^an alert message of \d+ bytes is over/) });
    });

    it('refuses an oversized batch announcement the same way', () => {
      const huge = `[${' '.repeat(ALERT_BATCH_MAX_BYTES)}]`;
      expect(parseAlertBatch(huge)).toEqual({ alerts: [], errors: [expect.stringMatching(/^a batch message of \d+ bytes is over the \d+-byte limit$/)] });
    });
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
