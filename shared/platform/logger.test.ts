import { spawn } from 'node:child_process';
import path from 'node:path';
import { createLogger } from './logger';

const REPO_ROOT = path.join(__dirname, '..', '..');

/**
 * Runs a process that logs `lines` numbered lines through createLogger, then flushes and exits as a service does after
 * its shutdown. The parent does not read the pipe for `holdMs`, so the pipe fills and writes must wait.
 */
function logThenExit(lines: number, holdMs: number): Promise<{ out: string; code: number | null }> {
  const script = [
    "const { createLogger, flushLogger } = require('./shared/platform/logger');",
    "const logger = createLogger({ name: 'logger-test', pretty: false });",
    '(async () => {',
    `  for (let i = 0; i < ${lines}; i++) {`,
    "    logger.info({ n: i, filler: 'x'.repeat(80) }, 'line');",
    // Let the event loop turn now and then, so an asynchronous writer would have a write in flight (or waiting to retry).
    '    if (i % 500 === 499) await new Promise((resolve) => setTimeout(resolve, 20));',
    '  }',
    "  logger.info('stopped');",
    '  await flushLogger(logger);',
    "  logger.info('late line');",
    '  process.exit(0);',
    '})();',
  ].join('\n');
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.pause();
  setTimeout(() => child.stdout.resume(), holdMs);
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ out, code })));
}

describe('createLogger', () => {
  it('with flushLogger before process.exit, writes every line in order, even into a full pipe', async () => {
    const lines = 5000; // about 700 KB: ten times a pipe's buffer
    const { out, code } = await logThenExit(lines, 1000);
    expect(code).toBe(0);
    const records = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { n?: number; msg: string });
    expect(records.length).toBe(lines + 2);
    expect(records.slice(0, lines).map((r) => r.n)).toEqual(Array.from({ length: lines }, (_, i) => i));
    expect(records.slice(lines).map((r) => r.msg)).toEqual(['stopped', 'late line']);
  }, 30_000);
});

describe('createLogger redaction', () => {
  it('never writes the value of a secret field, at the top level, one level down or in a logged config', () => {
    const lines: string[] = [];
    const destination = { write: (line: string) => void lines.push(line) };
    const logger = createLogger({ name: 'redact-test', destination });
    const secret = 'S3CRET-value-71';
    logger.info({ apiToken: secret, smtpUrl: secret, databaseUrl: secret, redisUrl: secret, webhookUrl: secret, webhookSecret: secret, password: secret }, 'top');
    logger.info({ email: { smtpUrl: secret }, req: { headers: { authorization: `Bearer ${secret}`, cookie: secret } }, auth: { pass: secret } }, 'nested');
    logger.info({ config: { databaseUrl: secret, redisUrl: secret, email: { smtpUrl: secret }, webhook: { url: secret, secret }, api: { token: secret } } }, 'config');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).not.toContain(secret);
    expect(JSON.parse(lines[2]!).config).toEqual({ databaseUrl: '[redacted]', redisUrl: '[redacted]', email: { smtpUrl: '[redacted]' }, webhook: { url: '[redacted]', secret: '[redacted]' }, api: { token: '[redacted]' } });
  });
});
