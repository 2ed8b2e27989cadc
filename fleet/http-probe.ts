/**
 * Container health check for HTTP services: `node dist/fleet/http-probe.js <url> [timeout-ms]` exits 0 when the URL
 * answers 2xx within the timeout, 1 otherwise (printing why). The image has no curl or wget; node is always there.
 */

export interface ProbeResult {
  readonly healthy: boolean;
  /** One line: the status received, or the error. */
  readonly detail: string;
}

/** GETs `url`; healthy on any 2xx. Never throws. */
export async function probeHttp(url: string, timeoutMs: number): Promise<ProbeResult> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return { healthy: res.ok, detail: `${url} answered ${res.status}` };
  } catch (err) {
    // fetch reports "fetch failed"; the reason (ECONNREFUSED, a timeout, ...) is in its cause.
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code ?? cause?.message ?? (err as Error).message;
    return { healthy: false, detail: `${url} unreachable: ${reason}` };
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const [url, timeout = '3000'] = argv;
  const timeoutMs = Number(timeout);
  if (!url || !/^https?:\/\//.test(url) || !Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    process.stderr.write('usage: http-probe <http(s) URL> [timeout-ms]\n');
    return 2;
  }
  const result = await probeHttp(url, timeoutMs);
  (result.healthy ? process.stdout : process.stderr).write(`${result.detail}\n`);
  return result.healthy ? 0 : 1;
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
