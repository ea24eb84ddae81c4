// Builds the real app (createApp) for tests, with a memory store and a logger whose lines
// the test can read back.
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { type App, createApp } from '../../src/app.ts';
import type { Clock } from '../../src/clock.ts';
import { type Config, type ConfigInput, configSchema } from '../../src/config/schema.ts';
import { createLogger } from '../../src/log.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';
import { testPool } from './analysis.ts';

/** A started app and what the test needs to look at. */
export type TestApp = {
  app: App;
  url: string;
  /** The validated config the app was built from. */
  config: Config;
  /** Every log line written so far, parsed. */
  logs: Array<Record<string, unknown>>;
  /** Raw log text, for "this secret never appears" checks. */
  logText(): string;
  /** Resolves with the first log line (past or future) that `match` accepts. */
  waitForLog(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
};

/** Where an app's teardown goes: a test's context, or a scope of the test's own, so a test starting many
 * apps can let each go (and be collected) as soon as it is done with it. */
export type Teardown = { after(fn: () => unknown): void };

/** Starts the app on 127.0.0.1:0 in front of `upstream`; closed by the teardown of `t`. */
export async function startApp(
  t: Teardown,
  upstream: string,
  overrides: Partial<ConfigInput> = {},
  store?: Store,
  clock?: Clock,
): Promise<TestApp> {
  const config = configSchema.parse({
    listen: '127.0.0.1:0',
    upstream,
    store: 'memory',
    feeds: [{ path: '/calendar/{listing}.ics' }],
    ...overrides,
  });
  const lines: string[] = [];
  const written = new EventEmitter();
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      written.emit('line');
      callback();
    },
  });
  const parsed = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  const logger = createLogger({ level: 'debug', destination });
  const app = createApp(config, { store: store ?? (await openStore('memory')), logger, pool: testPool(), ...(clock ? { clock } : {}) });
  const { url } = await app.listen();
  t.after(() => app.close());
  return {
    app,
    url,
    config,
    get logs() {
      return parsed();
    },
    logText: () => lines.join('\n'),
    waitForLog(match) {
      return new Promise((resolve) => {
        const check = () => {
          const found = parsed().find(match);
          if (!found) return;
          written.off('line', check);
          resolve(found);
        };
        written.on('line', check);
        check();
      });
    },
  };
}
