import { BadRequestError } from '../shared/read-model/bad-request';
import { parseNewReceiver, parseReceiverName, parseReceiverPatch, type ReceiverKind, type ReceiverPatch, type ReceiverSettings } from '../shared/read-model/receiver-settings';

/**
 * `npm run alerts -- receivers list|add|set|remove`: flags turned into the body POST/PATCH /receivers take, checked by
 * the same functions (receiver-settings.ts), refusals naming the flag instead of the body field.
 */

export type ReceiversCommand =
  | { readonly kind: 'receivers-list'; readonly format: 'table' | 'json' }
  | { readonly kind: 'receivers-add'; readonly receiver: ReceiverSettings }
  | { readonly kind: 'receivers-set'; readonly name: string; readonly patchFor: (currentKind: ReceiverKind) => ReceiverPatch }
  | { readonly kind: 'receivers-remove'; readonly name: string };

export const RECEIVER_OPTIONS = {
  kind: { type: 'string' },
  to: { type: 'string' },
  url: { type: 'string' },
  secret: { type: 'string' },
  'bot-token': { type: 'string' },
  'chat-id': { type: 'string' },
  'quiet-hours': { type: 'string' },
  tz: { type: 'string' },
  'group-wait-ms': { type: 'string' },
  'digest-seconds': { type: 'string' },
} as const;

export const RECEIVERS_USAGE = `  npm run alerts -- receivers list [--format table|json]
  npm run alerts -- receivers add <name> --kind K <target flags> [--pair P] [--direction D] [--min-change X] [--quiet-hours HH:MM-HH:MM --tz ZONE] [--group-wait-ms N] [--digest-seconds N]
  npm run alerts -- receivers set <name> [--kind K <target flags>] [the same flags; --quiet-hours none removes them; --pair all matches every pair]
  npm run alerts -- receivers remove <name>`;

export const RECEIVERS_HELP = `Receivers (who gets which alerts; the same checks as POST/PATCH /receivers):
  --kind K             email, webhook, slack, discord or telegram
  target flags         email --to ADDRESS; webhook --url URL [--secret KEY]; slack|discord --url URL;
                       telegram --bot-token TOKEN --chat-id ID (secrets on a command line land in your shell
                       history: prefer --secret "$HOOK_SECRET")
  --pair P             only these pairs (repeat it or a comma list) [default: every pair]
  --direction D        only up or down, or up,down [default: both]
  --min-change X       only alerts with |change percent| >= X [default: any]
  --quiet-hours A-B    hold notifications from A to B local time (e.g. 22:00-07:00, crossing midnight) and send them as
                       one summary when it ends; with --tz ZONE (IANA, e.g. Europe/Lisbon) [default: UTC]
  --group-wait-ms N    alerts within N ms of the first go out as one message [default: 0]
  --digest-seconds N   the same window in seconds (email digests) [default: 0]`;

/** Body field -> flag, for refusals. */
const FLAGS: Record<string, string> = {
  name: 'the receiver name',
  kind: '--kind',
  target: 'the target flags',
  'target.to': '--to',
  'target.url': '--url',
  'target.secret': '--secret',
  'target.bot_token': '--bot-token',
  'target.chat_id': '--chat-id',
  'match.pairs': '--pair',
  'match.directions': '--direction',
  'match.min_change': '--min-change',
  quiet_hours: '--quiet-hours',
  'quiet_hours.start': '--quiet-hours',
  'quiet_hours.end': '--quiet-hours',
  'quiet_hours.tz': '--tz',
  group_wait_ms: '--group-wait-ms',
  digest_seconds: '--digest-seconds',
};

type Values = Record<string, string | string[] | boolean | undefined>;

const SUBCOMMANDS = ['list', 'add', 'set', 'remove'];
const TARGET_FLAGS: Record<string, string> = { to: 'to', url: 'url', secret: 'secret', 'bot-token': 'bot_token', 'chat-id': 'chat_id' };
const SETTING_FLAGS = ['kind', ...Object.keys(TARGET_FLAGS), 'pair', 'direction', 'min-change', 'quiet-hours', 'tz', 'group-wait-ms', 'digest-seconds'];

/** A usage error (exit 2) with this message; the caller wraps it in its own error class. */
export type UsageFactory = (message: string) => Error;

function integer(flag: string, text: string, usage: UsageFactory): number {
  if (!/^\d{1,10}$/.test(text)) throw usage(`${flag} ${JSON.stringify(text)} is invalid: expected a whole number`);
  return Number(text);
}

