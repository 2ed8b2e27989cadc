import escapeHtml from 'escape-html';
import type { StoredAlert } from '../ingest/alert-repository';
import { wireDecimal, wireTime } from '../../shared/read-model/alert-wire';
import { formatChange } from './notification-format';

/**
 * The chat channels' messages (Slack, Discord, Telegram): one alert is one concise line, several are a list under a
 * headline, a held-back digest says so. Each renderer stays within its service's documented limits; what does not fit
 * is split into several messages (Discord, Telegram) or counted in a closing "and N more" (Slack, and the last part
 * when even MAX_CHAT_PARTS messages are not enough). Decimals are the stored strings without padding, never floats.
 */

/** Most messages one notification is split into (Discord, Telegram); beyond them the last one ends with "and N more". */
export const MAX_CHAT_PARTS = 5;

/** Slack: at most 50 blocks per message, 3000 characters of text per section block. */
export const SLACK_MAX_BLOCKS = 50;
export const SLACK_MAX_SECTION_TEXT = 3000;
/** Discord webhook limits: content, embeds per message, embed title, embed description, and all embeds together. */
export const DISCORD_MAX_CONTENT = 2000;
export const DISCORD_MAX_EMBEDS = 10;
export const DISCORD_MAX_EMBED_TITLE = 256;
export const DISCORD_MAX_EMBED_DESCRIPTION = 4096;
export const DISCORD_MAX_EMBED_TOTAL = 6000;
/** Telegram sendMessage: 1-4096 characters of text (counted after entity parsing; we count the HTML, which is longer). */
export const TELEGRAM_MAX_TEXT = 4096;

/** The pieces of one alert's line, every one already a display string. */
export interface ChatAlertParts {
  readonly pair: string;
  /** ▲ up, ▼ down. */
  readonly arrow: string;
  /** Signed change with its percent sign: "+1.25%". */
  readonly change: string;
  readonly price: string;
  readonly reference: string;
  readonly botId: string;
  /** ISO-8601 UTC. */
  readonly observedAt: string;
}

export function chatAlertParts(a: StoredAlert): ChatAlertParts {
  return {
    pair: a.pair,
    arrow: a.direction === 'down' ? '▼' : '▲',
    change: `${formatChange(a.changePercent)}%`,
    price: wireDecimal(a.price),
    reference: wireDecimal(a.referencePrice),
    botId: a.botId,
    observedAt: wireTime(a.observedAt),
  };
}

/** `BTC-USD ▲ +1.25% at 50625 (ref 50000) · bot btc-1 · 2026-11-29T12:00:00.000Z`, with each piece passed through `esc`. */
export function chatAlertLine(a: StoredAlert, esc: (s: string) => string = (s) => s, pairMarkup: (s: string) => string = (s) => s): string {
  const p = chatAlertParts(a);
  return `${pairMarkup(esc(p.pair))} ${p.arrow} ${esc(p.change)} at ${esc(p.price)} (ref ${esc(p.reference)}) · bot ${esc(p.botId)} · ${esc(p.observedAt)}`;
}

/** What a message is: a digest of held-back alerts (`summary`), and why they were held. */
export interface ChatMessageOptions {
  readonly summary: boolean;
  readonly heldFor?: 'quiet_hours' | 'email_cap';
}

/** The first line of a chat message: what it is about and how many alerts. Plain text (escape it for the channel). */
export function chatHeadline(alerts: readonly StoredAlert[], options: ChatMessageOptions): string {
  const n = alerts.length;
  const noun = n === 1 ? 'alert' : 'alerts';
  if (options.summary) {
    const why = options.heldFor === 'quiet_hours' ? 'during quiet hours' : options.heldFor === 'email_cap' ? 'by the sending limit' : 'while notifications were paused';
    return `Tickwatch digest: ${n} ${noun} held back ${why}`;
  }
  if (n === 1) return 'Tickwatch alert';
  const pairs = [...new Set(alerts.map((a) => a.pair))].sort();
  return `Tickwatch: ${n} ${noun} (${pairs.slice(0, 5).join(', ')}${pairs.length > 5 ? ', …' : ''})`;
}

