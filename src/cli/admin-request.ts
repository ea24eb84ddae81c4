// A request from the command line to the running sidecar's admin endpoints (`notify`, `reload`, `status`): found
// at the config's `listen` address (a wildcard reached on loopback), with its admin token. The running process
// owns the outbox and the map; the command only asks it.
import { parseListen } from '../http/listen-address.ts';
import { systemClock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import { createOutboundClient } from '../http/clients.ts';

/** The sidecar's answer, or why it could not be asked. */
export type AdminAnswer =
  | { kind: 'answered'; status: number; text: string }
  | { kind: 'unreachable'; base: string; cause: string };

/** POSTs to `path` (under /_icalpush/) of the sidecar that `config` describes; never rejects. */
export function postToSidecar(config: Pick<Config, 'listen' | 'admin'>, path: string,
  deadlineMs = 10_000): Promise<AdminAnswer & { base: string }> {
  return askSidecar(config, 'POST', path, deadlineMs);
}

/** GETs `path` (under /_icalpush/) of the sidecar that `config` describes; never rejects. */
export function getFromSidecar(config: Pick<Config, 'listen' | 'admin'>, path: string,
  deadlineMs = 10_000): Promise<AdminAnswer & { base: string }> {
  return askSidecar(config, 'GET', path, deadlineMs);
}

async function askSidecar(config: Pick<Config, 'listen' | 'admin'>, method: 'GET' | 'POST', path: string,
  deadlineMs: number): Promise<AdminAnswer & { base: string }> {
  const { host, port } = parseListen(config.listen);
  const reach = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const base = `http://${reach.includes(':') ? `[${reach}]` : reach}:${port}`;
  const client = createOutboundClient({ clock: systemClock, connectTimeoutMs: 10_000 });
  try {
    const res = await client.request(`${base}/_icalpush/${path}`, {
      method,
      headers: {
        ...(method === 'GET' ? { accept: 'application/json' } : {}),
        ...(config.admin.token ? { authorization: `Bearer ${config.admin.token}` } : {}),
      },
      deadlineMs,
      maxBodyBytes: 1024 * 1024,
    });
    if (res.kind === 'failed') {
      const cause = (res.error.cause as { code?: string } | undefined)?.code ?? res.error.code;
      return { kind: 'unreachable', base, cause };
    }
    return { kind: 'answered', base, status: res.status, text: res.kind === 'answer' ? res.body.toString('utf8') : '' };
  } finally {
    await client.close();
  }
}
