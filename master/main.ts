import { loadConfigForMain } from '../shared/platform/config';
import { SchemaBehindError } from '../shared/platform/db';
import { describeError } from '../shared/platform/errors';
import { createLifecycle, exitOnSignals } from '../shared/platform/lifecycle';
import { createLogger, flushLogger } from '../shared/platform/logger';
import { loadMasterConfig, MASTER_VARIABLES } from '../shared/config/master-config';
import { createMaster } from './app';

/** `npm run master`: ingest, storage, notifications and the HTTP API. Configuration: shared/config/master-config.ts. */
async function main(): Promise<void> {
  const config = loadConfigForMain('npm run master', MASTER_VARIABLES, loadMasterConfig);
  if (!config) return;
  const logger = createLogger({ name: 'master', level: config.logLevel });
  const lifecycle = createLifecycle(logger);
  exitOnSignals(lifecycle, logger, config.shutdownTimeoutMs);
  try {
    await createMaster({ config, logger, lifecycle });
  } catch (err) {
    if (lifecycle.closing && !(err instanceof SchemaBehindError)) return; // a signal arrived during start; exitOnSignals exits
    logger.error({ err: describeError(err) }, 'master failed to start');
    process.stderr.write(`master cannot start: ${err instanceof SchemaBehindError ? err.message : describeError(err)}\n`);
    await flushLogger(logger);
    process.exit(1);
  }
}

void main();
