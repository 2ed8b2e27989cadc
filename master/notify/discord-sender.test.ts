import { makeStoredAlert } from '../../test/helpers/alerts';
import { deliveryFailure as failure } from '../../test/helpers/delivery-error';
import { discordRateLimited, startDiscordServer, type DiscordServer } from '../../test/helpers/chat-servers';
import { describeError } from '../../shared/platform/errors';
import { createDiscordSender } from './discord-sender';

let deliveries = 0;
const options = () => ({ summary: false, deliveryId: `delivery-discord-${++deliveries}`, receiverName: 'team' });
const many = (n: number) => Array.from({ length: n }, (_, i) => makeStoredAlert({ pair: `D${i}-USD`, botId: 'bot_with_underscores' }));


describe('Discord sender against a local webhook', () => {
  let discord: DiscordServer;
  const sender = createDiscordSender({ timeoutMs: 1000 });
  beforeAll(async () => {
    discord = await startDiscordServer();
  });
  afterAll(async () => {
    await sender.close();
    await discord.stop();
  });

  it('posts {content, embeds} with ?wait=true and returns the id Discord gave the message', async () => {
    const before = discord.messages.length;
    const { messageId } = await sender.send({ url: discord.url }, many(1), options());
    const sent = discord.messages.slice(before);
    expect(sent).toHaveLength(1);
    expect(messageId).toBe(sent[0]!.id);
    expect(discord.requests.at(-1)!.path).toMatch(/\?wait=true$/);
    expect(sent[0]!.content).toBe('**Tickwatch alert**');
    expect(sent[0]!.embeds![0]!.description).toContain('bot bot\\_with\\_underscores');
    expect(sent[0]!.allowed_mentions).toEqual({ parse: [] });
  });

  it('sends 10 alerts as one message and 11 as two, every part within Discord\'s limits', async () => {
    let before = discord.messages.length;
    await sender.send({ url: discord.url }, many(10), options());
    expect(discord.messages.slice(before).map((m) => m.embeds!.length)).toEqual([10]);
    before = discord.messages.length;
    const { messageId } = await sender.send({ url: discord.url }, many(11), options());
    const sent = discord.messages.slice(before);
    expect(sent.map((m) => m.embeds!.length)).toEqual([10, 1]);
    expect(messageId).toBe(sent.map((m) => m.id).join(','));
  });

  it('is a stand-in that refuses what Discord refuses', async () => {
    const post = (body: unknown) => fetch(discord.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const long = await post({ content: 'x'.repeat(2001) });
    expect(long.status).toBe(400);
    expect(await long.json()).toMatchObject({ code: 50035, message: 'Invalid Form Body', errors: { content: { _errors: [{ code: 'BASE_TYPE_MAX_LENGTH' }] } } });
    expect((await post({ embeds: Array.from({ length: 11 }, () => ({ title: 'x' })) })).status).toBe(400);
    expect((await post({ embeds: [{ title: 'x'.repeat(257) }] })).status).toBe(400);
    expect((await post({ embeds: Array.from({ length: 2 }, () => ({ description: 'x'.repeat(3001) })) })).status).toBe(400);
    expect((await post({ embeds: Array.from({ length: 2 }, () => ({ description: 'x'.repeat(3000) })) })).status).toBe(204);
  });

  describe('when Discord answers 429', () => {
    it('honours the JSON retry_after (fractional seconds), not the rounded header', async () => {
      discord.queue(discordRateLimited(0.64));
      const err = await failure(sender.send({ url: discord.url }, many(1), options()));
      expect([err.transient, err.retryAfterMs]).toEqual([true, 640]);
      expect(err.message).toBe('discord answered HTTP 429: You are being rate limited.');
      discord.queue(discordRateLimited(1.1));
      expect((await failure(sender.send({ url: discord.url }, many(1), options()))).retryAfterMs).toBe(1100);
    });

    it('resumes a split notification at the first message not accepted, sending none twice', async () => {
      const before = discord.messages.length;
      const alerts = many(25);
      const same = options();
      discord.queue(null, discordRateLimited(0.25));
      const err = await failure(sender.send({ url: discord.url }, alerts, same));
      expect(err.message).toBe('discord answered HTTP 429 (message 2 of 3): You are being rate limited.');
      expect(discord.messages.length).toBe(before + 1);
      const { messageId } = await sender.send({ url: discord.url }, alerts, same);
      const sent = discord.messages.slice(before);
      expect(sent.map((m) => m.embeds!.length)).toEqual([10, 10, 5]);
      expect(messageId).toBe(sent.map((m) => m.id).join(','));
      // A retry after every part went out (the outbox could not record it) sends nothing.
      const requests = discord.requests.length;
      await expect(sender.send({ url: discord.url }, alerts, same)).resolves.toEqual({ messageId });
      expect(discord.requests.length).toBe(requests);
    });
  });

  describe('classification', () => {
    it('treats Discord\'s 400, 401 and 404 as permanent, quoting its error JSON', async () => {
      discord.queue({ status: 400, body: { code: 50035, errors: { embeds: { _errors: [{ code: 'MAX_EMBED_SIZE_EXCEEDED', message: 'Embed size exceeds maximum size of 6000' }] } }, message: 'Invalid Form Body' } });
      const form = await failure(sender.send({ url: discord.url }, many(1), options()));
      expect(form.transient).toBe(false);
      expect(form.message).toBe('discord answered HTTP 400: Invalid Form Body (code 50035): {"embeds":{"_errors":[{"code":"MAX_EMBED_SIZE_EXCEEDED","message":"Embed size exceeds maximum size of 6000"}]}}');
      const wrongToken = await failure(sender.send({ url: discord.url.replace(/\/[^/]+$/, '/not-the-token') }, many(1), options()));
      expect([wrongToken.transient, wrongToken.message]).toEqual([false, 'discord answered HTTP 401: Invalid Webhook Token (code 50027)']);
      const unknown = await failure(sender.send({ url: discord.url.replace(/webhooks\/\d+/, 'webhooks/1') }, many(1), options()));
      expect([unknown.transient, unknown.message]).toEqual([false, 'discord answered HTTP 404: Unknown Webhook (code 10015)']);
    });

    it('treats 5xx and timeouts as transient', async () => {
      discord.queue({ status: 502, body: 'bad gateway' });
      expect((await failure(sender.send({ url: discord.url }, many(1), options()))).transient).toBe(true);
      discord.queue({ status: 200, body: {}, delayMs: 3000 });
      const slow = await failure(sender.send({ url: discord.url }, many(1), options()));
      expect([slow.transient, slow.message]).toEqual([true, 'discord request failed: no answer within 1000 ms']);
    });
  });

  it('never shows the webhook token, even when Discord echoes the URL', async () => {
    discord.queue({ status: 400, body: { message: `Invalid Form Body for ${discord.url}?wait=true, token ${discord.token}`, code: 50035 } });
    const err = await failure(sender.send({ url: discord.url }, many(1), options()));
    expect(err.message).toBe('discord answered HTTP 400: Invalid Form Body for ***, token *** (code 50035)');
    const closed = await startDiscordServer();
    await closed.stop();
    const unreachable = await failure(sender.send({ url: closed.url }, many(1), options()));
    for (const e of [err, unreachable]) expect(`${e.message} ${describeError(e)} ${String(e.cause)} ${e.stack}`).not.toMatch(new RegExp(`${discord.token}|${closed.token}`));
  });
});
