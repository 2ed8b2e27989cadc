import { loadMasterConfig } from '../../shared/config/master-config';
import { createLogger } from '../../shared/platform/logger';
import { makeAlert, publishAlert } from '../../test/helpers/alerts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { masterTestEnv } from '../../test/helpers/master-env';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { startSmtpServer, type TestSmtpServer } from '../../test/helpers/smtp';
import { waitFor } from '../../test/helpers/wait';
import { createMaster, type Master } from '../app';

/** The email notifier against a real SMTP server that takes AUTH but offers no STARTTLS (SMTP_REQUIRE_TLS, credentials). */
describe('when the SMTP server does not offer STARTTLS', () => {
  const user = 'tickwatch';
  const pass = 'smtp-password-Zq81';
  let t: TestDatabase;
  let r: TestRedis;
  let smtp: TestSmtpServer;
  let master: Master | undefined;

  async function start(env: Record<string, string>): Promise<Master> {
    const config = loadMasterConfig({
      ...masterTestEnv(t.url, r),
      NOTIFY: 'email',
      SMTP_URL: `smtp://${user}:${pass}@127.0.0.1:${smtp.port}`,
      MAIL_TO: 'ops@example.com',
      EMAIL_DIGEST_SECONDS: '0',
      ...env,
    });
    return createMaster({ config, logger: createLogger({ name: 'master', level: 'silent' }), tuning: { streamBlockMs: 500, pairsRefreshMs: 200, notifyPollMs: 100, notifyRetryBaseMs: 200 } });
  }
  const notificationOf = (alertId: string) => t.db('notifications').whereRaw('? = ANY(alert_ids)', [alertId]).first();

  beforeAll(async () => {
    [t, r, smtp] = await Promise.all([createTestDatabase(), createTestRedis(), startSmtpServer({ auth: { user, pass } })]);
  });
  beforeEach(async () => {
    smtp.mails.length = 0;
    smtp.logins.length = 0;
    await t.db('notifications').delete();
  });
  afterEach(async () => {
    await master?.close();
    master = undefined;
  });
  afterAll(async () => {
    await smtp?.stop();
    await r?.cleanup();
    await t?.drop();
  });

  it('with SMTP_REQUIRE_TLS=true, marks the notification failed at the first attempt and never logs in', async () => {
    master = await start({ SMTP_REQUIRE_TLS: 'true', NOTIFY_MAX_ATTEMPTS: '5' });
    const alert = makeAlert({ pair: 'BTC-USD' });
    await publishAlert(r.redis, r.keys, alert);

    const row = await waitFor('the failed notification', async () => {
      const n = await notificationOf(alert.id);
      return n?.status === 'failed' ? n : null;
    });
    expect(row).toMatchObject({ attempts: 1, last_error: expect.stringMatching(/^SMTP server does not offer STARTTLS \(answered 5\d\d\) and SMTP_REQUIRE_TLS is set: not sending in clear text$/) });
    expect(row.last_error).not.toContain(pass);
    expect(smtp.logins).toEqual([]);
    expect(smtp.mails).toEqual([]);
  });

  it('when the server refuses the login and quotes the password back, the recorded reason does not show it', async () => {
    const wrong = 'wrong-pass-Vx03';
    master = await start({ SMTP_URL: `smtp://${user}:${wrong}@127.0.0.1:${smtp.port}` });
    const alert = makeAlert({ pair: 'XRP-USD' });
    await publishAlert(r.redis, r.keys, alert);

    const row = await waitFor('the failed notification', async () => {
      const n = await notificationOf(alert.id);
      return n?.status === 'failed' ? n : null;
    });
    expect(row.last_error).toMatch(/^SMTP 535: .*Invalid username or password: tickwatch\/\*\*\*/);
    expect(row.last_error).not.toContain(wrong);
    expect(smtp.logins).toEqual([]);
  });

  it('without it (the default), logs in and sends over the same cleartext connection', async () => {
    master = await start({});
    const alert = makeAlert({ pair: 'ETH-USD' });
    await publishAlert(r.redis, r.keys, alert);

    await smtp.waitForMails(1);
    expect(smtp.logins).toEqual([user]);
    await waitFor('the sent notification', async () => (await notificationOf(alert.id))?.status === 'sent');
  });
});
