// The monitoring files of deploy/ name what the sidecar really exports: every metric and label in the Grafana
// dashboard's queries and in the alert rules is checked against a scrape of the real app after some push
// traffic; the rules pass `promtool check rules` and their unit tests where promtool is installed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { delimiter, join, resolve } from 'node:path';
import { type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import { request } from 'undici';
import { parse } from 'yaml';
import { renderExposition } from '../../src/metrics/exposition.ts';
import { createRegistry, seriesOverflowMetricName } from '../../src/metrics/registry.ts';
import { startApp, type TestApp } from '../helpers/app.ts';
import { calendarOf, stay } from '../helpers/hostile.ts';
import { readFeed, rigListing } from '../helpers/listing-rig.ts';
import { startServer } from '../helpers/servers.ts';
import { createFakeClock } from '../store/fake-clock.ts';

const root = resolve(import.meta.dirname, '../..');
const dashboardPath = resolve(root, 'deploy/grafana/icalpush.json');
const alertsPath = resolve(root, 'deploy/prometheus/alerts.yaml');
const alertTestsPath = resolve(root, 'deploy/prometheus/alerts.test.yaml');

// Labels Prometheus adds to every series it scrapes (the target's), not the exposition's.
const targetLabels = new Set(['job', 'instance']);
// Series of other exporters the rules read: Prometheus's own scrape health, the blackbox exporter's probe.
const externalMetrics = new Set(['up', 'probe_success']);
const keywords = new Set([
  'and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan',
]);

/** One metric family of a scrape: its TYPE and the label names its samples carry. */
type Family = { type: string; labels: Set<string>; samples: number };

/** Parses exposition text: `# TYPE` lines make the families, sample lines their label names. */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  for (const line of text.split('\n')) {
    const typed = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (typed) {
      families.set(typed[1] as string, { type: typed[2] as string, labels: new Set(), samples: 0 });
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? \S+$/.exec(line);
    if (!sample) continue;
    const name = sample[1] as string;
    const base = families.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    const family = families.get(base);
    assert.ok(family, `sample ${name} without a # TYPE line`);
    family.samples += 1;
    for (const [, label] of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) {
      if (label !== 'le') family.labels.add(label as string);
    }
  }
  return families;
}

/** The series name `name` as PromQL sees it: a counter or gauge itself, a histogram's `_bucket`, `_sum`, `_count`. */
function resolveName(families: Map<string, Family>, name: string): { family: Family; bucket: boolean } | undefined {
  const direct = families.get(name);
  if (direct && direct.type !== 'histogram') return { family: direct, bucket: false };
  const suffixed = /^(.*)_(bucket|sum|count)$/.exec(name);
  const family = suffixed ? families.get(suffixed[1] as string) : undefined;
  if (!suffixed || family?.type !== 'histogram') return undefined;
  return { family, bucket: suffixed[2] === 'bucket' };
}

/** What one query names. */
type QueryNames = { metrics: Set<string>; selectors: Array<{ metric: string; labels: string[] }>; grouping: string[] };

/** The metric names, selector label names and grouping label names of one PromQL expression (or Grafana's
 * `label_values(selector, label)`). Strings and ranges go first, so `"$job"` and `[5m]` are never names. */
function promqlNames(query: string): QueryNames {
  let expr = query.trim();
  const grouping: string[] = [];
  const labelValues = /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$/s.exec(expr);
  if (labelValues) {
    expr = labelValues[1] as string;
    grouping.push(labelValues[2] as string);
  }
  expr = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\[[^\]]*\]/g, ' ');
  const selectors: Array<{ metric: string; labels: string[] }> = [];
  expr = expr.replace(/([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}/g, (_all, metric: string | undefined, body: string) => {
    assert.ok(metric, `a selector without a metric name in ${query}`);
    selectors.push({ metric, labels: Array.from(body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g), (m) => m[1] as string) });
    return ` ${metric} `;
  });
  expr = expr.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_all, list: string) => {
    grouping.push(...list.split(',').map((l) => l.trim()).filter(Boolean));
    return ' ';
  });
  expr = expr.replace(/\$\w+/g, ' ').replace(/(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g, ' ');
  const metrics = new Set<string>();
  for (const match of expr.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = match[0];
    const rest = expr.slice((match.index) + word.length);
    if (keywords.has(word) || /^\s*\(/.test(rest)) continue;
    metrics.add(word);
  }
  return { metrics, selectors, grouping };
}

/** What is wrong with `query` against the scrape: unknown metrics, labels its metrics do not carry. */
function problemsOf(families: Map<string, Family>, query: string): string[] {
  const { metrics, selectors, grouping } = promqlNames(query);
  const problems = new Set<string>();
  if (metrics.size === 0) problems.add('names no metric');
  /** Whether `label` is one of `name`'s (or a target label); a family without series cannot tell. */
  const check = (name: string, label: string, missing: string) => {
    const resolved = resolveName(families, name);
    if (!resolved || targetLabels.has(label) || (resolved.bucket && label === 'le')) return;
    if (resolved.family.labels.has(label)) return;
    problems.add(resolved.family.samples === 0 ? `${name} has no series in the scrape to read labels from` : missing);
  };
  const ours = [...metrics].filter((name) => !externalMetrics.has(name));
  for (const name of ours) if (!resolveName(families, name)) problems.add(`unknown metric ${name}`);
  for (const { metric, labels } of selectors) {
    if (!externalMetrics.has(metric)) for (const label of labels) check(metric, label, `${metric} has no label ${label}`);
  }
  // A grouping label must be one of some metric's of the query (the other side of a join may lack it).
  if (ours.length === metrics.size) {
    for (const label of grouping) {
      const carriers = ours.filter((name) => {
        const resolved = resolveName(families, name);
        return resolved !== undefined && (targetLabels.has(label) || resolved.family.labels.has(label)
          || (resolved.bucket && label === 'le'));
      });
      if (carriers.length === 0) problems.add(`no metric of the query has label ${label}`);
    }
  }
  return [...problems];
}

/** Every PromQL query of the dashboard: panel targets and template variable queries. */
function dashboardQueries(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) {
    for (const item of node) dashboardQueries(item, out);
  } else if (typeof node === 'object' && node !== null) {
    for (const [key, value] of Object.entries(node)) {
      if ((key === 'expr' || key === 'query' || key === 'definition') && typeof value === 'string'
        && /icalpush_|label_values|\(/.test(value)) {
        out.push(value);
      } else {
        dashboardQueries(value, out);
      }
    }
  }
  return out;
}

/** An alerting or recording rule, the fields read here. */
type Rule = {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
};

async function alertRules(): Promise<Rule[]> {
  const doc = parse(await readFile(alertsPath, 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> };
  return doc.groups.flatMap((group) => group.rules);
}

/** The real app on a fake clock in front of an upstream serving listing x's feed (and a refresh action), with
 * one peer whose feed the test changes. */
async function startPushRig(t: TestContext) {
  const clock = createFakeClock(Date.UTC(2026, 11, 1, 12));
  const feed = { text: calendarOf(stay('dec@test', '20261220', '20261223')) };
  const upstream = await startServer(t, (req, res) => {
    if (req.method === 'POST' && req.url === `/refresh/${rigListing}`) {
      res.writeHead(204).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(feed.text);
  });
  const peerFeed = { text: calendarOf() };
  const peer = await startServer(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(req.method === 'HEAD' ? undefined : peerFeed.text);
  });
  const app = await startApp(t, upstream.url, {
    listings: { [rigListing]: { peers: [{ name: 'peer', url: `${peer.url}/ical/${rigListing}.ics` }] } },
    push: { watch: 0 },
    refresh: { url: `${upstream.url}/refresh/{listing}` },
  }, undefined, clock);
  return { app, clock, feed, peerFeed };
}

/** Resolves once the app logged `msg` (past or future). */
const logged = (app: TestApp, msg: string) => app.waitForLog((l) => l.msg === msg);

/** A GET of listing x's feed through the sidecar. */
async function get(app: TestApp, method = 'GET'): Promise<void> {
  await (await request(`${app.url}/calendar/${rigListing}.ics`, { method })).body.dump();
}

async function scrape(app: TestApp): Promise<string> {
  const res = await request(`${app.url}/_icalpush/metrics`);
  assert.equal(res.statusCode, 200);
  return await res.body.text();
}

/** A real app after a booking pushed to a peer, an inbound HEAD that ran a refresh, and a held drop, scraped. */
async function scrapeAfterTraffic(t: TestContext): Promise<Map<string, Family>> {
  const { app, clock, feed, peerFeed } = await startPushRig(t);
  await readFeed(app, 1);
  // A booking: classified primary, queued for the peer, sent once the coalescing window passes.
  feed.text = calendarOf(stay('dec@test', '20261220', '20261223'), stay('jan@test', '20270110', '20270114'));
  await readFeed(app, 2);
  const sent = logged(app, 'push notification sent');
  clock.advance(10);
  await sent;
  // A booking on the peer, and its HEAD: the peer's feed changed, so the refresh action is called.
  peerFeed.text = calendarOf(stay('peer@test', '20270201', '20270205'));
  const refreshed = logged(app, 'inbound notification: refresh');
  await get(app, 'HEAD');
  await refreshed;
  // Every booking gone at once, long after any trigger: a drop, held.
  clock.advance(60 * 60 * 1000);
  feed.text = calendarOf();
  const held = logged(app, 'feed drop held');
  await get(app);
  await held;
  const families = parseExposition(await scrape(app));
  // Overflow series exist only once a metric is at its bound: their label names come from the registry itself.
  const probe = createRegistry({ maxSeries: 1 });
  const counter = probe.counter('probe_total', 'Two label values past a bound of one.', ['k']);
  counter.labels('a').inc();
  counter.labels('b').inc();
  const overflow = parseExposition(renderExposition(probe)).get(seriesOverflowMetricName);
  const scraped = families.get(seriesOverflowMetricName);
  assert.ok(overflow && scraped && overflow.samples > 0);
  families.set(seriesOverflowMetricName, { ...scraped, labels: new Set([...scraped.labels, ...overflow.labels]) });
  return families;
}

test('every metric and label the dashboard and the alert rules use is exported by the app', async (t) => {
  const families = await scrapeAfterTraffic(t);
  // The traffic reached the series the panels split by label, and the held drop shows in its gauge.
  for (const name of ['icalpush_push_propagation_seconds', 'icalpush_push_refreshes_total', 'icalpush_push_changes_total']) {
    assert.ok((families.get(name)?.samples ?? 0) > 0, `${name} has series`);
  }

  const dashboard = JSON.parse(await readFile(dashboardPath, 'utf8')) as Record<string, unknown>;
  const queries = dashboardQueries(dashboard.panels);
  assert.ok(queries.length >= 20, `dashboard has ${queries.length} queries`);
  const variables = dashboardQueries(dashboard.templating);
  assert.ok(variables.some((q) => q.includes(', job)')) && variables.some((q) => q.includes(', instance)')));
  const rules = await alertRules();
  assert.ok(rules.length > 0);
  const problems = [
    ...[...queries, ...variables].flatMap((q) => problemsOf(families, q).map((p) => `dashboard: ${p}: ${q}`)),
    ...rules.flatMap((r) => problemsOf(families, r.expr).map((p) => `alert ${r.alert ?? r.record}: ${p}`)),
  ];
  assert.deepEqual(problems, []);

  // The check bites: a misspelt metric, a label the metric lacks, a histogram read without its suffix.
  assert.deepEqual(problemsOf(families, 'rate(icalpush_push_notification_total[5m])'),
    ['unknown metric icalpush_push_notification_total']);
  assert.deepEqual(problemsOf(families, 'sum by (reason) (rate(icalpush_push_notifications_total{result="sent"}[5m]))'),
    ['icalpush_push_notifications_total has no label result', 'no metric of the query has label reason']);
  assert.deepEqual(problemsOf(families, 'rate(icalpush_push_propagation_seconds[5m])'),
    ['unknown metric icalpush_push_propagation_seconds']);
});

test('the held-drops gauge counts the drop the app is holding, then past its span', async (t) => {
  const { app, clock, feed } = await startPushRig(t);
  await readFeed(app, 1);
  clock.advance(60 * 60 * 1000);
  feed.text = calendarOf();
  const held = logged(app, 'feed drop held');
  await get(app);
  await held;
  assert.match(await scrape(app), /^icalpush_feed_held_drops\{state="within_span"\} 1$/m);
  // The default span is 2 h: past it, and no read since, the drop counts as past its span.
  clock.advance(2 * 60 * 60 * 1000);
  const text = await scrape(app);
  assert.match(text, /^icalpush_feed_held_drops\{state="within_span"\} 0$/m);
  assert.match(text, /^icalpush_feed_held_drops\{state="past_span"\} 1$/m);
});

test('every alert rule has a duration, a severity and a summary and description naming the series', async () => {
  for (const rule of await alertRules()) {
    assert.ok(rule.alert, 'alerting rules only');
    assert.ok(rule.for, `${rule.alert}: for`);
    assert.ok(['critical', 'warning', 'info'].includes(rule.labels?.severity ?? ''), `${rule.alert}: severity`);
    assert.match(rule.annotations?.summary ?? '', /\$labels\./, `${rule.alert}: summary`);
    assert.match(rule.annotations?.description ?? '', /\$labels\./, `${rule.alert}: description`);
  }
});

/** promtool on PATH, or Debian's /usr/bin/promtool. */
function promtool(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, 'promtool');
    if (existsSync(candidate)) return candidate;
  }
  return existsSync('/usr/bin/promtool') ? '/usr/bin/promtool' : undefined;
}

test('promtool accepts the alert rules and their unit tests pass', async (t) => {
  const binary = promtool();
  if (binary === undefined) {
    t.skip('promtool not installed: apt-get install prometheus');
    return;
  }
  const run = promisify(execFile);
  const checked = await run(binary, ['check', 'rules', alertsPath]);
  assert.match(checked.stdout, /SUCCESS: \d+ rules found/);
  const tested = await run(binary, ['test', 'rules', alertTestsPath], { cwd: resolve(root, 'deploy/prometheus') });
  assert.match(tested.stdout, /SUCCESS/);
});
