import { makeStoredAlert } from '../../test/helpers/alerts';
import { deliveryFailure as failure } from '../../test/helpers/delivery-error';
import { startTelegramServer, telegramRateLimited, TELEGRAM_MAX_TEXT, type TelegramServer } from '../../test/helpers/chat-servers';
import { describeError } from '../../shared/platform/errors';
import { createLogger } from '../../shared/platform/logger';
import { renderTelegram } from './chat-format';
import { createTelegramSender } from './telegram-sender';

let deliveries = 0;
const options = () => ({ summary: false, deliveryId: `delivery-telegram-${++deliveries}`, receiverName: 'bob' });
const many = (n: number, botId = 'eth-bot') => Array.from({ length: n }, (_, i) => makeStoredAlert({ pair: `T${i}-USD`, botId }));


describe('Telegram sender against a local Bot API', () => {
  let tg: TelegramServer;
  let sender: ReturnType<typeof createTelegramSender>;
  let target: { bot_token: string; chat_id: string };
  beforeAll(async () => {
    tg = await startTelegramServer();
    sender = createTelegramSender({ apiBase: `${tg.apiBase}/`, timeoutMs: 1000 });
    target = { bot_token: tg.botToken, chat_id: tg.chatId };
  });
  afterAll(async () => {
    await sender.close();
    await tg.stop();
  });

  it('posts sendMessage {chat_id, text, parse_mode: HTML} to /bot<token>/ and returns Telegram\'s message id', async () => {
    const [a] = many(1, 'x<y>&z');
    const { messageId } = await sender.send(target, [a!], options());
    const sent = tg.messages.at(-1)!;
    expect(messageId).toBe(String(sent.messageId));
    const request = tg.requests.at(-1)!;
    expect(request.path).toBe(`/bot${tg.botToken}/sendMessage`);
    expect(request.json).toMatchObject({ chat_id: tg.chatId, parse_mode: 'HTML' });
    // What the user reads: the escaped characters come back as themselves.
    expect(sent.text).toContain(`${a!.pair} ▲ `);
    expect(sent.text).toContain('· bot x<y>&z ·');
    expect(sent.html).toContain('bot x&lt;y&gt;&amp;z');
  });

  it('says a digest of alerts held during quiet hours is one', async () => {
    await sender.send(target, many(2), { ...options(), summary: true, heldFor: 'quiet_hours' });
    expect(tg.messages.at(-1)!.text.split('\n')[0]).toBe('Tickwatch digest: 2 alerts held back during quiet hours');
  });

  it('splits a long notification into messages Telegram accepts, all within 4096 characters', async () => {
    const before = tg.messages.length;
    const { messageId } = await sender.send(target, many(60, 'b'.repeat(40)), options());
    const sent = tg.messages.slice(before);
    expect(sent.length).toBeGreaterThan(1);
    expect(sent.every((m) => m.text.length <= TELEGRAM_MAX_TEXT)).toBe(true);
    expect(sent.flatMap((m) => m.text.split('\n').slice(1))).toHaveLength(60);
    expect(messageId).toBe(sent.map((m) => m.messageId).join(','));
  });

  it('sends a text of exactly 4096 characters as one message, and one character more as two', async () => {
    const sized = (length: number) => {
      const alerts = many(30);
      const size = renderTelegram(alerts, { summary: false })[0]!.length;
      alerts[29] = { ...alerts[29]!, botId: `${alerts[29]!.botId}${'y'.repeat(length - size)}` };
      return alerts;
    };
    let before = tg.messages.length;
    await sender.send(target, sized(TELEGRAM_MAX_TEXT), options());
    expect(tg.messages.slice(before).map((m) => m.html.length)).toEqual([TELEGRAM_MAX_TEXT]);
    before = tg.messages.length;
    await sender.send(target, sized(TELEGRAM_MAX_TEXT + 1), options());
    expect(tg.messages.slice(before)).toHaveLength(2);
  });

  it('is a stand-in that refuses what Telegram refuses', async () => {
    const post = (body: unknown) => fetch(`${tg.apiBase}/bot${tg.botToken}/sendMessage`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const answer = async (body: unknown) => {
      const r = await post(body);
      return [r.status, ((await r.json()) as { description?: string }).description];
    };
    expect(await answer({ chat_id: tg.chatId, text: 'x'.repeat(4097) })).toEqual([400, 'Bad Request: message is too long']);
    expect((await post({ chat_id: tg.chatId, text: `<b>${'&amp;'.repeat(4096)}</b>`, parse_mode: 'HTML' })).status).toBe(200);
    expect(await answer({ chat_id: tg.chatId, text: 'a < b', parse_mode: 'HTML' })).toEqual([400, expect.stringMatching(/^Bad Request: Can't parse entities/)]);
    expect(await answer({ chat_id: tg.chatId, text: 'AT&T', parse_mode: 'HTML' })).toEqual([400, expect.stringMatching(/^Bad Request: Can't parse entities/)]);
    expect(await answer({ chat_id: tg.chatId, text: '<div>x</div>', parse_mode: 'HTML' })).toEqual([400, expect.stringMatching(/unsupported start tag "div"/)]);
    expect(await answer({ chat_id: tg.chatId, text: '<b><i>x</b></i>', parse_mode: 'HTML' })).toEqual([400, expect.stringMatching(/unexpected end tag/)]);
  });

  describe('when Telegram answers 429', () => {
    it('honours parameters.retry_after, and resumes a split notification where it stopped', async () => {
      tg.queue(telegramRateLimited(5));
      const err = await failure(sender.send(target, many(1), options()));
      expect([err.transient, err.retryAfterMs, err.message]).toEqual([true, 5000, 'telegram answered HTTP 429: Too Many Requests: retry after 5']);
      const same = options();
      const alerts = many(60, 'c'.repeat(40));
      const before = tg.messages.length;
      tg.queue(null, telegramRateLimited(3));
      const partial = await failure(sender.send(target, alerts, same));
      expect(partial.retryAfterMs).toBe(3000);
      expect(tg.messages.length).toBe(before + 1);
      await sender.send(target, alerts, same);
      const sent = tg.messages.slice(before);
      expect(new Set(sent.map((m) => m.text)).size).toBe(sent.length);
      expect(sent.flatMap((m) => m.text.split('\n').slice(1))).toHaveLength(60);
    });
  });

  describe('classification', () => {
    it('treats chat not found (400), bot blocked (403) and a wrong token (401) as permanent', async () => {
      const notFound = await failure(sender.send({ ...target, chat_id: '999' }, many(1), options()));
      expect([notFound.transient, notFound.message]).toEqual([false, 'telegram answered HTTP 400: Bad Request: chat not found']);
      const blocked = await failure(sender.send({ ...target, chat_id: tg.blockedChatId }, many(1), options()));
      expect([blocked.transient, blocked.message]).toEqual([false, 'telegram answered HTTP 403: Forbidden: bot was blocked by the user']);
      const wrong = await failure(sender.send({ ...target, bot_token: '7000000001:not-the-token' }, many(1), options()));
      expect([wrong.transient, wrong.message]).toEqual([false, 'telegram answered HTTP 401: Unauthorized']);
      const odd = await failure(sender.send({ ...target, bot_token: '../../x?y' }, many(1), options()));
      expect(odd.transient).toBe(false);
    });

    it('treats 5xx and timeouts as transient', async () => {
      tg.queue({ status: 502, body: 'Bad Gateway' });
      expect((await failure(sender.send(target, many(1), options()))).transient).toBe(true);
      tg.queue({ status: 200, body: { ok: true, result: { message_id: 1 } }, delayMs: 3000 });
      const slow = await failure(sender.send(target, many(1), options()));
      expect([slow.transient, slow.message]).toEqual([true, 'telegram request failed: no answer within 1000 ms']);
    });
  });

  describe('the bot token', () => {
    it('never appears in an error message, its cause, a log line or what the outbox would store', async () => {
      tg.queue({ status: 400, body: { ok: false, error_code: 400, description: `Bad Request: bot${tg.botToken} at ${tg.apiBase}/bot${tg.botToken}/sendMessage` } });
      const echoed = await failure(sender.send(target, many(1), options()));
      expect(echoed.message).toBe('telegram answered HTTP 400: Bad Request: *** at ***');
      const closed = await startTelegramServer();
      await closed.stop();
      const unreachable = await failure(createTelegramSender({ apiBase: closed.apiBase }).send({ bot_token: closed.botToken, chat_id: '1' }, many(1), options()));
      expect(unreachable.transient).toBe(true);
      tg.queue({ status: 200, body: {}, delayMs: 3000 });
      const slow = await failure(sender.send(target, many(1), options()));

      const lines: string[] = [];
      const logger = createLogger({ name: 'token-test', level: 'debug', pretty: false, destination: { write: (l: string) => void lines.push(l) } });
      for (const err of [echoed, unreachable, slow]) {
        // What the delivery loop does with a failure: last_error is the message, the log line carries it and the error.
        logger.warn({ err, reason: err.message, last_error: describeError(err) }, 'telegram notification failed; will retry');
        const everything = `${err.message} ${describeError(err)} ${String(err.cause)} ${(err.cause as Error | undefined)?.stack} ${err.stack} ${JSON.stringify(err)}`;
        expect(everything).not.toContain(tg.botToken);
        expect(everything).not.toContain(closed.botToken);
      }
      expect(lines).toHaveLength(3);
      for (const line of lines) expect(line).not.toMatch(new RegExp(`${tg.botToken.split(':')[1]}|${closed.botToken.split(':')[1]}`));
    });
  });
});
