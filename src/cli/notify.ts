// `icalpush notify LISTING`: tell the running sidecar that LISTING changed by a primary event (a
// manual block from a script or cron), so it notifies the listing's peers now. It goes through the
// sidecar's admin endpoint: the running process owns the outbox, so nothing is sent twice.
import { request } from 'undici';
import { parseListen } from '../app.ts';
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
  try {
    const res = await request(url, {
      method: 'POST',
      headers: config.admin.token ? { authorization: `Bearer ${config.admin.token}` } : {},
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await res.body.text();
    if (res.statusCode !== 202) {
      io.stderr.write(`${base}: ${res.statusCode} ${text.trim()}\n`);
      return 1;
    }
    const { notified } = JSON.parse(text) as { notified: string[] };
    io.stdout.write(`${listing}: change accepted; notifying ${notified.length ? notified.join(', ') : 'no peer (none has notify: true)'}\n`);
    return 0;
  } catch (err) {
    io.stderr.write(`${base}: the sidecar is not reachable (${(err as { code?: string }).code ?? String(err)}); is it running?\n`);
    return 1;
  }
}
