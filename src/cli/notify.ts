// `icalpush notify LISTING`: tell the running sidecar that LISTING changed by a primary event (a
// manual block from a script or cron), so it notifies the listing's peers now. It goes through the
// sidecar's admin endpoint: the running process owns the outbox, so nothing is sent twice.
import { parseListen } from '../app.ts';
import { systemClock } from '../clock.ts';
import { createOutboundClient } from '../http/clients.ts';
import { formatProblems, loadConfigFile } from '../config/load.ts';
import type { CliIo } from './program.ts';

/** Runs notify; resolves with the exit code (0 notified, 1 refused or unreachable, 2 bad config). */
export async function runNotify(listing: string, configPath: string, io: CliIo): Promise<number> {
  const result = await loadConfigFile(configPath, io.env);
  if (!result.ok) {
    io.stderr.write(`${configPath}: invalid configuration\n${formatProblems(result.problems, configPath)}\n`);
    return 2;
  }
  const { config } = result;
  if (!(listing in config.listings)) {
    io.stderr.write(`${listing}: not a listing of ${configPath} (listings: ${Object.keys(config.listings).join(', ') || 'none'})\n`);
    return 1;
  }
  const { host, port } = parseListen(config.listen);
  // A wildcard listen address is reached on loopback.
  const reach = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const base = `http://${reach.includes(':') ? `[${reach}]` : reach}:${port}`;
  const url = `${base}/_icalpush/listings/${encodeURIComponent(listing)}/changed`;
  const client = createOutboundClient({ clock: systemClock, connectTimeoutMs: 10_000 });
  try {
    const res = await client.request(url, {
      method: 'POST',
      headers: config.admin.token ? { authorization: `Bearer ${config.admin.token}` } : {},
      deadlineMs: 10_000,
      maxBodyBytes: 64 * 1024,
    });
    if (res.kind === 'failed') {
      const cause = (res.error.cause as { code?: string } | undefined)?.code ?? res.error.code;
      io.stderr.write(`${base}: the sidecar is not reachable (${cause}); is it running?\n`);
      return 1;
    }
    const text = res.kind === 'answer' ? res.body.toString('utf8') : '';
    if (res.status !== 202) {
      io.stderr.write(`${base}: ${res.status} ${text.trim()}\n`);
      return 1;
    }
    const { notified } = JSON.parse(text) as { notified: string[] };
    io.stdout.write(`${listing}: change accepted; notifying ${notified.length ? notified.join(', ') : 'no peer (none has notify: true)'}\n`);
    return 0;
  } finally {
    await client.close();
  }
}
