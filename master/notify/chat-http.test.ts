import { scrubSecrets } from '../../shared/platform/secrets';
import { createPartLedger, retryAfterHeaderMs, retryAfterSecondsMs, urlSecretForms } from './chat-http';

describe('retry hints', () => {
  it('reads Retry-After as seconds or as an HTTP date, and ignores what it cannot read', () => {
    expect(retryAfterHeaderMs('30')).toBe(30_000);
    expect(retryAfterHeaderMs(' 1.5 ')).toBe(1500);
    const now = Date.parse('2026-12-02T18:00:00Z');
    expect(retryAfterHeaderMs('Wed, 02 Dec 2026 18:00:07 GMT', () => now)).toBe(7000);
    expect(retryAfterHeaderMs('Wed, 02 Dec 2026 17:59:00 GMT', () => now)).toBe(0);
    expect(retryAfterHeaderMs(null)).toBeUndefined();
    expect(retryAfterHeaderMs('soon')).toBeUndefined();
    expect(retryAfterHeaderMs('-5')).toBeUndefined();
  });

  it('turns fractional JSON seconds into whole milliseconds without float noise', () => {
    expect(retryAfterSecondsMs(1.1)).toBe(1100);
    expect(retryAfterSecondsMs(0.64)).toBe(640);
    expect(retryAfterSecondsMs(0.0001)).toBe(1);
    expect(retryAfterSecondsMs(5)).toBe(5000);
    expect(retryAfterSecondsMs('5')).toBeUndefined();
    expect(retryAfterSecondsMs(-1)).toBeUndefined();
    expect(retryAfterSecondsMs(Number.NaN)).toBeUndefined();
  });
});

describe('the secret forms of a webhook URL', () => {
  it('cover the URL, its path and its token segment, so an echo of any of them is scrubbed', () => {
    const url = 'https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF1/abcdefghijklmnopqrstuvwx';
    const forms = urlSecretForms(url);
    expect(scrubSecrets(`bad ${url} and /services/T0ABCDEF1/B0ABCDEF1/abcdefghijklmnopqrstuvwx and abcdefghijklmnopqrstuvwx`, forms)).toBe('bad *** and *** and ***');
    // Short segments are no secret and stay readable.
    expect(scrubSecrets('no_service for services', forms)).toBe('no_service for services');
  });
});

describe('the ledger of parts sent', () => {
  it('resumes at the first part not sent, sends nothing after all went out, and starts over for other parts', async () => {
    const ledger = createPartLedger(2);
    const sent: string[] = [];
    let failAt = 1;
    const sendOne = async (part: string) => {
      if (sent.length === failAt) throw new Error('429');
      sent.push(part);
      return `id-${part}`;
    };
    await expect(ledger.send('d1', ['a', 'b', 'c'], sendOne)).rejects.toThrow('429');
    failAt = -1;
    await expect(ledger.send('d1', ['a', 'b', 'c'], sendOne)).resolves.toEqual(['id-a', 'id-b', 'id-c']);
    await expect(ledger.send('d1', ['a', 'b', 'c'], sendOne)).resolves.toEqual(['id-a', 'id-b', 'id-c']);
    expect(sent).toEqual(['a', 'b', 'c']);
    await ledger.send('d1', ['x'], sendOne);
    expect(sent).toEqual(['a', 'b', 'c', 'x']);
    // Bounded: the oldest delivery is forgotten first.
    await ledger.send('d2', ['p'], sendOne);
    await ledger.send('d3', ['q'], sendOne);
    await ledger.send('d1', ['x'], sendOne);
    expect(sent).toEqual(['a', 'b', 'c', 'x', 'p', 'q', 'x']);
  });
});
