import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';
import { sleep } from '../../shared/platform/retry';

/** Where a system Chromium is looked for (Debian's `chromium` package) when CHROMIUM_PATH is unset. */
export const SYSTEM_CHROMIUM_PATH = '/usr/bin/chromium';

/** Flags for a quiet, offline, headless run inside a container (no sandbox: containers run as root). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/**
 * The locale the browser runs under unless a test asks for another. Chromium takes its locale from LANG; under
 * LANG=C.UTF-8 (the default of many containers) some builds report `en-US@posix`, which is not a BCP 47 tag.
 */
export const BROWSER_LANG = 'en_US.UTF-8';

export interface ChromiumExecutable {
  readonly path: string;
  /** Which rule found it, for error messages. */
  readonly source: 'CHROMIUM_PATH' | 'system' | '@sparticuz/chromium';
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds the Chromium to drive: CHROMIUM_PATH when set (and then it must be executable), else the system Chromium at
 * /usr/bin/chromium when it is executable, else the Chromium shipped inside the npm package @sparticuz/chromium
 * (unpacked to /tmp/chromium on first use, about 2 s).
 */
export async function findChromium(env: NodeJS.ProcessEnv = process.env): Promise<ChromiumExecutable> {
  const configured = env.CHROMIUM_PATH;
  if (configured !== undefined && configured !== '') {
    if (!isExecutable(configured)) {
      throw new Error(`CHROMIUM_PATH=${configured} is not an executable file: point it at a Chromium binary, or unset it to use /usr/bin/chromium or the npm package @sparticuz/chromium.`);
    }
    return { path: configured, source: 'CHROMIUM_PATH' };
  }
  if (isExecutable(SYSTEM_CHROMIUM_PATH)) return { path: SYSTEM_CHROMIUM_PATH, source: 'system' };
  try {
    return { path: await unpackPackagedChromium(), source: '@sparticuz/chromium' };
  } catch (err) {
    throw new Error(
      `No Chromium for the dashboard's browser tests: CHROMIUM_PATH is unset, ${SYSTEM_CHROMIUM_PATH} is missing, and the npm package ` +
        `@sparticuz/chromium could not unpack its Chromium (${err instanceof Error ? err.message : String(err)}). Run \`npm ci\` or set CHROMIUM_PATH.`,
      { cause: err },
    );
  }
}

/**
 * Asks a plain node process for the package's Chromium: @sparticuz/chromium ships only ES modules (with
 * import.meta), which jest's CommonJS runtime cannot load. Loaded only on demand, so machines with a system Chromium
 * never unpack it.
 */
async function unpackPackagedChromium(): Promise<string> {
  const entry = require.resolve('@sparticuz/chromium');
  const script = `const { default: c } = await import(${JSON.stringify(pathToFileURL(entry).href)}); process.stdout.write(await c.executablePath());`;
  // The package takes an existing /tmp/chromium as unpacked: two jest workers unpacking at once would let the second
  // launch a half-written binary. One unpacks at a time, across processes.
  const { stdout } = await withUnpackLock(() => promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 60_000 }));
  const path = stdout.trim();
  if (!isExecutable(path)) throw new Error(`the package unpacked to ${path}, which is not executable`);
  return path;
}

/** A lock directory (mkdir is atomic) beside the unpacked files; one left by a killed process counts as stale after 2 min. */
async function withUnpackLock<T>(work: () => Promise<T>): Promise<T> {
  const lock = join(tmpdir(), 'tickwatch-chromium-unpack.lock');
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const since = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (since > 120_000) await rm(lock, { recursive: true, force: true });
      else await sleep(100);
    }
  }
  try {
    return await work();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

export interface LaunchOptions {
  /** LANG for the browser process. @defaultValue BROWSER_LANG */
  readonly lang?: string;
  /** Flags added after CHROMIUM_ARGS, e.g. `--lang=...`. */
  readonly extraArgs?: readonly string[];
}

/**
 * Launches headless Chromium for browser tests. Never skips: without a usable Chromium the test fails and says why.
 */
export async function launchBrowser(options: LaunchOptions = {}): Promise<Browser> {
  const { path } = await findChromium();
  return chromium.launch({
    executablePath: path,
    headless: true,
    args: [...CHROMIUM_ARGS, ...(options.extraArgs ?? [])],
    // LC_ALL would override LANG: both carry the chosen locale.
    env: { ...process.env, LANG: options.lang ?? BROWSER_LANG, LC_ALL: options.lang ?? BROWSER_LANG },
  });
}

/** Collects what a page reports as broken: console errors and uncaught exceptions. */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (msg: ConsoleMessage) => {
    if (msg.type() === 'error') errors.push(`console.error: ${msg.text()} (${msg.location().url})`);
  });
  page.on('pageerror', (err) => errors.push(`uncaught: ${err.message}`));
  return errors;
}
