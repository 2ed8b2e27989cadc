import { makeStoredAlert } from '../../test/helpers/alerts';
import { deliveryFailure as failure } from '../../test/helpers/delivery-error';
import { slackError, slackRateLimited, startSlackServer, type SlackServer } from '../../test/helpers/chat-servers';
import { describeError } from '../../shared/platform/errors';
import { SLACK_MAX_BLOCKS } from './chat-format';
import { createSlackSender } from './slack-sender';

const options = { summary: false, deliveryId: 'delivery-slack-1', receiverName: 'team' };
const many = (n: number) => Array.from({ length: n }, (_, i) => makeStoredAlert({ pair: `S${i}-USD` }));


describe('Slack sender against a local incoming webhook', () => {
  let slack: SlackServer;
  const sender = createSlackSender({ timeoutMs: 1000 });
  beforeAll(async () => {
    slack = await startSlackServer();
  });
  afterAll(async () => {
    await sender.close();
    await slack.stop();
  });

  it('posts {text, blocks} that Slack accepts, and names the message by its delivery id', async () => {
    const [a] = many(1);
    await expect(sender.send({ url: slack.url }, [a!], options)).resolves.toEqual({ messageId: 'delivery-slack-1' });
    const body = slack.messages.at(-1)!;
    expect(body.text).toContain(`Tickwatch alert: ${a!.pair} `);
    expect(body.blocks).toHaveLength(2);
    expect(slack.requests.at(-1)!.headers['content-type']).toBe('application/json');
  });

  it('stays within 50 blocks at the boundary: 49 alerts listed, 50 listed as 48 and "and 2 more"', async () => {
    await sender.send({ url: slack.url }, many(SLACK_MAX_BLOCKS - 1), options);
    expect(slack.messages.at(-1)!.blocks).toHaveLength(SLACK_MAX_BLOCKS);
    await sender.send({ url: slack.url }, many(SLACK_MAX_BLOCKS), options);
    const blocks = slack.messages.at(-1)!.blocks as { type: string; elements?: { text: string }[] }[];
    expect(blocks).toHaveLength(SLACK_MAX_BLOCKS);
    expect(blocks.at(-1)!.elements![0]!.text).toBe('…and 2 more (see the alert history)');
  });

  it('is a stand-in that refuses what Slack refuses (so the boundary test above can fail)', async () => {
    const post = (body: unknown) => fetch(slack.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const section = { type: 'section', text: { type: 'mrkdwn', text: 'x' } };
    const tooMany = await post({ text: 'x', blocks: Array.from({ length: SLACK_MAX_BLOCKS + 1 }, () => section) });
    expect([tooMany.status, await tooMany.text()]).toEqual([400, 'invalid_blocks']);
    const tooLong = await post({ blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'x'.repeat(3001) } }] });
    expect(tooLong.status).toBe(400);
    const empty = await post({});
    expect([empty.status, await empty.text()]).toEqual([400, 'no_text']);
  });

  describe('when Slack answers 429', () => {
    it('is transient and carries Retry-After as retryAfterMs; the next attempt goes through', async () => {
      slack.queue(slackRateLimited(7));
      const err = await failure(sender.send({ url: slack.url }, many(1), options));
      expect(err.transient).toBe(true);
      expect(err.retryAfterMs).toBe(7000);
      expect(err.message).toBe('slack answered HTTP 429: rate_limited');
      const before = slack.messages.length;
      await sender.send({ url: slack.url }, many(1), options);
      expect(slack.messages.length).toBe(before + 1);
    });
  });

  describe('classification', () => {
    it('treats 400 invalid_payload and 404 no_service as permanent, with Slack\'s error text', async () => {
      slack.queue(slackError(400, 'invalid_payload'));
      const bad = await failure(sender.send({ url: slack.url }, many(1), options));
      expect([bad.transient, bad.message]).toEqual([false, 'slack answered HTTP 400: invalid_payload']);
      const invalid = await failure(sender.send({ url: `not a url ${slack.token}` }, many(1), options));
      expect([invalid.transient, invalid.message]).toEqual([false, 'slack URL is not a valid URL; not sending']);
      const gone = await failure(sender.send({ url: `${slack.url}x` }, many(1), options));
      expect([gone.transient, gone.message]).toEqual([false, 'slack answered HTTP 404: no_service']);
    });

    it('treats 5xx and a missing answer as transient', async () => {
      slack.queue(slackError(500, 'rollup_error'));
      const down = await failure(sender.send({ url: slack.url }, many(1), options));
      expect([down.transient, down.retryAfterMs]).toEqual([true, undefined]);
      slack.queue({ status: 200, body: 'ok', delayMs: 3000 });
      const slow = await failure(sender.send({ url: slack.url }, many(1), options));
      expect([slow.transient, slow.message]).toEqual([true, 'slack request failed: no answer within 1000 ms']);
    });
  });

  describe('the webhook URL is a secret', () => {
    it('never appears in an error, even when Slack echoes it or cannot be reached', async () => {
      slack.queue(slackError(400, `invalid_payload for ${slack.url} (token ${slack.token})`));
      const echoed = await failure(sender.send({ url: slack.url }, many(1), options));
      expect(echoed.message).toBe('slack answered HTTP 400: invalid_payload for *** (token ***)');
      const closed = await startSlackServer();
      await closed.stop();
      const unreachable = await failure(sender.send({ url: closed.url }, many(1), options));
      expect(unreachable.transient).toBe(true);
      for (const err of [echoed, unreachable]) {
        const everything = `${err.message} ${describeError(err)} ${String(err.cause)} ${err.stack}`;
        expect(everything).not.toContain(slack.token);
        expect(everything).not.toContain(closed.token);
      }
    });
  });
});
