import { readFileSync } from 'node:fs';
import { loadConfigForMain } from '../shared/platform/config';
import { describeError } from '../shared/platform/errors';
import { createLifecycle, exitOnSignals } from '../shared/platform/lifecycle';
import { createLogger } from '../shared/platform/logger';
import { loadSimConfig, SIM_VARIABLES } from './config';
import { parseSimScript } from './script';
import { createTickerSimulator } from './simulator';

function readScript(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`SIM_SCRIPT=${file} cannot be read: ${describeError(err)}`);
  }
}

async function main(): Promise<void> {
  const loaded = loadConfigForMain('npm run sim', SIM_VARIABLES, (env, argv) => {
    const config = loadSimConfig(env, argv);
    const script = config.scriptPath ? parseSimScript(readScript(config.scriptPath), `SIM_SCRIPT=${config.scriptPath}`) : undefined;
    return { config, script };
  });
  if (!loaded) return;
  const { config, script } = loaded;
  const logger = createLogger({ name: 'sim', level: config.logLevel });
  const lifecycle = createLifecycle(logger);
  const sim = await createTickerSimulator({
    port: config.port,
    host: config.host,
    pairs: config.pairs,
    seed: config.seed,
    volatilityPercent: config.volatilityPercent,
    spreadPercent: config.spreadPercent,
    stepMs: config.stepMs,
    script,
    rateLimit: config.rateLimitPerMin,
    omitFromLists: config.omitFromLists,
    faultRates: { serverErrorRate: config.errorRate, malformedRate: config.malformedRate, latencyMs: config.latencyMs },
    requestLogMax: 10_000,
    logger,
  });
  lifecycle.add('simulator', () => sim.close());
  exitOnSignals(lifecycle, logger, 5000);
  logger.info({ url: sim.url, port: sim.port, pairs: Object.keys(config.pairs), scripted: script ? Object.keys(script.pairs) : [], rateLimitPerMin: config.rateLimitPerMin }, 'ticker simulator listening');
}

main().catch((err: unknown) => {
  process.stderr.write(`ticker simulator failed to start: ${describeError(err)}\n`);
  process.exit(1);
});
