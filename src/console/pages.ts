// The operator console's pages: server-rendered HTML that works without script (console.js only adds
// auto-refresh and filtering of the rows shown), semantic tables with captions and scoped headers, times
// in UTC on the overview and in the listing's own time zone on its page. Every value from the sidecar's
// state goes through `html`, which escapes it.
import { localDateTime, usableTimeZone } from '../push/decide/dates.ts';
import { html, type Html } from './html.ts';
import type { ListingDetail, ListingRow, ListingsPage, Overview, PeerHealth } from './console-model.ts';
import type { MinuteSeries } from './minute-series.ts';
import { linePlot } from './svg-plot.ts';

/** Where the console lives under the admin prefix. */
export const consoleBase = '/_icalpush/';
export const listingsPath = '/_icalpush/console/listings';
export const assetsPath = '/_icalpush/console/assets/';

const listingHref = (id: string) => `${listingsPath}/${encodeURIComponent(id)}`;

/** The page around `body`. */
export function layout(title: string, current: 'overview' | 'listings', body: Html, options: { refresh?: boolean } = {}): string {
  const nav = (href: string, name: string, key: typeof current) =>
    html`<a href="${href}"${key === current ? html` aria-current="page"` : ''}>${name}</a>`;
  return `<!doctype html>\n${html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="robots" content="noindex">
<title>${title} · icalpush</title>
<link rel="stylesheet" href="${assetsPath}console.css">
<script src="${assetsPath}console.js" defer></script>
</head>
<body${options.refresh === false ? '' : html` data-refresh="30"`}>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<p class="brand">icalpush</p>
<nav aria-label="Console">${nav(consoleBase, 'Overview', 'overview')} ${nav(listingsPath, 'Listings', 'listings')}</nav>
</header>
<main id="main">
${body}
</main>
</body>
</html>`}\n`;
}

// Times: UTC on the overview, the listing's zone on its page (the zone's abbreviation from Intl, a formatter
// made once per zone).
const zoneNames = new Map<string, Intl.DateTimeFormat>();

function zoneName(ms: number, zone: string): string {
  let format = zoneNames.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-GB', { timeZone: zone, timeZoneName: 'short' });
    if (zoneNames.size > 1_000) zoneNames.clear();
    zoneNames.set(zone, format);
  }
  return format.formatToParts(ms).find((part) => part.type === 'timeZoneName')?.value ?? zone;
}

/** An ISO time as `2026-12-01 14:05:09 CET` in `zone` (UTC when none or unknown); '—' for none. */
export function formatTime(value: string | number | undefined, zone = 'UTC'): string {
  if (value === undefined || value === '') return '—';
  const ms = typeof value === 'number' ? value : Date.parse(value);
  if (!Number.isFinite(ms)) return String(value);
  const known = usableTimeZone(zone) ?? 'UTC';
  return `${localDateTime(ms, known)} ${zoneName(ms, known)}`;
}

function timeEl(value: string | undefined, zone?: string): Html {
  if (!value) return html`<span class="none">—</span>`;
  return html`<time datetime="${value}">${formatTime(value, zone)}</time>`;
}

/** How long ago, roughly: for people scanning a table. */
export function ago(value: string | undefined, nowMs: number): string {
  if (!value) return '';
  const s = Math.round((nowMs - Date.parse(value)) / 1000);
  if (!Number.isFinite(s)) return '';
  const a = Math.abs(s);
  const span = a < 90 ? `${a} s` : a < 90 * 60 ? `${Math.round(a / 60)} min` : a < 48 * 3600
    ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86_400)} d`;
  return s < 0 ? `in ${span}` : `${span} ago`;
}

const healthText: Record<PeerHealth, string> = { ok: 'ok', failing: 'failing', unknown: 'not yet seen' };

function health(peers: ListingRow['peers']): Html {
  if (peers.length === 0) return html`<span class="none">no peers</span>`;
  return html`<ul class="peers">${peers.map((p) => html`<li class="health ${p.health}" title="${p.lastError ?? healthText[p.health]}"><span class="dot" aria-hidden="true"></span>${p.name}<span class="visually-hidden">: ${healthText[p.health]}</span></li>`)}</ul>`;
}

function kindBadge(kind: string | undefined): Html {
  return kind ? html`<span class="badge kind-${kind}">${kind}</span>` : html`<span class="none">—</span>`;
}