/** The body fields the flags give (only those given). */
function bodyOf(values: Values, usage: UsageFactory): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (typeof values.kind === 'string') body.kind = values.kind;
  const target: Record<string, string> = {};
  for (const [flag, field] of Object.entries(TARGET_FLAGS)) if (typeof values[flag] === 'string') target[field] = values[flag] as string;
  if (Object.keys(target).length > 0) body.target = target;
  const match: Record<string, unknown> = {};
  const pairs = (values.pair as string[] | undefined)?.flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean);
  if (pairs && !(pairs.length === 1 && pairs[0]!.toLowerCase() === 'all')) match.pairs = pairs;
  if (typeof values.direction === 'string') match.directions = values.direction.split(',').map((d) => d.trim());
  if (typeof values['min-change'] === 'string') match.min_change = values['min-change'];
  if (values.pair !== undefined || values.direction !== undefined || values['min-change'] !== undefined) body.match = match;
  const quiet = values['quiet-hours'];
  if (typeof quiet === 'string') {
    if (quiet === 'none') body.quiet_hours = null;
    else {
      const m = /^([^-]+)-([^-]+)$/.exec(quiet);
      if (!m) throw usage(`--quiet-hours ${JSON.stringify(quiet)} is invalid: expected START-END such as 22:00-07:00, or none`);
      body.quiet_hours = { start: m[1], end: m[2], tz: typeof values.tz === 'string' ? values.tz : 'UTC' };
    }
  } else if (values.tz !== undefined) throw usage('--tz goes with --quiet-hours');
  if (typeof values['group-wait-ms'] === 'string') body.group_wait_ms = integer('--group-wait-ms', values['group-wait-ms'], usage);
  if (typeof values['digest-seconds'] === 'string') body.digest_seconds = integer('--digest-seconds', values['digest-seconds'], usage);
  return body;
}

function reworded(err: unknown, usage: UsageFactory): never {
  if (err instanceof BadRequestError) {
    const allowed = Array.isArray(err.allowed) ? `one of ${err.allowed.map((a: string) => FLAGS[a] ?? a).join(', ')}` : err.allowed;
    const flag = FLAGS[err.parameter] ?? err.parameter;
    if (err.value === undefined) throw usage(`${flag} is required: expected ${allowed}`);
    throw usage(`${flag} ${JSON.stringify(err.value)} is invalid: expected ${allowed}`);
  }
  throw err;
}

/** Parses `receivers <action> [name] [flags]`; `given` are the flags used beyond the connection ones. */
export function parseReceiversCommand(values: Values, given: readonly string[], args: readonly string[], usage: UsageFactory): ReceiversCommand {
  const [action, name, ...rest] = args;
  if (action === undefined || !SUBCOMMANDS.includes(action)) throw usage(`receivers takes one of ${SUBCOMMANDS.join(', ')}, got: ${action ?? 'none'}`);
  const allow = (names: readonly string[]) => {
    const extra = given.filter((k) => !names.includes(k));
    if (extra.length) throw usage(`${extra.map((k) => `--${k}`).join(', ')} cannot be used with receivers ${action}`);
  };
  if (action === 'list') {
    if (name !== undefined) throw usage(`receivers list takes no argument, got: ${args.slice(1).join(' ')}`);
    allow(['format']);
    const format = values.format ?? 'table';
    if (format !== 'table' && format !== 'json') throw usage(`--format ${JSON.stringify(format)} is invalid: expected one of table, json`);
    return { kind: 'receivers-list', format };
  }
  if (name === undefined || rest.length > 0) throw usage(`receivers ${action} takes one receiver name, got: ${args.slice(1).join(' ') || 'none'}`);
  try {
    parseReceiverName(name);
    if (action === 'remove') {
      allow([]);
      return { kind: 'receivers-remove', name };
    }
    allow(SETTING_FLAGS);
    const body = bodyOf(values, usage);
    if (action === 'add') return { kind: 'receivers-add', receiver: parseNewReceiver({ name, ...body }) };
    if (Object.keys(body).length === 0) throw usage(`receivers set needs at least one of --${SETTING_FLAGS.join(', --')}`);
    return {
      kind: 'receivers-set',
      name,
      patchFor: (currentKind) => {
        try {
          return parseReceiverPatch(body, currentKind);
        } catch (err) {
          return reworded(err, usage);
        }
      },
    };
  } catch (err) {
    return reworded(err, usage);
  }
}
