// `icalpush status [--listing ID] [--json]`: what the running sidecar is doing, as tables on the terminal, from
// the console's own data (GET /_icalpush/overview, GET /_icalpush/listings/{id}) — the same objects its pages
// render. Like `reload`, the config file only says where the sidecar listens and its admin token.
import { formatProblems, loadConfigFile } from '../config/load.ts';
import type { ListingDetail, OutcomeCounts, Overview } from '../console/console-model.ts';
import { localDateTime, usableTimeZone } from '../push/decide/dates.ts';
import { nightsOfRuns } from '../push/decide/night-runs.ts';
import { getFromSidecar } from './admin-request.ts';
import type { CliIo } from './program.ts';
import { type Cell, renderTable } from './table.ts';

/** status's options as commander gives them. */
export type StatusOptions = { listing?: string; json?: boolean };

// The decision timeline shows the newest this many; the rest is counted.
const timelineRows = 20;

/** Runs status; resolves with the exit code (0 shown, 1 refused, unreachable or unknown listing, 2 bad config). */
export async function runStatus(options: StatusOptions, configPath: string, io: CliIo): Promise<number> {
  const result = await loadConfigFile(configPath, io.env, { listingsFile: false });
  if (!result.ok) {
    io.stderr.write(`${configPath}: invalid configuration\n${formatProblems(result.problems, configPath)}\n`);
    return 2;
  }
  const { listing } = options;
  const res = await getFromSidecar(result.config, listing === undefined ? 'overview' : `listings/${encodeURIComponent(listing)}`);
  if (res.kind === 'unreachable') {
    io.stderr.write(`${res.base}: the sidecar is not reachable (${res.cause}); is it running?\n`);
    return 1;
  }
  if (res.status === 401 || res.status === 403) {
    // The answer is the console's sign-in page: what matters is whose token it refused.
    io.stderr.write(`${res.base}: refused (${res.status}): check admin.token in ${configPath}\n`);
    return 1;
  }
  if (res.status === 404 && listing !== undefined) {
    io.stderr.write(`${listing}: not a listing of the running sidecar at ${res.base}\n`);
    return 1;
  }
  let body: unknown;
  try {
    body = res.status === 200 ? JSON.parse(res.text) : undefined;
  } catch {
    body = undefined;
  }
  if (body === undefined || typeof body !== 'object' || body === null) {
    io.stderr.write(`${res.base}: ${res.status} ${res.text.trim().split('\n')[0]?.slice(0, 200) ?? ''}\n`);
    return 1;
  }
  if (options.json) io.stdout.write(res.text.endsWith('\n') ? res.text : `${res.text}\n`);
  else io.stdout.write(`${listing === undefined ? overviewText(body as Overview) : listingText(body as ListingDetail)}\n`);
  return 0;
}

/** The overview as the terminal shows it. */
export function overviewText(o: Overview): string {
  const utc = timeFormatter(undefined);
  const outcomes = (c: OutcomeCounts) =>
    `${c.sent} sent, ${c.failed} failed, ${c.retried} retried, ${c.dropped} dropped, ${c.refused} refused`;
  const { p50, p99, count } = o.propagation.hour;
  const watch = `watch ${round(o.reads.watchLastHourPerMinute)}`;
  const budget = o.reads.budgetPerMinute === null ? `${watch}, no budget` : `${watch} of its budget ${round(o.reads.budgetPerMinute)}`;
  const rows: Cell[][] = [
    ['listings', String(o.listings)],
    ['feeds', String(o.feeds)],
    ['peers', `${o.peers} (${o.errors.failingPeers} failing)`],
    ['notifications, last hour', outcomes(o.notifications.hour)],
    ['notifications, 24 h', outcomes(o.notifications.day)],
    ['pending notifications', `${o.notifications.pending} (${o.notifications.overdue} overdue)`],
    ['propagation, last hour', p50 === null
      ? 'no notification answered'
      : `p50 ${p50.toFixed(1)} s, p99 ${(p99 ?? p50).toFixed(1)} s (${count} notification${count === 1 ? '' : 's'})`],
    ['upstream reads/min, last hour', `${round(o.reads.lastHourPerMinute)} (${budget})`],
    ['inbound HEADs', `${o.inboundHeads.hour} last hour, ${o.inboundHeads.day} in 24 h`],
    ['upstream errors', `${o.errors.upstreamHour} last hour, ${o.errors.upstreamDay} in 24 h (${o.errors.feedsFailing} feeds failing)`],
  ];
  const parts = [
    `replica ${o.replica.id}, store ${o.replica.store}, generated at ${utc(o.generatedAt)} UTC, replicas seen ${o.replica.live.length}`,
    '',
    renderTable(['what', 'value'], rows),
  ];
  if (o.held.length > 0) {
    parts.push('', 'held drops', renderTable(['listing', 'feed', 'since', 'entities'], o.held.map((h) =>
      [h.listing, h.feed, `${utc(h.since)}${h.overdue ? ' (overdue)' : ''}`, h.entities])));
  }
  return parts.join('\n');
}

