// The one-screen summary `icalpush check` prints for a valid configuration. It is read on
// terminals and pasted into tickets, so it never shows a secret: no tokens, no header
// values, no query values, passwords or secret path segments in URLs (src/redact.ts).
import { createRedactor } from '../redact.ts';
import { ownFeedTarget } from './listings.ts';
import type { MapSources } from './load.ts';
import type { Config, WatchConfig } from './schema.ts';

const maxListings = 20;
const maxPeers = 5;

/** A short human summary of `config`, one line per setting, listing and peer. */
export function summarizeConfig(config: Config, sourceName: string, map?: MapSources): string {
  const lines: string[] = [`${sourceName}: valid configuration`];
  const redact = createRedactor(config.feeds.map((feed) => feed.path));
  // Aligned columns; a label longer than the column still gets one space.
  const row = (label: string, value: string, indent = 2) =>
    lines.push(`${' '.repeat(indent)}${label.padEnd(17 - indent)} ${value}`);

  row('listen', config.listen);
  row('upstream', redact(config.upstream));
  row(
    'publicBaseUrl',
    config.publicBaseUrl === undefined
      ? '(from each request\'s Host)'
      : redact(config.publicBaseUrl),
  );
  row(
    'store',
    config.store === 'memory' ? 'memory (not durable: lost on restart)'
      : /^rediss?:\/\//i.test(config.store) ? `${redact(config.store)} (redis: shared by every replica)`
        : `${config.store} (file)`,
  );
  row('feeds', config.feeds.map((feed) => feed.path).join(', '));

  const listings = Object.entries(config.listings);
  const file = map?.listingsFile;
  lines.push(`listings: ${listings.length}${file ? ` (${map.inline} inline, ${file.listings} from ${file.path})` : ''}`);
  if (listings.length === 0)
    lines.push('  (none: inbound HEADs are acknowledged, nothing is pushed)');
  for (const [id, listing] of listings.slice(0, maxListings)) {
    const own = ownFeedTarget(config, id);
    const feed = listing.feed !== undefined
      ? `${redact(listing.feed)} (explicit)`
      : own === undefined ? '(no feed)' : redact(own);
    const zone = listing.timezone ?? config.push.timezone;
    const sent = Object.keys(listing.headers);
    // Header values are credentials: only their names are shown.
    row(id, `feed ${feed}  today: ${zone ?? 'conservative (UTC-12 / UTC+14)'}${
      sent.length > 0 ? `  headers: ${sent.join(', ')}` : ''}`);
    if (listing.peers.length === 0) lines.push('    no peers');
    for (const peer of listing.peers.slice(0, maxPeers)) {
      const label = peer.name ?? hostOf(peer.url);
      const peerHeaders = Object.keys(peer.headers);
      row(label, `${redact(peer.url)}  notify ${peer.notify ? 'on' : 'off'}${
        peerHeaders.length > 0 ? `  headers: ${peerHeaders.join(', ')}` : ''}`, 4);
    }
    if (listing.peers.length > maxPeers) {
      lines.push(`    … and ${listing.peers.length - maxPeers} more peers`);
    }
  }
  if (listings.length > maxListings) {
    lines.push(`  … and ${listings.length - maxListings} more listings`);
  }

  lines.push('push');
  row('debounce', formatDuration(config.push.debounce));
  row('watch', watchSummary(config.push.watch));
  row(
    'triggers',
    config.push.triggers.length === 0
      ? 'none'
      : config.push.triggers.map((t) => `${t.method} ${t.path}`).join(', '),
  );
  row('userAgent', config.push.userAgent);

  const { refresh, hooks, timeouts } = config;
  if (refresh === undefined)
    row('refresh', 'none (peers are read, the upstream imports on its own)', 0);
  else {
    // Header values are credentials (Authorization): only their names are shown.
    const headers = Object.keys(refresh.headers);
    const parts = [
      `${refresh.method} ${redact(refresh.url)}`,
      headers.length > 0 ? `headers: ${headers.join(', ')}` : 'no headers',
      `timeout ${formatDuration(refresh.timeout)}`,
    ];
    row('refresh', parts.join(', '), 0);
  }
  row(
    'hooks',
    hooks.enabled
      ? `enabled, at most ${hooks.maxPerFeed} per feed, private networks ${hooks.allowPrivateNetworks ? 'ALLOWED' : 'refused'}`
      : 'disabled',
    0,
  );
  row(
    'admin',
    config.admin.token === undefined
      ? 'no token: admin routes served to loopback clients only'
      : 'token set',
    0,
  );
  row(
    'timeouts',
    `connect ${formatDuration(timeouts.connect)}, upstream ${formatDuration(timeouts.upstream)}, shutdown ${formatDuration(timeouts.shutdown)}`,
    0,
  );
  row('log', config.log.level, 0);
  return lines.join('\n');
}

const units: Array<[string, number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/** Milliseconds back in the config's own notation, in the largest exact unit: 300000 → 5m. */
function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  for (const [unit, size] of units) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

function hostOf(url: string): string {
  return URL.canParse(url) ? new URL(url).host : url;
}

/** `push.watch` in one line: off, a flat interval, or the adaptive intervals and budget. */
function watchSummary(watch: WatchConfig): string {
  if (watch.intervalMs === 0) return 'off';
  if (!watch.adaptive) return formatDuration(watch.intervalMs);
  const rate = Number.isFinite(watch.maxRatePerSecond)
    ? `at most ${Number(watch.maxRatePerSecond.toPrecision(3))} reads/s` : 'no rate limit';
  return `active every ${formatDuration(watch.intervalMs)}, idle every ${formatDuration(watch.idleIntervalMs)}, ${rate}`;
}
