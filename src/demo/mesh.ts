// The wiring shared by the demo, the push tests and the push bench: simulated platforms that share
// one listing, each behind its own icalpush whose peers are the other platforms' sidecars.
import { createServer } from 'node:net';
import { type Config, type ConfigInput, configSchema } from '../config/schema.ts';
import type { Platform } from './platform.ts';

/** A free port on loopback: bound, read and released (the sidecars' URLs are each other's config). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** What shapes one platform's sidecar; `platform.importFrom` are its peers. */
export type MeshSidecarOptions = {
  port: number;
  platform: Platform;
  listing: string;
  /** Where the refresh action goes; default: the platform's own "sync now" endpoint. */
  refreshUrl?: string;
  /** Keys of `push` besides the booking triggers. */
  push?: NonNullable<ConfigInput['push']>;
  /** Top-level keys that replace the mesh's own. */
  overrides?: Partial<ConfigInput>;
};

/** The config of the icalpush in front of one platform of the mesh. */
export function meshSidecarConfig(options: MeshSidecarOptions): Config {
  const { platform, listing } = options;
  return configSchema.parse({
    listen: `127.0.0.1:${options.port}`,
    upstream: platform.url,
    store: 'memory',
    feeds: [{ path: '/calendar/{listing}.ics' }],
    listings: { [listing]: { peers: platform.importFrom.map((p) => ({ name: p.name, url: p.url })) } },
    push: {
      triggers: [{ method: 'POST', path: '/bookings/{listing}' }, { method: 'DELETE', path: '/bookings/{listing}/*' }],
      ...options.push,
    },
    refresh: { method: 'POST', url: options.refreshUrl ?? `${platform.url}/admin/sync/{listing}` },
    ...options.overrides,
  });
}
