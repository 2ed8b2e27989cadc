import { flushLogger, type Logger } from './logger';
import { describeError } from './errors';

export type Closer = () => Promise<void> | void;

export interface Lifecycle {
  /** Registers a closer as its resource is created; closers run in reverse order of registration. */
  add(name: string, close: Closer): void;
  /** Runs every closer once, newest first. Idempotent: every call returns the same promise. Never rejects. */
  close(): Promise<void>;
  readonly closing: boolean;
}

/** Collects closers as resources are created and releases them in reverse order (graphile-worker's releasers). */
export function createLifecycle(logger: Logger): Lifecycle {
  const closers: { name: string; close: Closer }[] = [];
  let closing: Promise<void> | undefined;
  return {
    add(name, close) {
      closers.push({ name, close });
    },
    get closing() {
      return closing !== undefined;
    },
    close() {
      closing ??= (async () => {
        for (const { name, close } of [...closers].reverse()) {
          try {
            await close();
            logger.debug({ resource: name }, 'closed');
          } catch (err) {
            logger.error({ resource: name, err: describeError(err) }, 'error while closing');
          }
        }
      })();
      return closing;
    },
  };
}

/**
 * On SIGTERM/SIGINT, closes the lifecycle and exits 0; if closing takes longer than `timeoutMs`, exits 1.
 * A second signal forces exit at once. Unhandled rejections are logged (never silent) and trigger a clean shutdown.
 */
export function exitOnSignals(lifecycle: Lifecycle, logger: Logger, timeoutMs: number): void {
  let signalled = false;
  const shutdown = (reason: string, code: number) => {
    if (signalled) {
      logger.warn({ reason }, 'second signal: exiting now');
      process.exit(1);
    }
    signalled = true;
    logger.info({ reason }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown timed out; exiting');
      void flushLogger(logger, 500).then(() => process.exit(1));
    }, timeoutMs);
    timer.unref();
    void lifecycle
      .close()
      .then(() => {
        logger.info('stopped');
        return flushLogger(logger);
      })
      .then(() => process.exit(code));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM', 0));
  process.on('SIGINT', () => shutdown('SIGINT', 0));
  process.on('unhandledRejection', (err) => {
    logger.error({ err: describeError(err) }, 'unhandled rejection');
    shutdown('unhandledRejection', 1);
  });
}
