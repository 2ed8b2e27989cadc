import path from 'node:path';
import { Writable } from 'node:stream';
import { serializeDesiredBot, type DesiredBot } from '../shared/contract/bots';
import { createLogger } from '../shared/platform/logger';
import { isAlive } from '../test/helpers/process';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { waitFor } from '../test/helpers/wait';
import { createFleetOutput } from './output';
import type { ServicePlan } from './plan';
import { createSupervisor, type Supervisor } from './supervisor';
import { createWorkerPool, decidePool, leaseHolder, parseSpareWorkers, readPoolDemand, type WorkerPool } from './worker-pool';

describe('sizing the generic worker pool (the decision)', () => {
  const state = (members: string[], enabledBots: number, spares: number, holders: string[] = []) => ({ members, enabledBots, spares, holders: new Set(holders) });

  it('starts one worker per enabled bot plus the spares', () => {
    expect(decidePool(state([], 0, 1))).toEqual({ start: 1, stop: [] });
    expect(decidePool(state(['pool-1'], 2, 1, ['pool-1']))).toEqual({ start: 2, stop: [] });
    expect(decidePool(state(['pool-1', 'pool-2', 'pool-3'], 2, 1, ['pool-1', 'pool-3']))).toEqual({ start: 0, stop: [] });
    expect(decidePool(state([], 0, 0))).toEqual({ start: 0, stop: [] });
  });

  it('stops only idle workers, newest first, as many as the surplus', () => {
    expect(decidePool(state(['pool-1', 'pool-2', 'pool-3'], 1, 1, ['pool-3']))).toEqual({ start: 0, stop: ['pool-2'] });
    expect(decidePool(state(['pool-1', 'pool-2', 'pool-3', 'pool-4'], 1, 1, ['pool-2']))).toEqual({ start: 0, stop: ['pool-4', 'pool-3'] });
  });

  it('never stops a holder, even when the pool is too large and no idle worker is left', () => {
    // A bot was just disabled but its holder has not let it go yet: the pool waits rather than stop it.
    expect(decidePool(state(['pool-1', 'pool-2'], 0, 0, ['pool-1', 'pool-2']))).toEqual({ start: 0, stop: [] });
    expect(decidePool(state(['pool-1', 'pool-2', 'pool-3'], 0, 1, ['pool-1', 'pool-2']))).toEqual({ start: 0, stop: ['pool-3'] });
  });

  it('reads the holder out of a lease value, whose worker id may contain ":"', () => {
    expect(leaseHolder('pool-1:7')).toBe('pool-1');
    expect(leaseHolder('host:a-12:3')).toBe('host:a-12');
    expect(leaseHolder('garbage')).toBeUndefined();
    expect(leaseHolder(':3')).toBeUndefined();
  });

  it('reads FLEET_SPARE_WORKERS: default 1, 0 to 100, anything else refused naming the variable', () => {
    expect(parseSpareWorkers(undefined)).toBe(1);
    expect(parseSpareWorkers('')).toBe(1);
    expect(parseSpareWorkers('0')).toBe(0);
    expect(parseSpareWorkers(' 3 ')).toBe(3);
    for (const bad of ['-1', '1.5', 'two', '101']) expect(() => parseSpareWorkers(bad)).toThrow(/^FLEET_SPARE_WORKERS=.* is invalid: expected a whole number from 0 to 100/);
  });
});

