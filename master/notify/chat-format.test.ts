import fc from 'fast-check';
import { makeStoredAlert } from '../../test/helpers/alerts';
import { parseTelegramHtml } from '../../test/helpers/chat-servers';
import type { StoredAlert } from '../ingest/alert-repository';
import {
  chatAlertLine,
  chatHeadline,
  discordEmbedChars,
  DISCORD_MAX_CONTENT,
  DISCORD_MAX_EMBED_TOTAL,
  DISCORD_MAX_EMBEDS,
  MAX_CHAT_PARTS,
  renderDiscord,
  renderSlack,
  renderTelegram,
  SLACK_MAX_BLOCKS,
  TELEGRAM_MAX_TEXT,
} from './chat-format';

const alert = (over: Partial<StoredAlert> = {}): StoredAlert => ({
  ...makeStoredAlert(),
  botId: 'btc-bot',
  pair: 'BTC-USD',
  direction: 'up',
  price: '51250.500000000000000000',
  referencePrice: '50000.000000000000000000',
  changePercent: '2.501000000000000000',
  observedAt: new Date('2026-11-29T12:00:00.000Z'),
  ...over,
});
const many = (n: number, over: Partial<StoredAlert> = {}) =>
  Array.from({ length: n }, (_, i) => alert({ pair: `P${i}-USD`, observedAt: new Date(Date.UTC(2026, 10, 29, 12, 0, i)), ...over }));

describe('one alert as a chat line', () => {
  it('gives pair, arrow, signed change, price, reference, bot and observed time, decimals exactly as stored', () => {
    expect(chatAlertLine(alert())).toBe('BTC-USD ▲ +2.501% at 51250.5 (ref 50000) · bot btc-bot · 2026-11-29T12:00:00.000Z');
    const down = alert({ direction: 'down', changePercent: '-0.000000000000000001', price: '12345678901234567890.123456789012345678' });
    // A float would print 12345678901234567000 and -1e-18.
    expect(chatAlertLine(down)).toBe('BTC-USD ▼ -0.000000000000000001% at 12345678901234567890.123456789012345678 (ref 50000) · bot btc-bot · 2026-11-29T12:00:00.000Z');
  });

  it('says when the message is a digest of held-back alerts', () => {
    expect(chatHeadline([alert()], { summary: false })).toBe('Tickwatch alert');
    expect(chatHeadline(many(3), { summary: false })).toBe('Tickwatch: 3 alerts (P0-USD, P1-USD, P2-USD)');
    expect(chatHeadline(many(7), { summary: false })).toBe('Tickwatch: 7 alerts (P0-USD, P1-USD, P2-USD, P3-USD, P4-USD, …)');
    expect(chatHeadline(many(2), { summary: true })).toBe('Tickwatch digest: 2 alerts held back while notifications were paused');
    expect(chatHeadline(many(1), { summary: true, heldFor: 'quiet_hours' })).toBe('Tickwatch digest: 1 alert held back during quiet hours');
    expect(renderTelegram(many(3), { summary: true, heldFor: 'quiet_hours' })[0]).toMatch(/^<b>Tickwatch digest: 3 alerts held back during quiet hours<\/b>\n/);
    expect(renderSlack(many(3), { summary: true, heldFor: 'quiet_hours' }).text).toBe('Tickwatch digest: 3 alerts held back during quiet hours');
    expect(renderDiscord(many(3), { summary: true, heldFor: 'quiet_hours' })[0]!.content).toBe('**Tickwatch digest: 3 alerts held back during quiet hours**');
  });
});

