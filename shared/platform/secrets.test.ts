import fc from 'fast-check';
import { displayValue, maskUrlPasswords, scrubSecrets, urlCredentialForms, urlSchemeAndHost } from './secrets';

describe('maskUrlPasswords', () => {
  it('masks the password of every URL in a text and keeps the rest', () => {
    expect(maskUrlPasswords('redis://:pw@cache:6379 and postgres://app:p%40ss@db:5432/x?ssl=1')).toBe('redis://:***@cache:6379 and postgres://app:***@db:5432/x?ssl=1');
    expect(maskUrlPasswords('smtp://user@mail:25 has no password')).toBe('smtp://user@mail:25 has no password');
  });

  it('never lets a password through, whatever its characters (property)', () => {
    // Anything a URL parser accepts in a password, including an unencoded "@" or ":".
    const password = fc.stringMatching(/^[A-Za-z0-9%!$&'()*+,;=:@._~-]{6,40}$/).filter((p) => !p.startsWith('@') && !p.includes('@@'));
    fc.assert(
      fc.property(password, fc.constantFrom('redis', 'postgres', 'smtps', 'https'), (pw, scheme) => {
        const masked = maskUrlPasswords(`failed: ${scheme}://user:${pw}@host.example:1234/db (retrying)`);
        expect(masked).toBe(`failed: ${scheme}://user:***@host.example:1234/db (retrying)`);
      }),
    );
  });
});

describe('displayValue', () => {
  it('shows a secret URL as scheme and host only, and any other secret not at all', () => {
    expect(displayValue('https://hooks.example.com/services/T0/B1/XYZ?x=1', true)).toBe('https://hooks.example.com/(hidden)');
    expect(displayValue('smtp://u:p@mail.example.com:587', true)).toBe('smtp://mail.example.com:587/(hidden)');
    expect(displayValue('a-long-api-token-value', true)).toBe('(hidden)');
    expect(displayValue('tok:en-that-parses-as-a-url', true)).toBe('(hidden)');
    expect(displayValue('postgres://app:pw@db/x', false)).toBe('postgres://app:***@db/x');
    expect(urlSchemeAndHost('not a url')).toBeNull();
  });
});

describe('scrubSecrets', () => {
  it('replaces each secret and the encoded forms of a URL credential', () => {
    const forms = urlCredentialForms('smtp://mailer:p%40ss-w0rd@mail:25');
    const plain = Buffer.from('\u0000mailer\u0000p@ss-w0rd').toString('base64');
    expect(scrubSecrets(`535 bad AUTH PLAIN ${plain} for p@ss-w0rd (p%40ss-w0rd)`, forms)).toBe('535 bad AUTH PLAIN *** for *** (***)');
    expect(urlCredentialForms('https://hooks.example.com/x')).toEqual([]);
  });
});