/** Real processes (a stand-in generic worker that claims leases in the real Redis), sized by the real pool. */
describe('the generic worker pool of npm start, against Redis', () => {
  const FIXTURES = path.join(__dirname, '..', 'test', 'fixtures');
  let redis: TestRedis;
  let supervisor: Supervisor;
  let pool: WorkerPool;
  let text = '';

  const bot = (botId: string, enabled = true, version = 1): DesiredBot => ({
    botId,
    pair: 'BTC-USD',
    intervalMs: 1000,
    thresholdPercent: '0.01',
    priceField: 'ask',
    referenceMode: 'last-alert',
    enabled,
    version,
  });
  const setBot = (b: DesiredBot) => redis.redis.hset(redis.keys.desiredBots, b.botId, serializeDesiredBot(b));
  /** The stand-in printed `line` under the prefix of `name`. */
  const printed = (name: string, line: string) => new RegExp(`^${name} +\\| ${line}$`, 'm').test(text);
  const lease = (botId: string) => redis.redis.get(redis.keys.botLease(botId, 'BTC-USD'));
  /** The pool workers running now, each with its pid, from the supervisor's own log. */
  const running = () => pool.members().map((name) => ({ name, pid: pidOf(name) }));
  const pidOf = (name: string) => {
    const lines = text.split('\n').filter((l) => l.includes(`"service":"${name}"`) && l.includes('"childPid"'));
    return (JSON.parse(lines.at(-1)!.slice(lines.at(-1)!.indexOf('{'))) as { childPid: number }).childPid;
  };

  beforeAll(async () => {
    redis = await createTestRedis();
    const stream = new Writable({
      write(chunk, _encoding, callback) {
        text += chunk.toString();
        callback();
      },
    });
    const output = createFleetOutput({ stdout: stream, stderr: stream, names: ['fleet', 'pool-10'] });
    const logger = createLogger({ name: 'fleet', level: 'info', pretty: false, destination: output.writable('fleet', 'stdout') });
    const template: ServicePlan = {
      name: 'worker-pool',
      role: 'worker',
      entry: 'generic-worker.js',
      args: [],
      nodeFlags: [],
      env: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix },
      restart: { mode: 'unless-stopped' },
      oneShot: false,
      waitsFor: [],
      startRank: 3,
      stopGracePeriodMs: 5000,
    };
    supervisor = createSupervisor({ plan: { services: [], external: [], profiles: [] }, root: FIXTURES, output, logger, baseEnv: { PATH: process.env.PATH ?? '' }, nodeArgs: [] });
    await supervisor.start();
    pool = createWorkerPool({ template, supervisor, redis: redis.redis, keys: redis.keys, spares: 1, checkMs: 100, logger });
    pool.start();
  });

  afterAll(async () => {
    await pool?.stop();
    await supervisor?.stop();
    await redis?.cleanup();
  });

  it('keeps one spare with no runtime bot, grows to one per enabled bot plus the spare, each bot held by its own worker', async () => {
    await waitFor('the spare', () => printed('pool-1', 'ready pool-1'));
    expect(pool.members()).toEqual(['pool-1']);

    await setBot(bot('bot-a'));
    await setBot(bot('bot-b'));
    await setBot(bot('bot-off', false));
    await waitFor('three workers, both enabled bots held', async () => pool.members().length === 3 && (await lease('bot-a')) !== null && (await lease('bot-b')) !== null);
    const holders = [leaseHolder((await lease('bot-a'))!), leaseHolder((await lease('bot-b'))!)];
    expect(new Set(holders).size).toBe(2);
    expect(pool.members()).toEqual(expect.arrayContaining(holders as string[]));
    expect(await lease('bot-off')).toBeNull();
    // Every worker has its own WORKER_ID (the fixture prints it).
    for (const name of pool.members()) await waitFor(`${name} ready`, () => printed(name, `ready ${name}`));
    expect(await readPoolDemand(redis.redis, redis.keys)).toEqual({ enabledBots: 2, holders: new Set(holders), invalid: 0 });
  });

  it('when a bot is disabled, stops an idle worker and never the holder of the other bot', async () => {
    const bLease = await lease('bot-b');
    const bHolder = running().find((m) => m.name === leaseHolder(bLease!))!;
    await setBot(bot('bot-a', false, 2));
    await waitFor('the pool back to two workers', () => pool.members().length === 2, { timeoutMs: 15_000 });
    await waitFor('the stopped worker gone', () => text.includes('"msg":"stopped"'), { timeoutMs: 15_000 });
    await waitFor('bot-a let go', async () => (await lease('bot-a')) === null);
    // The holder of bot-b kept running and kept its lease (same fencing token) throughout.
    expect(pool.members()).toContain(bHolder.name);
    expect(isAlive(bHolder.pid)).toBe(true);
    expect(await lease('bot-b')).toBe(bLease);
    expect(printed(bHolder.name, `stopped ${bHolder.name}`)).toBe(false);
  });

  it('when the bots are deleted, shrinks to the spare alone', async () => {
    await redis.redis.hdel(redis.keys.desiredBots, 'bot-a', 'bot-b', 'bot-off');
    await waitFor('one worker left', () => pool.members().length === 1, { timeoutMs: 15_000 });
    await waitFor('no lease left', async () => (await lease('bot-b')) === null);
    const [spare] = running();
    expect(isAlive(spare!.pid)).toBe(true);
  });

  it('counts an entry it cannot read as no bot, and says how many there were', async () => {
    await redis.redis.hset(redis.keys.desiredBots, 'broken', '{"botId":');
    expect(await readPoolDemand(redis.redis, redis.keys)).toMatchObject({ enabledBots: 0, invalid: 1 });
    await redis.redis.hdel(redis.keys.desiredBots, 'broken');
  });
});

describe('a generic worker that ends for good', () => {
  it('is replaced by a new one', async () => {
    const redis = await createTestRedis();
    let text = '';
    const stream = new Writable({
      write(chunk, _encoding, callback) {
        text += chunk.toString();
        callback();
      },
    });
    const output = createFleetOutput({ stdout: stream, stderr: stream, names: ['fleet', 'pool-10'] });
    const logger = createLogger({ name: 'fleet', level: 'info', pretty: false, destination: output.writable('fleet', 'stdout') });
    // The fleet-service fixture in its crash mode, with no restart: over for good at its first exit.
    const template: ServicePlan = {
      name: 'worker-pool',
      role: 'worker',
      entry: 'fleet-service.js',
      args: ['crash'],
      nodeFlags: [],
      env: {},
      restart: { mode: 'no' },
      oneShot: false,
      waitsFor: [],
      startRank: 3,
      stopGracePeriodMs: 1000,
    };
    const supervisor = createSupervisor({ plan: { services: [], external: [], profiles: [] }, root: path.join(__dirname, '..', 'test', 'fixtures'), output, logger, baseEnv: { PATH: process.env.PATH ?? '' }, nodeArgs: [] });
    const pool = createWorkerPool({ template, supervisor, redis: redis.redis, keys: redis.keys, spares: 1, checkMs: 100, logger });
    try {
      await supervisor.start();
      pool.start();
      await waitFor('the replacement', () => text.includes('generic worker pool-1 ended for good; replacing it') && (text.match(/"msg":"started"/g)?.length ?? 0) >= 2);
      expect(pool.members()).toHaveLength(1);
    } finally {
      await pool.stop();
      await supervisor.stop();
      await redis.cleanup();
    }
  });
});
