// Simulated platforms (src/demo/platform.ts), each behind its own icalpush built with createApp,
// peers pointing at each other's sidecars: the push tests' network, on 127.0.0.1 only.
import type { TestContext } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.ts';
import { type App, createApp } from '../../src/app.ts';
import { createLogger } from '../../src/log.ts';
import { freePort, meshSidecarConfig } from '../../src/demo/mesh.ts';
import { type Platform, startPlatform } from '../../src/demo/platform.ts';
import { openStore } from '../../src/store/open-store.ts';
import { Writable } from 'node:stream';
import { testPool } from './analysis.ts';

export const listing = 'beach-house';

/** One platform and its sidecar. */
export type Node = {
  platform: Platform;
  app: App;
  sidecar: string;
  feedUrl: string;
  logs: Array<Record<string, unknown>>;
  /** HEADs on feed paths this sidecar answered. */
  headsReceived(): number;
};

/** Starts `names.length` platforms, each behind an icalpush; torn down with the test. */
export async function startNetwork(
  t: TestContext,
  names: string[],
  overrides: Partial<ConfigInput> = {},
): Promise<Node[]> {
  const platforms: Platform[] = [];
  for (const name of names) platforms.push(await startPlatform({ name, listing }));
  t.after(async () => {
    for (const platform of platforms) await platform.close();
  });
  const ports = await Promise.all(names.map(() => freePort()));
  const feedUrl = (i: number) => `http://127.0.0.1:${ports[i]}/calendar/${listing}.ics`;
  const nodes: Node[] = [];
  for (const [i, platform] of platforms.entries()) {
    platform.importFrom = names.flatMap((name, j) => (j === i ? [] : [{ name, url: feedUrl(j) }]));
    const config = meshSidecarConfig({ port: ports[i] as number, platform, listing, push: { watch: 0 }, overrides });
    const logs: Array<Record<string, unknown>> = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const app = createApp(config, { store: await openStore('memory'), logger: createLogger({ level: 'debug', destination }), pool: testPool() });
    await app.listen();
    t.after(() => app.close());
    nodes.push({
      platform,
      app,
      sidecar: `http://127.0.0.1:${ports[i]}`,
      feedUrl: feedUrl(i),
      logs,
      headsReceived: () => logs.filter((l) => l.msg === 'request'
        && (l.req as { method?: string; route?: string }).method === 'HEAD'
        && (l.req as { route?: string }).route === 'feed').length,
    });
  }
  return nodes;
}

/** Resolves when `check` is true, polling every 5 ms; rejects after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
