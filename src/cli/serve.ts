// `icalpush serve`: load and validate the config, open the store, build the app and listen.
// Nothing listens unless the configuration is valid and the store opened.
import { createApp } from '../app.ts';
import { formatProblems, loadConfigFile } from '../config/load.ts';
import { loadConfigOffThread } from '../config/load-off-thread.ts';
import { briefError } from '../errors.ts';
import { createLogger } from '../log.ts';
import { openStore } from '../store/open-store.ts';
import type { CliIo } from './program.ts';

/** A listening sidecar, for main.ts to stop on a signal. */
export type RunningServer = {
  url: string;
  /** `timeouts.shutdown`: close() finishes within it. */
  shutdownMs: number;
  /** Graceful shutdown; resolves when everything is closed. */
  close(): Promise<void>;
  /** Re-reads the config and its listings file (SIGHUP); the outcome is logged. */
  reload(): Promise<unknown>;
};

/** Starts the sidecar; an exit code when it could not start. */
export async function runServe(
  configPath: string,
  io: CliIo,
): Promise<{ exitCode: number } | { running: RunningServer }> {
  const result = await loadConfigFile(configPath, io.env);
  if (!result.ok) {
    io.stderr.write(`${configPath}: invalid configuration\n`);
    io.stderr.write(`${formatProblems(result.problems, configPath)}\n`);
    return { exitCode: 1 };
  }
  const { config } = result;
  const logger = createLogger({ level: config.log.level });
  let store: Awaited<ReturnType<typeof openStore>>;
  try {
    store = await openStore(config.store, { logger });
  } catch (err) {
    logger.fatal({ err: briefError(err), store: config.store }, 'store unavailable');
    logger.flush();
    return { exitCode: 1 };
  }
  const app = createApp(config, { store, logger, map: result.map, configName: configPath,
    reloadConfig: () => loadConfigOffThread(configPath, io.env) });
  try {
    const { url } = await app.listen();
    return {
      running: {
        url,
        shutdownMs: config.timeouts.shutdown,
        close: async () => {
          await app.close();
          logger.flush();
        },
        reload: () => app.reload(),
      },
    };
  } catch (err) {
    const brief = briefError(err);
    logger.fatal({ err: brief, listen: config.listen }, brief.code === 'LISTEN_UNAVAILABLE' ? 'cannot listen' : 'cannot start');
    await app.close();
    logger.flush();
    return { exitCode: 1 };
  }
}