describe('Slack: one message, "and N more" past 50 blocks', () => {
  it('escapes &, < and > and sends the line as text and as a section', () => {
    const m = renderSlack([alert({ botId: 'a<b>&c' })], { summary: false });
    expect(m.text).toBe('Tickwatch alert: BTC-USD ▲ +2.501% at 51250.5 (ref 50000) · bot a&lt;b&gt;&amp;c · 2026-11-29T12:00:00.000Z');
    expect(m.blocks).toHaveLength(2);
    expect(m.blocks[1]!.text!.text).toBe('*BTC-USD* ▲ +2.501% at 51250.5 (ref 50000) · bot a&lt;b&gt;&amp;c · 2026-11-29T12:00:00.000Z');
  });

  it('lists 49 alerts in 50 blocks, and past that 48 and a closing count', () => {
    const fits = renderSlack(many(SLACK_MAX_BLOCKS - 1), { summary: false });
    expect(fits.blocks).toHaveLength(SLACK_MAX_BLOCKS);
    expect(fits.blocks.every((b) => b.type === 'section')).toBe(true);
    const over = renderSlack(many(SLACK_MAX_BLOCKS), { summary: false });
    expect(over.blocks).toHaveLength(SLACK_MAX_BLOCKS);
    expect(over.blocks.filter((b) => b.type === 'section')).toHaveLength(SLACK_MAX_BLOCKS - 1);
    expect(over.blocks[SLACK_MAX_BLOCKS - 1]).toEqual({ type: 'context', elements: [{ type: 'mrkdwn', text: '…and 2 more (see the alert history)' }] });
    expect(renderSlack(many(1000), { summary: true }).blocks.at(-1)!.elements![0]!.text).toBe('…and 952 more (see the alert history)');
  });
});

describe('Discord: split by 10 embeds and 6000 characters, at most 5 messages', () => {
  it('puts 10 alerts in one message and the 11th in a second, labelled', () => {
    const one = renderDiscord(many(DISCORD_MAX_EMBEDS), { summary: false });
    expect(one).toHaveLength(1);
    expect(one[0]!.content).toBe('**Tickwatch: 10 alerts (P0-USD, P1-USD, P2-USD, P3-USD, P4-USD, …)**');
    expect(one[0]!.embeds).toHaveLength(10);
    expect(one[0]!.allowed_mentions).toEqual({ parse: [] });
    const two = renderDiscord(many(DISCORD_MAX_EMBEDS + 1), { summary: false });
    expect(two.map((m) => m.embeds.length)).toEqual([10, 1]);
    expect(two.map((m) => m.content.endsWith(`(part 1/2)`) || m.content.endsWith(`(part 2/2)`))).toEqual([true, true]);
  });

  it('gives each alert an embed: change in the title, price, reference, bot and time in the description', () => {
    const [m] = renderDiscord([alert({ botId: 'my_bot*1', direction: 'down', changePercent: '-1.5' })], { summary: false });
    expect(m!.embeds[0]).toEqual({
      title: 'BTC-USD ▼ -1.5%',
      description: 'at 51250.5 (ref 50000) · bot my\\_bot\\*1 · 2026-11-29T12:00:00.000Z',
      timestamp: '2026-11-29T12:00:00.000Z',
      color: 0xd13b3b,
    });
  });

  it('starts a new message when the next embed would pass 6000 characters', () => {
    const base = discordEmbedChars(renderDiscord([alert({ botId: '' })], { summary: false })[0]!.embeds);
    const sized = (chars: number) => alert({ botId: 'x'.repeat(chars - base) });
    const exact = Array.from({ length: 4 }, () => sized(DISCORD_MAX_EMBED_TOTAL / 4));
    expect(renderDiscord(exact, { summary: false }).map((m) => m.embeds.length)).toEqual([4]);
    expect(discordEmbedChars(renderDiscord(exact, { summary: false })[0]!.embeds)).toBe(DISCORD_MAX_EMBED_TOTAL);
    const over = [...exact.slice(0, 3), sized(DISCORD_MAX_EMBED_TOTAL / 4 + 1)];
    expect(renderDiscord(over, { summary: false }).map((m) => m.embeds.length)).toEqual([3, 1]);
  });

  it('counts what 5 messages cannot hold in the last one', () => {
    expect(renderDiscord(many(50), { summary: false }).map((m) => m.embeds.length)).toEqual([10, 10, 10, 10, 10]);
    const over = renderDiscord(many(51), { summary: false });
    expect(over).toHaveLength(MAX_CHAT_PARTS);
    expect(over.at(-1)!.content).toMatch(/\(part 5\/5\)\n…and 1 more \(see the alert history\)$/);
    expect(over.slice(0, -1).every((m) => !m.content.includes('more'))).toBe(true);
  });
});

/** Alerts whose whole Telegram text is exactly `length` characters (one alert's bot id takes up the difference). */
function telegramAlertsOfLength(count: number, length: number): StoredAlert[] {
  const alerts = many(count);
  const size = renderTelegram(alerts, { summary: false }).join('').length;
  alerts[count - 1] = { ...alerts[count - 1]!, botId: `${alerts[count - 1]!.botId}${'y'.repeat(length - size)}` };
  return alerts;
}