/** The closing line when some alerts are not listed. */
export function moreLine(omitted: number): string {
  return `…and ${omitted} more (see the alert history)`;
}

const partLabel = (i: number, n: number) => ` (part ${i}/${n})`;

/** Slack mrkdwn needs only these three escaped (its own `&amp;`, `&lt;`, `&gt;`); anything else is literal text. */
export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Discord markdown: backslash the characters that would format text or quote a line; mentions are disabled separately. */
export function escapeDiscord(text: string): string {
  return text.replace(/([\\*_~`|>[\]])/g, '\\$1');
}

/** `text` cut to `max` characters with a closing "…"; an entity (`&amp;`) cut in half is dropped whole, so HTML stays valid. */
const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1).replace(/&[#A-Za-z0-9]*$/, '')}…`);

export interface SlackMessage {
  /** The notification text (and what clients without blocks show). */
  readonly text: string;
  readonly blocks: readonly { type: 'section' | 'context'; text?: { type: 'mrkdwn'; text: string }; elements?: { type: 'mrkdwn'; text: string }[] }[];
}

/**
 * One Slack message: a headline section, one section per alert, and when they would pass SLACK_MAX_BLOCKS a closing
 * context block "and N more" (Slack is never split: one notification, one message).
 */
export function renderSlack(alerts: readonly StoredAlert[], options: ChatMessageOptions): SlackMessage {
  const headline = chatHeadline(alerts, options);
  const line = (a: StoredAlert) => clip(chatAlertLine(a, escapeSlack, (p) => `*${p}*`), SLACK_MAX_SECTION_TEXT);
  const room = SLACK_MAX_BLOCKS - 1;
  const listed = alerts.length <= room ? alerts : alerts.slice(0, room - 1);
  const omitted = alerts.length - listed.length;
  const section = (text: string) => ({ type: 'section' as const, text: { type: 'mrkdwn' as const, text } });
  const blocks = [
    section(`*${escapeSlack(headline)}*`),
    ...listed.map((a) => section(line(a))),
    ...(omitted > 0 ? [{ type: 'context' as const, elements: [{ type: 'mrkdwn' as const, text: escapeSlack(moreLine(omitted)) }] }] : []),
  ];
  const text = escapeSlack(alerts.length === 1 && alerts[0] ? `${headline}: ${chatAlertLine(alerts[0])}` : headline);
  return { text, blocks };
}

export interface DiscordEmbed {
  readonly title: string;
  readonly description: string;
  /** ISO-8601: Discord shows it in the embed's footer, in the reader's time zone. */
  readonly timestamp: string;
  readonly color: number;
}

export interface DiscordMessage {
  readonly content: string;
  readonly embeds: readonly DiscordEmbed[];
  /** No @everyone, role or user pings, whatever the text holds. */
  readonly allowed_mentions: { readonly parse: readonly never[] };
}

/** The characters Discord counts against DISCORD_MAX_EMBED_TOTAL (title, description; we use no fields, footer or author). */
export function discordEmbedChars(embeds: readonly DiscordEmbed[]): number {
  return embeds.reduce((n, e) => n + e.title.length + e.description.length, 0);
}

function discordEmbed(a: StoredAlert): DiscordEmbed {
  const p = chatAlertParts(a);
  return {
    title: clip(escapeDiscord(`${p.pair} ${p.arrow} ${p.change}`), DISCORD_MAX_EMBED_TITLE),
    description: clip(escapeDiscord(`at ${p.price} (ref ${p.reference}) · bot ${p.botId} · ${p.observedAt}`), DISCORD_MAX_EMBED_DESCRIPTION),
    timestamp: p.observedAt,
    color: a.direction === 'down' ? 0xd13b3b : 0x2e9e4f,
  };
}

/**
 * Discord messages: the headline as content and one embed per alert, split into messages of at most DISCORD_MAX_EMBEDS
 * embeds and DISCORD_MAX_EMBED_TOTAL characters ("(part i/n)" in the content), at most MAX_CHAT_PARTS of them; what
 * still does not fit is counted in the last message's content.
 */
export function renderDiscord(alerts: readonly StoredAlert[], options: ChatMessageOptions): DiscordMessage[] {
  const headline = escapeDiscord(chatHeadline(alerts, options));
  const embeds = alerts.map(discordEmbed);
  const parts: DiscordEmbed[][] = [];
  let current: DiscordEmbed[] = [];
  let used = 0;
  let taken = 0;
  let full = false;
  for (const embed of embeds) {
    const size = discordEmbedChars([embed]);
    if (current.length > 0 && (current.length === DISCORD_MAX_EMBEDS || used + size > DISCORD_MAX_EMBED_TOTAL)) {
      parts.push(current);
      current = [];
      used = 0;
      if (parts.length === MAX_CHAT_PARTS) {
        full = true;
        break;
      }
    }
    current.push(embed);
    used += size;
    taken += 1;
  }
  if (!full && current.length > 0) parts.push(current);
  const omitted = alerts.length - taken;
  const n = parts.length;
  return parts.map((part, i) => {
    const label = n > 1 ? partLabel(i + 1, n) : '';
    const more = i === n - 1 && omitted > 0 ? `\n${escapeDiscord(moreLine(omitted))}` : '';
    return { content: clip(`**${headline}**${label}${more}`, DISCORD_MAX_CONTENT), embeds: part, allowed_mentions: { parse: [] } };
  });
}

/**
 * Telegram messages (parse_mode HTML, every piece escaped): a bold headline, then one line per alert. When the whole
 * text passes TELEGRAM_MAX_TEXT it is split at line boundaries into messages labelled "(part i/n)", at most
 * MAX_CHAT_PARTS; the last one ends with "and N more" for the alerts that still do not fit.
 */
export function renderTelegram(alerts: readonly StoredAlert[], options: ChatMessageOptions): string[] {
  const headline = escapeHtml(chatHeadline(alerts, options));
  const lines = alerts.map((a) => chatAlertLine(a, escapeHtml, (p) => `<b>${p}</b>`));
  const text = (label: string, body: readonly string[], omitted = 0) =>
    [`<b>${headline}</b>${label}`, ...body, ...(omitted > 0 ? [escapeHtml(moreLine(omitted))] : [])].join('\n');
  const whole = text('', lines);
  if (whole.length <= TELEGRAM_MAX_TEXT) return [whole];

  // Label width is fixed ("(part i/5)"), so a part packed with the widest label fits with its own.
  const widest = partLabel(MAX_CHAT_PARTS, MAX_CHAT_PARTS);
  const parts: string[][] = [];
  let current: string[] = [];
  let next = 0;
  for (; next < lines.length; next++) {
    const line = clip(lines[next]!, TELEGRAM_MAX_TEXT - widest.length - headline.length - 10);
    if (current.length > 0 && text(widest, [...current, line]).length > TELEGRAM_MAX_TEXT) {
      parts.push(current);
      if (parts.length === MAX_CHAT_PARTS) break;
      current = [];
    }
    current.push(line);
  }
  if (next === lines.length) parts.push(current);
  let omitted = lines.length - parts.reduce((k, p) => k + p.length, 0);
  const last = parts[parts.length - 1]!;
  // The closing count must fit in the last part: give up listed lines for it (each one given up is counted too).
  while (omitted > 0 && last.length > 0 && text(widest, last, omitted).length > TELEGRAM_MAX_TEXT) {
    last.pop();
    omitted += 1;
  }
  const n = parts.length;
  return parts.map((body, i) => text(partLabel(i + 1, n), body, i === n - 1 ? omitted : 0));
}
