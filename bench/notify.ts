import { loadavg } from 'node:os';
import { makeAlert } from '../test/helpers/alerts';
import { startWebhookReceiver } from '../test/helpers/webhook';
import { sleep } from '../shared/platform/retry';
import { listenForCommits, nowMs } from './commit-listener';
import type { Section, SectionContext } from './context';
import { waitUntilReady, workerPublisher } from './latency';
import { startBenchMaster } from './processes';
import { figure } from './report';
import { benchRedis, freshDatabase } from './resources';
import { round, summarize } from './stats';

/** Simulated workers sharing the load (100 alerts/s from 10 bots at 10 alerts/s each). */
const PUBLISHERS = 10;

/**
 * Observed -> received: `rate` alerts/s, each stamped when it is built (the stand-in for "the ticker answered"), published
 * in the worker's MULTI, ingested by the real master process and delivered to the `default` receiver (WEBHOOK_URL, a real
 * local HTTP receiver, group_wait_ms 0) through the outbox. Each alert is timed to the webhook request that carries it
 * (its arrival at the receiver, same clock) and, in the same run, to the commit of its row (NOTIFY at commit).
 */
async function notifyLatency(ctx: SectionContext, rate: number, seconds: number, warmupSeconds: number) {
  const db = await freshDatabase(ctx.targets, 'notify');
  const r = await benchRedis(ctx.targets);
  const sentAt = new Map<string, number>();
  const committedAt = new Map<string, number>();
  const receivedAt = new Map<string, number>();
  let duplicates = 0;
  let calls = 0;
  const hook = await startWebhookReceiver({
    responder: ({ body }) => {
      const at = nowMs();
      calls += 1;
      try {
        for (const a of (JSON.parse(body) as { alerts: { id: string }[] }).alerts) {
          if (receivedAt.has(a.id)) duplicates += 1;
          else receivedAt.set(a.id, at);
        }
      } catch {
        // Not a notification body: counted as a call, carries no alert.
      }
      return 200;
    },
  });
  const listener = await listenForCommits(db, (ids, at) => {
    for (const id of ids) if (!committedAt.has(id)) committedAt.set(id, at);
  });
  const master = startBenchMaster(ctx, db, r, { NOTIFY: 'log,webhook', WEBHOOK_URL: hook.url, LOG_LEVEL: 'warn' });
  const fleet = Array.from({ length: PUBLISHERS }, () => workerPublisher(ctx, r));
  const pairs = Array.from({ length: PUBLISHERS }, (_, i) => `NTF${i}-USD`);
  try {
    await Promise.all(fleet.map((f) => waitUntilReady(f.redis)));
    // Ready when a probe on every pair has reached the receiver: the master reads every stream and delivers.
    const probes = fleet.map((f, i) => {
      const probe = makeAlert({ pair: pairs[i]! });
      f.publisher.publish(probe);
      return probe.id;
    });
    for (let i = 0; probes.some((id) => !receivedAt.has(id)); i++) {
      if (master.child.exitCode !== null) throw new Error(`master exited:\n${master.output().slice(-2000)}`);
      if (i > 1200) throw new Error(`the probe alerts did not reach the webhook within 60 s:\n${master.output().slice(-2000)}`);
      await sleep(50);
    }
    ctx.log(`notify: ${rate} alerts/s for ${warmupSeconds + seconds} s to the default webhook receiver (first ${warmupSeconds} s are warm-up)`);
    const callsBefore = calls;
    // The machine is shared: the load when the run starts says how much of it the figures had.
    const loadAverage = loadavg()[0]!.toFixed(1);
    const start = nowMs();
    const measureFrom = start + warmupSeconds * 1000;
    const end = start + (warmupSeconds + seconds) * 1000;
    let sent = 0;
    while (nowMs() < end) {
      const due = Math.floor(((nowMs() - start) / 1000) * rate);
      while (sent < due) {
        const alert = makeAlert({ pair: pairs[sent % PUBLISHERS]!, observedAt: new Date().toISOString() });
        sentAt.set(alert.id, nowMs());
        fleet[sent % PUBLISHERS]!.publisher.publish(alert);
        sent += 1;
      }
      await sleep(2);
    }
    for (const f of fleet) await f.publisher.flush(10_000);
    const deadline = Date.now() + 60_000;
    const pending = () => [...sentAt.keys()].filter((id) => !receivedAt.has(id) || !committedAt.has(id)).length;
    while (pending() > 0 && Date.now() < deadline) await sleep(50);
    // Late duplicates (a retry after a lost answer) would arrive shortly after: give them a moment to show.
    await sleep(1000);

    const toReceived: number[] = [];
    const toCommitted: number[] = [];
    const commitToReceived: number[] = [];
    for (const [id, at] of sentAt) {
      if (at < measureFrom) continue;
      const committed = committedAt.get(id);
      const received = receivedAt.get(id);
      if (committed !== undefined) toCommitted.push(committed - at);
      if (received !== undefined) toReceived.push(received - at);
      if (committed !== undefined && received !== undefined) commitToReceived.push(received - committed);
    }
    const missing = [...sentAt.keys()].filter((id) => !receivedAt.has(id)).length;
    const callsMeasured = calls - callsBefore;
    return {
      sent,
      loadAverage,
      achievedRate: (sent * 1000) / (end - start),
      received: sent - missing,
      missing,
      duplicates,
      webhookCalls: callsMeasured,
      alertsPerCall: callsMeasured > 0 ? round((sent - missing) / callsMeasured) : 0,
      observedToReceived: summarize(toReceived),
      observedToCommitted: summarize(toCommitted),
      committedToReceived: summarize(commitToReceived),
    };
  } finally {
    for (const f of fleet) await f.close();
    await master.stop();
    await listener.close();
    await hook.stop();
    await r.cleanup();
    await db.drop();
  }
}

export const notifySection: Section = async (ctx) => {
  const load = await notifyLatency(ctx, 100, ctx.options.quick ? 10 : 30, ctx.options.quick ? 2 : 5);
  if (load.missing > 0) throw new Error(`${load.missing} of ${load.sent} alerts never reached the webhook receiver`);
  const rate = round(load.achievedRate);
  return {
    figures: [
      figure({ section: 'notify', name: `observed -> received by webhook, p50, at ${rate} alerts/s`, value: load.observedToReceived.p50, unit: 'ms' }),
      figure({
        section: 'notify',
        name: `observed -> received by webhook, p99, at ${rate} alerts/s`,
        value: load.observedToReceived.p99,
        unit: 'ms',
        target: { text: '<= 100 ms', max: 100 },
        note: `${load.observedToReceived.count} alerts; max ${round(load.observedToReceived.max)} ms; ${load.alertsPerCall} alerts per call; ${load.duplicates} duplicates; load average ${load.loadAverage}`,
      }),
      figure({
        section: 'notify',
        name: '  beside it: observed -> committed (same alerts), p99',
        value: load.observedToCommitted.p99,
        unit: 'ms',
        note: `p50 ${round(load.observedToCommitted.p50)} ms`,
      }),
      figure({
        section: 'notify',
        name: '  of which committed -> received (outbox), p99',
        value: load.committedToReceived.p99,
        unit: 'ms',
        note: `p50 ${round(load.committedToReceived.p50)} ms`,
      }),
    ],
    details: { steady: load },
  };
};