describe('Telegram: HTML within 4096 characters, split at line boundaries', () => {
  it('escapes for HTML so Telegram shows the text as it is', () => {
    const [text] = renderTelegram([alert({ botId: 'a<b>&"c' })], { summary: false });
    expect(text).toBe('<b>Tickwatch alert</b>\n<b>BTC-USD</b> ▲ +2.501% at 51250.5 (ref 50000) · bot a&lt;b&gt;&amp;&quot;c · 2026-11-29T12:00:00.000Z');
    expect(parseTelegramHtml(text!)).toEqual({ text: 'Tickwatch alert\nBTC-USD ▲ +2.501% at 51250.5 (ref 50000) · bot a<b>&"c · 2026-11-29T12:00:00.000Z' });
  });

  it('sends exactly 4096 characters as one message and 4097 as two', () => {
    const exact = renderTelegram(telegramAlertsOfLength(30, TELEGRAM_MAX_TEXT), { summary: false });
    expect(exact.map((t) => t.length)).toEqual([TELEGRAM_MAX_TEXT]);
    const over = renderTelegram(telegramAlertsOfLength(30, TELEGRAM_MAX_TEXT + 1), { summary: false });
    expect(over).toHaveLength(2);
    expect(over.every((t) => t.length <= TELEGRAM_MAX_TEXT && !('error' in parseTelegramHtml(t)))).toBe(true);
    expect(over[0]).toMatch(/^<b>Tickwatch: 30 alerts \(.*\)<\/b> \(part 1\/2\)\n/);
    // Every alert once, in order, none counted as missing.
    const listed = over.flatMap((t) => t.split('\n').slice(1));
    expect(listed).toHaveLength(30);
    expect(listed.map((l) => /^<b>(P\d+-USD)<\/b>/.exec(l)![1])).toEqual(Array.from({ length: 30 }, (_, i) => `P${i}-USD`));
  });

  it('keeps every part within the limit, valid HTML, each alert at most once and the rest counted', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 0, max: 300 }), fc.boolean(), (count, extra, huge) => {
        // A huge bot id makes a line longer than a message: it is cut, never in the middle of an entity.
        const alerts = many(count, { botId: `b${'<'.repeat(extra % 7)}${'z'.repeat(huge ? extra * 20 : extra)}${'&>'.repeat(huge ? 2000 : extra % 5)}` });
        const parts = renderTelegram(alerts, { summary: false });
        if (parts.length > MAX_CHAT_PARTS) return false;
        if (!parts.every((t) => t.length <= TELEGRAM_MAX_TEXT && !('error' in parseTelegramHtml(t)))) return false;
        const lines = parts.flatMap((t) => t.split('\n').slice(1));
        const more = lines.filter((l) => l.startsWith('…and '));
        const omitted = more.length === 0 ? 0 : Number(/…and (\d+) more/.exec(more[0]!)![1]);
        return more.length <= 1 && lines.length - more.length + omitted === count && (more.length === 0 || lines.at(-1) === more[0]);
      }),
      { numRuns: 60 },
    );
  });

  it('counts what 5 messages cannot hold in the last one', () => {
    const parts = renderTelegram(many(400), { summary: false });
    expect(parts).toHaveLength(MAX_CHAT_PARTS);
    expect(parts.at(-1)).toMatch(/\n…and \d+ more \(see the alert history\)$/);
  });
});

describe('Discord messages stay within every limit', () => {
  it('whatever the number and size of the alerts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 120 }), fc.integer({ min: 0, max: 2000 }), (count, extra) => {
        const messages = renderDiscord(many(count, { botId: `b${'z'.repeat(extra)}` }), { summary: count % 2 === 0 });
        const listed = messages.reduce((n, m) => n + m.embeds.length, 0);
        const omitted = Number(/…and (\d+) more/.exec(messages.at(-1)!.content)?.[1] ?? 0);
        return (
          messages.length <= MAX_CHAT_PARTS &&
          messages.every((m) => m.content.length <= DISCORD_MAX_CONTENT && m.embeds.length <= DISCORD_MAX_EMBEDS && discordEmbedChars(m.embeds) <= DISCORD_MAX_EMBED_TOTAL) &&
          listed + omitted === count
        );
      }),
      { numRuns: 60 },
    );
  });
});
