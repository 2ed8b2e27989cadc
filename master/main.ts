import { loadConfigForMain } from '../shared/config';
import { SchemaBehindError } from '../shared/db';
import { describeError } from '../shared/errors';
import { createLifecycle, exitOnSignals } from '../shared/lifecycle';
import { createLogger, flushLogger } from '../shared/logger';
import { loadMasterConfig, MASTER_VARIABLES } from '../shared/master-config';
import { createMaster } from './app';

/** `npm run master`: ingest, storage, notifications and the HTTP API. Configuration: shared/master-config.ts. */
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
