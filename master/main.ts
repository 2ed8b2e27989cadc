import { config as loadDotenv } from 'dotenv';
import { describeVariables } from '../shared/config';
import { SchemaBehindError } from '../shared/db';
import { ConfigError, describeError } from '../shared/errors';
import { createLifecycle, exitOnSignals } from '../shared/lifecycle';
import { createLogger } from '../shared/logger';
import { loadMasterConfig, MASTER_VARIABLES, type MasterConfig } from '../shared/master-config';
import { createMaster } from './app';

/** `npm run master`: ingest, storage, notifications and the HTTP API. Configuration: shared/master-config.ts. */
async function main(): Promise<void> {
  loadDotenv({ quiet: true });
  const argv = process.argv.slice(2);
  if (argv.includes('--help')) {
    process.stdout.write(`Usage: npm run master -- [--flag value ...]\n\n${describeVariables(MASTER_VARIABLES)}\n`);
    return;
  }
  let config: MasterConfig;
  try {
    config = loadMasterConfig(process.env, argv);
  } catch (err) {
    process.stderr.write(`${err instanceof ConfigError ? err.message : describeError(err)}\n`);
    process.exit(2);
  }
  const logger = createLogger({ name: 'master', level: config.logLevel });
  const lifecycle = createLifecycle(logger);
  exitOnSignals(lifecycle, logger, config.shutdownTimeoutMs);
  try {
    await createMaster({ config, logger, lifecycle });
  } catch (err) {
    if (lifecycle.closing && !(err instanceof SchemaBehindError)) return; // a signal arrived during start; exitOnSignals exits
    logger.error({ err: describeError(err) }, 'master failed to start');
    process.stderr.write(`master cannot start: ${err instanceof SchemaBehindError ? err.message : describeError(err)}\n`);
    logger.flush?.();
    process.exit(1);
  }
}

void main();
