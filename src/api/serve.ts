import { constants } from 'node:os';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { loadConfig, type DualWriteConfig } from '../runtime/config.js';
import { openDualWrite } from '../runtime/open-dual-write.js';
import type { DualWriteRuntime } from '../runtime/dual-write-runtime.js';
import { buildApi } from './app.js';

/** Options of serve; what is not given comes from the environment. */
export interface ServeOptions {
  /** The configuration. Default: loadConfig(env). */
  readonly config?: DualWriteConfig;
  /** Where the configuration is read from when `config` is not given. Default: process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Port to listen on (0: any free one). Default: config.http.port (PORT, else 8080). */
  readonly port?: number;
  /** Address to listen on. Default: config.http.host (HOST, else 127.0.0.1). */
  readonly host?: string;
  /**
   * Logger of the API and of the runtime: a pino(-compatible) logger, true for pino on
   * stdout, or false for no HTTP logs (the runtime then logs to the console, its default).
   * Default true.
   */
  readonly logger?: FastifyBaseLogger | boolean;
}

/** A running API: close() stops taking requests, then closes the runtime (draining the mirror). */
export interface ServedApi {
  readonly app: FastifyInstance;
  readonly runtime: DualWriteRuntime;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Opens the dual-write runtime, serves the API over its stores and closes both gracefully
 * on SIGTERM or SIGINT: stop taking requests, let those in flight finish, close the
 * runtime (the mirror drains), exit 0. A second signal exits at once.
 */
export async function serve(options: ServeOptions = {}): Promise<ServedApi> {
  const config = options.config ?? loadConfig(options.env ?? process.env);
  const logger = options.logger === undefined || options.logger === true ? pino() : options.logger;
  const runtime = await openDualWrite({
    config,
    ...(logger ? { logger: logger.child({ component: 'dualwrite' }) } : {}),
  });
  const app = buildApi({
    graph: runtime.graph,
    tasks: runtime.tasks,
    runtime,
    adminToken: config.adminToken,
    statusToken: config.statusToken,
    logger,
  });
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      try {
        await app.close();
        await runtime.close();
      } finally {
        // Only now: a second signal during the shutdown must still reach the handler.
        removeSignalHandlers();
      }
    })());
  const removeSignalHandlers = onShutdownSignal(app.log, close);
  try {
    const url = await app.listen({ port: options.port ?? config.http.port, host: options.host ?? config.http.host });
    return { app, runtime, url, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Runs `close` on the first SIGTERM or SIGINT, then exits 0 (1 if it failed); a second signal exits at once. Returns the uninstaller. */
function onShutdownSignal(log: FastifyBaseLogger, close: () => Promise<void>): () => void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      log.warn(`${signal} again: exiting without waiting for the shutdown`);
      process.exit(128 + constants.signals[signal]);
    }
    signalled = true;
    log.info(`${signal}: shutting down (a second signal exits at once)`);
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