function stat(label: string, value: Html | string | number, note?: Html | string, tone?: 'bad' | 'warn'): Html {
  return html`<div class="stat${tone ? ` ${tone}` : ''}"><dt>${label}</dt><dd>${value}${note ? html`<small>${note}</small>` : ''}</dd></div>`;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const round = (n: number) => (n >= 10 ? String(Math.round(n)) : String(Math.round(n * 10) / 10));
const seconds = (n: number | null) => (n === null ? '—' : n >= 90 ? `${round(n / 60)} min` : `${round(n)} s`);

/** The plots of the last day. */
export function plots(series: MinuteSeries): Html {
  const c = series.counters;
  const budget = series.budgetPerMinute.some((v) => v !== null)
    ? [{ name: 'watch budget', className: 's-budget', values: series.budgetPerMinute, dashed: true }] : [];
  const sumOf = (...lists: (readonly (number | null)[] | undefined)[]) => series.budgetPerMinute.map((_, i) => {
    let total: number | null = null;
    for (const list of lists) {
      const v = list?.[i];
      if (v !== null && v !== undefined) total = (total ?? 0) + v;
    }
    return total;
  });
  return html`<section aria-labelledby="plots-h" class="plots">
<h2 id="plots-h">Last 24 hours, per minute</h2>
${linePlot({ id: 'plot-latency', title: 'Booking → peer HEAD', unit: 's', endMs: series.endMs, lines: [
  { name: 'p50', className: 's-1', values: series.latency.p50 },
  { name: 'p99', className: 's-2', values: series.latency.p99 },
] })}
${linePlot({ id: 'plot-notifications', title: 'Notifications by outcome', unit: '/min', endMs: series.endMs, lines: [
  { name: 'sent', className: 's-ok', values: c.notifications.sent ?? [] },
  { name: 'retried', className: 's-warn', values: c.notifications.retried ?? [] },
  { name: 'failed, dropped or refused', className: 's-bad',
    values: sumOf(c.notifications.failed, c.notifications.dropped, c.notifications.refused) },
] })}
${linePlot({ id: 'plot-reads', title: 'Upstream reads by reason', unit: '/min', endMs: series.endMs, lines: [
  { name: 'all upstream reads', className: 's-1', values: c.upstreamReads[''] ?? [] },
  { name: 'watch: active', className: 's-2', values: c.watchReads.active ?? [] },
  { name: 'watch: idle', className: 's-3', values: c.watchReads.idle ?? [] },
  { name: 'watch: 304', className: 's-4', values: c.watchReads['not-modified'] ?? [] },
  ...budget,
] })}
${linePlot({ id: 'plot-inbound', title: 'Inbound HEADs', unit: '/min', endMs: series.endMs, lines: [
  { name: 'inbound HEADs', className: 's-1', values: c.inbound[''] ?? [] },
  { name: 'refreshes', className: 's-2', values: c.refreshes[''] ?? [] },
] })}
</section>`;
}

/** The overview page. */
export function overviewPage(o: Overview, series: MinuteSeries): string {
  const n = o.notifications;
  const failedHour = n.hour.failed + n.hour.dropped + n.hour.refused;
  const failedDay = n.day.failed + n.day.dropped + n.day.refused;
  const now = Date.parse(o.generatedAt);
  const budget = o.reads.budgetPerMinute;
  const body = html`<h1>Overview</h1>
<p class="meta">Replica <code>${o.replica.id}</code> · store ${o.replica.store} · generated ${timeEl(o.generatedAt)}</p>
<section aria-labelledby="now-h">
<h2 id="now-h" class="visually-hidden">At a glance</h2>
<dl class="stats">
${stat('Listings', o.listings, html`<a href="${listingsPath}">see all</a>`)}
${stat('Feeds', o.feeds)}
${stat('Peers', o.peers, o.errors.failingPeers > 0 ? `${o.errors.failingPeers} failing` : 'none failing', o.errors.failingPeers > 0 ? 'bad' : undefined)}
${stat('Sent, last hour', n.hour.sent, `${n.day.sent} in 24 h`)}
${stat('Failed, last hour', failedHour, `${failedDay} in 24 h · ${n.hour.retried} retried`, failedHour > 0 ? 'bad' : undefined)}
${stat('Pending', n.pending, n.overdue > 0 ? `${n.overdue} overdue` : 'none overdue', n.overdue > 0 ? 'warn' : undefined)}
${stat('Booking → peer HEAD, p99 last hour', seconds(o.propagation.hour.p99), o.propagation.hour.count > 0
  ? `p50 ${seconds(o.propagation.hour.p50)} · ${plural(o.propagation.hour.count, 'HEAD')}` : 'no HEAD sent')}
${stat('Upstream reads, last hour', `${round(o.reads.lastHourPerMinute)}/min`, budget === null
  ? `watch ${round(o.reads.watchLastHourPerMinute)}/min, unbounded`
  : budget === 0 ? 'watch off' : `watch ${round(o.reads.watchLastHourPerMinute)}/min of a ${round(budget)}/min budget`)}
${stat('Inbound HEADs, last hour', o.inboundHeads.hour, `${o.inboundHeads.day} in 24 h`)}
${stat('Held drops', o.held.length, o.held.some((h) => h.overdue) ? 'held past their span' : undefined, o.held.length > 0 ? 'warn' : undefined)}
${stat('Upstream errors, last hour', o.errors.upstreamHour, `${o.errors.upstreamDay} in 24 h · ${o.errors.feedsFailing} feeds failing`, o.errors.upstreamHour > 0 ? 'warn' : undefined)}
${stat('Replicas seen', o.replica.live.length, o.replica.live.length > 1 ? o.replica.live.join(', ') : 'this one')}
</dl>
</section>
${o.held.length > 0 ? html`<section aria-labelledby="held-h">
<h2 id="held-h">Held drops</h2>
<table>
<caption>Reads that dropped most of a feed, kept back until they persist</caption>
<thead><tr><th scope="col">Listing</th><th scope="col">Feed</th><th scope="col">Since</th><th scope="col">Entities it would leave</th></tr></thead>
<tbody>${o.held.map((h) => html`<tr${h.overdue ? html` class="warn"` : ''}><td><a href="${listingHref(h.listing)}">${h.listing}</a></td><td><code>${h.feed}</code></td><td>${timeEl(h.since)} <small>${ago(h.since, now)}</small></td><td>${h.entities}</td></tr>`)}</tbody>
</table>
</section>` : ''}
${plots(series)}
<section aria-labelledby="map-h">
<h2 id="map-h">Connection map</h2>
<pre class="json">${JSON.stringify(o.map, null, 2)}</pre>
</section>`;
  return layout('Overview', 'overview', body);
}

/** The listings page: a page of the table, with a search form that works without script. */
export function listingsPage(p: ListingsPage, nowMs: number): string {
  const link = (page: number) => `${listingsPath}?${new URLSearchParams({ ...(p.query ? { q: p.query } : {}), page: String(page) })}`;
  const pager = html`<nav class="pager" aria-label="Pages">
${p.page > 1 ? html`<a href="${link(p.page - 1)}" rel="prev">← Previous</a>` : html`<span class="none">← Previous</span>`}
<span>Page ${p.page} of ${p.pages}</span>
${p.page < p.pages ? html`<a href="${link(p.page + 1)}" rel="next">Next →</a>` : html`<span class="none">Next →</span>`}
</nav>`;
  const rows = p.rows.map((r) => html`<tr data-filter="${`${r.id} ${r.peers.map((x) => x.name).join(' ')} ${r.lastDecision?.kind ?? ''}`.toLowerCase()}">
<th scope="row"><a href="${listingHref(r.id)}">${r.id}</a></th>
<td>${r.lastDecision ? html`${timeEl(r.lastDecision.at)} <small>${ago(r.lastDecision.at, nowMs)}</small>` : html`<span class="none">no decision yet</span>`}</td>
<td>${kindBadge(r.lastDecision?.kind)} ${r.lastDecision ? html`<small>${r.lastDecision.rule}</small>` : ''}</td>
<td>${r.lastNotification ? html`${timeEl(r.lastNotification)} <small>${ago(r.lastNotification, nowMs)}</small>` : html`<span class="none">never</span>`}</td>
<td>${health(r.peers)}</td>
</tr>`);
  const body = html`<h1>Listings</h1>
<form class="search" method="get" action="${listingsPath}" role="search">
<label for="q">Search listings and peers</label>
<input id="q" name="q" type="search" value="${p.query}" maxlength="200" autocomplete="off">
<button type="submit">Search</button>
</form>
<p class="meta">${p.matched === p.total ? `${p.total} listings` : `${p.matched} of ${p.total} listings match “${p.query}”`} · ${p.perPage} a page</p>
<label class="filter" hidden>Filter this page <input type="search" data-filter-rows="listings-table"></label>
<table id="listings-table">
<caption>Each listing's last decision, its kind, the last notification to a peer and the peers' health</caption>
<thead><tr><th scope="col">Listing</th><th scope="col">Last decision</th><th scope="col">Kind</th><th scope="col">Last notification</th><th scope="col">Peers</th></tr></thead>
<tbody>${rows.length > 0 ? rows : html`<tr><td colspan="5">No listing matches.</td></tr>`}</tbody>
</table>
${pager}`;
  return layout('Listings', 'listings', body);
}

function runs(label: string, list: readonly string[] | undefined): Html {
  if (!list || list.length === 0) return html``;
  return html`<div><dt>${label}</dt><dd>${list.map((r) => html`<code class="nights">${r}</code> `)}</dd></div>`;
}

// The last inbound HEADs and refreshes, side by side, newest first.
function recentTable(d: ListingDetail, at: (value: string | undefined) => Html, nowMs: number): Html {
  const heads = d.inbound?.heads ?? [];
  const refreshes = d.inbound?.refreshes ?? [];
  if (heads.length + refreshes.length === 0) return html`<p class="none">No inbound HEAD since this replica started.</p>`;
  const rows = Array.from({ length: Math.max(heads.length, refreshes.length) }, (_, i) => {
    const head = heads[i];
    const refresh = refreshes[i];
    return html`<tr><td>${head ? html`${at(head)} <small>${ago(head, nowMs)}</small>` : ''}</td>
<td>${refresh ? html`${at(refresh.at)} <small>${refresh.outcome}</small>` : ''}</td></tr>`;
  });
  return html`<table id="recent-inbound"><caption>The last inbound HEADs and the refreshes they caused (debounced HEADs share one), newest first</caption>
<thead><tr><th scope="col">Inbound HEAD</th><th scope="col">Refresh</th></tr></thead><tbody>${rows}</tbody></table>`;
}

// What each kind of activity (push/activity.ts) is called on a listing's page.
const activityNames: Record<string, string> = {
  change: 'Last change of its nights', trigger: 'Last trigger', inbound: 'Last inbound HEAD', operator: 'Last operator notify',
};

/** One listing's page: the decision timeline, peers, pending notifications, inbound HEADs and refreshes. */
export function listingPage(d: ListingDetail, nowMs: number): string {
  const zone = d.today.zone;
  const at = (value: string | undefined) => timeEl(value, zone);
  const snap = d.snapshot;
  const decisions = d.decisions.map((x, i) => html`<li class="decision kind-${x.kind}">
<article aria-labelledby="d${i}">
<header><h3 id="d${i}">${kindBadge(x.kind)} <span class="rule">${x.rule}</span></h3>${at(x.at)}${x.repeats ? html` <small>${x.repeats} times since ${at(x.firstAt)}</small>` : ''}</header>
<p>${x.why}</p>
<dl class="facts">
${runs('Nights booked', x.nights.added)}
${runs('Nights freed', x.nights.removed)}
${runs('Nobody explains', [...(x.primary?.added ?? []), ...(x.primary?.removed ?? [])])}
${runs('Passed', [...(x.passed?.added ?? []), ...(x.passed?.removed ?? [])])}
${x.evidence.length > 0 ? html`<div><dt>Peers' evidence</dt><dd><ul>${x.evidence.map((e) => html`<li><strong>${e.peer}</strong> shows <code class="nights">${e.night}</code> ${e.shows} (read ${at(e.readAt)})</li>`)}</ul></dd></div>` : ''}
${x.drop ? html`<div><dt>Drop held</dt><dd>${x.drop.lost} of ${x.drop.of} ${x.drop.measure} would go</dd></div>` : ''}
<div><dt>HEADs sent</dt><dd>${x.notified.length > 0 ? x.notified.join(', ') : html`<span class="none">none</span>`}</dd></div>
${x.version !== undefined ? html`<div><dt>Version</dt><dd>${x.version}</dd></div>` : ''}
</dl>
</article>
</li>`);
  const peers = d.peers.map((p) => html`<tr>
<th scope="row">${p.name}</th><td><code>${p.url}</code></td><td>${p.notify ? 'yes' : 'no'}</td>
<td>${at(p.lastRead)} ${p.readBy ? html`<small>${p.readBy}</small>` : ''}</td><td>${p.busyNights ?? '—'}</td>
<td>${at(p.lastNotification)}</td>
<td>${p.lastError ? html`<span class="bad">${p.lastError.reason}</span> <small>${at(new Date(p.lastError.at).toISOString())}</small>` : html`<span class="none">none</span>`}</td>
</tr>`);
  const pending = d.pending.map((p) => html`<tr><th scope="row">${p.name}</th><td><code>${p.url}</code></td><td>${p.attempts}</td>
<td>${at(new Date(p.dueAt).toISOString())} <small>${ago(new Date(p.dueAt).toISOString(), nowMs)}</small></td><td>${p.lastError ?? html`<span class="none">none</span>`}</td></tr>`);
  const activity = Object.entries(d.activity).filter(([, v]) => v);
  const body = html`<p class="crumbs"><a href="${listingsPath}">Listings</a> /</p>
<h1>${d.id}</h1>
<p class="meta">Feed <code>${d.feed}</code> · time zone ${zone ?? 'none set (UTC shown)'} · today ${d.today.busyFrom}${d.today.freeFrom !== d.today.busyFrom ? `–${d.today.freeFrom}` : ''} (${d.today.rule})</p>
<dl class="stats">
${stat('Version', snap?.version ?? '—', snap?.unversioned ? `unversioned: ${snap.unversioned}` : undefined)}
${stat('Events', snap?.entities ?? '—')}
${stat('Last read', snap?.lastRead ? at(snap.lastRead) : '—', ago(snap?.lastRead, nowMs))}
${stat('Last change', snap?.lastChange ? at(snap.lastChange) : '—', ago(snap?.lastChange, nowMs))}
${stat('Held drop', snap?.held ? 'held' : 'none', snap?.held ? html`since ${at(snap.held.since)} · ${snap.held.entities} events would remain` : undefined, snap?.held ? 'warn' : undefined)}
${stat('Pending', d.pending.length)}
</dl>
<section aria-labelledby="peers-h">
<h2 id="peers-h">Peers</h2>
<table>
<caption>The peers this listing imports from and notifies: last read, how, last notification, last error</caption>
<thead><tr><th scope="col">Peer</th><th scope="col">Calendar</th><th scope="col">Notified</th><th scope="col">Last read</th><th scope="col">Busy nights</th><th scope="col">Last notification</th><th scope="col">Last error</th></tr></thead>
<tbody>${peers.length > 0 ? peers : html`<tr><td colspan="7">No peers.</td></tr>`}</tbody>
</table>
</section>
<section aria-labelledby="pending-h">
<h2 id="pending-h">Pending notifications</h2>
${pending.length > 0 ? html`<table><caption>Notifications waiting to be sent, with their next attempt</caption>
<thead><tr><th scope="col">Peer</th><th scope="col">Calendar</th><th scope="col">Attempts</th><th scope="col">Next attempt</th><th scope="col">Last error</th></tr></thead>
<tbody>${pending}</tbody></table>` : html`<p class="none">Nothing waiting.</p>`}
</section>
<section aria-labelledby="inbound-h">
<h2 id="inbound-h">Activity: changes, triggers, inbound HEADs, refreshes</h2>
<dl class="facts">
${activity.map(([kind, v]) => html`<div><dt>${activityNames[kind] ?? `Last ${kind}`}</dt><dd>${at(v)} <small>${ago(v, nowMs)}</small></dd></div>`)}
<div><dt>Last refresh</dt><dd>${d.lastRefresh ? html`${at(d.lastRefresh.at)} <small>${d.lastRefresh.outcome ?? ''}</small>` : html`<span class="none">none</span>`}</dd></div>
</dl>
${recentTable(d, at, nowMs)}
</section>
<section aria-labelledby="timeline-h">
<h2 id="timeline-h">Decisions</h2>
<p class="meta">Newest first, the last ${d.decisions.length} (times in ${zone ?? 'UTC'}).</p>
${decisions.length > 0 ? html`<ol class="timeline">${decisions}</ol>` : html`<p class="none">No decision yet.</p>`}
</section>`;
  return layout(d.id, 'listings', body);
}

/** A page for a refusal or a missing listing. */
export function messagePage(title: string, text: string): string {
  return layout(title, 'overview', html`<h1>${title}</h1><p>${text}</p>`, { refresh: false });
}