/** One listing as the terminal shows it; its times in the listing's zone (UTC when it has none). */
export function listingText(d: ListingDetail): string {
  const zone = d.today.zone;
  const time = timeFormatter(zone);
  const at = (value: string | number | undefined) => (value === undefined ? undefined : time(value));
  const { busyFrom, freeFrom, rule } = d.today;
  const today = busyFrom === freeFrom ? `today ${busyFrom}` : `today busy from ${busyFrom}, free from ${freeFrom}`;
  const parts = [`listing ${d.id}`, `feed ${d.feed}`, `time zone ${zone ?? 'none (times in UTC)'}, ${today} (rule: ${rule})`];
  const s = d.snapshot;
  if (s) {
    const fields = [
      s.version === undefined ? undefined : `version ${s.version}`,
      `${s.entities} entities`,
      s.lastRead === undefined ? undefined : `last read ${time(s.lastRead)}`,
      s.lastChange === undefined ? undefined : `last change ${time(s.lastChange)}`,
      s.held ? `held drop to ${s.held.entities} entities${s.held.since ? ` since ${time(s.held.since)}` : ''}` : undefined,
      s.unversioned === undefined ? undefined : `unversioned: ${s.unversioned}`,
    ];
    parts.push(`snapshot ${fields.filter((f) => f !== undefined).join(', ')}`);
  } else {
    parts.push('snapshot none yet (the feed has not been read)');
  }
  const activity = Object.entries(d.activity).filter((e): e is [string, string] => e[1] !== undefined);
  parts.push(`last activity ${activity.length ? activity.map(([kind, when]) => `${kind} ${time(when)}`).join(', ') : 'none'}`);
  const refresh = d.lastRefresh;
  parts.push(`last refresh ${refresh
    ? [refresh.at === undefined ? undefined : time(refresh.at), refresh.outcome].filter(Boolean).join(', ') || 'yes'
    : 'none'}`);
  parts.push('', 'peers', d.peers.length === 0 ? '(none)' : renderTable(
    ['name', 'url', 'notify', 'last read', 'last notification', 'last error'],
    d.peers.map((p) => [p.name, p.url, p.notify ? 'yes' : 'no',
      p.lastRead === undefined ? undefined : `${time(p.lastRead)}${p.readBy ? ` (${p.readBy})` : ''}`,
      at(p.lastNotification),
      p.lastError ? `${p.lastError.reason} at ${time(p.lastError.at)}` : undefined]),
  ));
  if (d.pending.length > 0) {
    parts.push('', 'pending notifications', renderTable(['peer', 'attempts', 'next attempt', 'last error'],
      d.pending.map((p) => [p.name, p.attempts, time(p.dueAt), p.lastError])));
  }
  const shown = d.decisions.slice(0, timelineRows);
  parts.push('', `decisions, newest first (times in ${zone ?? 'UTC'})`, shown.length === 0 ? '(none yet)' : renderTable(
    ['time', 'kind', 'rule', 'nights +', 'nights -', 'HEADs sent', 'why'],
    shown.map((x) => [
      time(x.at),
      x.repeats && x.repeats > 1 ? `${x.kind} x${x.repeats}` : x.kind,
      x.rule,
      nightsOfRuns(x.nights.added).length,
      nightsOfRuns(x.nights.removed).length,
      x.notified.length ? x.notified.join(', ') : '-',
      x.why,
    ]),
  ));
  if (d.decisions.length > shown.length) parts.push(`… ${d.decisions.length - shown.length} more`);
  return parts.join('\n');
}

// `2026-12-02 00:35:00` in `zone` (UTC without one, or one this runtime does not know): the listing's own
// calendar day is what a host reads.
function timeFormatter(zone: string | undefined): (value: string | number) => string {
  const known = (zone === undefined ? undefined : usableTimeZone(zone)) ?? 'UTC';
  return (value) => {
    const ms = typeof value === 'number' ? value : Date.parse(value);
    return Number.isFinite(ms) ? localDateTime(ms, known) : String(value);
  };
}

const round = (n: number) => String(Math.round(n * 10) / 10);
