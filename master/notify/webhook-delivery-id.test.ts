import { loadMasterConfig } from '../../shared/config/master-config';
import { createLogger } from '../../shared/platform/logger';
import { makeAlert, publishAlert } from '../../test/helpers/alerts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { masterTestEnv } from '../../test/helpers/master-env';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { startWebhookReceiver, type TestWebhookReceiver } from '../../test/helpers/webhook';
import { createMaster, type Master } from '../app';
import type { WebhookPayload } from './notification-format';
import { webhookDeliveryId } from './webhook-notifier';

describe('webhook delivery ids', () => {
  it('are stable per outbox row, distinct between rows, and independent of the rows order', () => {
    expect(webhookDeliveryId(['42'])).toBe('notification-42');
    expect(webhookDeliveryId(['42'])).not.toBe(webhookDeliveryId(['43']));
    expect(webhookDeliveryId(['1', '2'])).toBe(webhookDeliveryId(['2', '1']));
    expect(webhookDeliveryId(['1', '2'])).not.toBe(webhookDeliveryId(['1', '3']));
  });

  describe('when the receiver fails and the master retries', () => {
    let t: TestDatabase;
    let r: TestRedis;
    let hook: TestWebhookReceiver;
    let master: Master | undefined;

    beforeAll(async () => {
      [t, r, hook] = await Promise.all([createTestDatabase(), createTestRedis(), startWebhookReceiver()]);
    });
    afterAll(async () => {
      await master?.close();
      await hook?.stop();
      await r?.cleanup();
      await t?.drop();
    });

    it('sends the same delivery id (header and body) on every attempt of one alert, and another for the next alert', async () => {
      hook.respond(({ index }) => (index < 2 ? 500 : 200));
      const config = loadMasterConfig({ ...masterTestEnv(t.url, r), NOTIFY: 'webhook', WEBHOOK_URL: hook.url });
      master = await createMaster({
        config,
        logger: createLogger({ name: 'master', level: 'silent' }),
        tuning: { streamBlockMs: 500, pairsRefreshMs: 200, notifyPollMs: 100, notifyRetryBaseMs: 100 },
      });
      const first = makeAlert({ pair: 'DLV-USD' });
      await publishAlert(r.redis, r.keys, first);
      const calls = await hook.waitForRequests(3, 20_000);
      const ids = calls.map((c) => c.headers['x-tickwatch-delivery']);
      expect(calls.map((c) => c.status)).toEqual([500, 500, 200]);
      expect(new Set(ids).size).toBe(1);
      expect(calls.map((c) => (c.json as WebhookPayload).delivery_id)).toEqual(ids);
      const [row] = await t.db('notifications').where({ channel: 'webhook' }).select('id', 'status', 'attempts');
      expect(row).toMatchObject({ status: 'sent', attempts: 3 });
      expect(ids[0]).toBe(`notification-${row.id}`);

      await publishAlert(r.redis, r.keys, makeAlert({ pair: 'DLV-USD' }));
      const [, , , next] = await hook.waitForRequests(4, 20_000);
      expect(next!.headers['x-tickwatch-delivery']).not.toBe(ids[0]);
    });
  });
});
