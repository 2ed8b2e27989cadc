import type { MasterConfig } from '../../shared/config/master-config';
import type { ConfigReceiver } from '../../shared/read-model/receivers-repository';

/**
 * The receivers the master's configuration declares, which every master writes to the `receivers` table at start
 * (`source = 'config'`): MAIL_TO is the email receiver `default` (each address its own digest and hourly cap, after
 * EMAIL_DIGEST_SECONDS), WEBHOOK_URL (+ WEBHOOK_SECRET) the webhook receiver `default`, or `default-webhook` when
 * email is configured as well (a receiver has one kind). Both match every alert. They follow the configuration, not
 * the API: a start with other values rewrites them, a start without them removes them.
 */
export function configReceivers(config: Pick<MasterConfig, 'email' | 'webhook'>): ConfigReceiver[] {
  const out: ConfigReceiver[] = [];
  if (config.email) out.push({ name: 'default', kind: 'email', target: { to: config.email.to.join(',') }, digestSeconds: config.email.digestSeconds });
  if (config.webhook) {
    const target = config.webhook.secret ? { url: config.webhook.url, secret: config.webhook.secret } : { url: config.webhook.url };
    out.push({ name: config.email ? 'default-webhook' : 'default', kind: 'webhook', target, digestSeconds: 0 });
  }
  return out;
}
