// Every fixture feed against its golden summary, a serialize round trip, ical.js reading our output, and
// the feed history's full and delta answers. Goldens change only by an explicit `UPDATE_GOLDEN=1` run (house style).
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import ICAL from 'ical.js';
import { applyAnalysis, calendarText, changesSince, currentTexts, type FeedHistory } from '../../src/feeds/history.ts';
import { packCalendar } from '../../src/work/feed-tasks.ts';
import { groupEntities } from '../../src/ical/entities.ts';
import { entityHash } from '../../src/ical/normalize.ts';
import { serializeCalendar, tombstone } from '../../src/ical/serialize.ts';
import { propertyLine } from '../../src/ical/split.ts';
import { unresolvedTzids } from '../helpers/valid-icalendar.ts';
import { feedsDir, icalJsCounts, type ParsedFeed, parseFeed, readFixture } from './feeds.ts';

const names = readdirSync(feedsDir).filter((f) => f.endsWith('.ics')).map((f) => f.slice(0, -'.ics'.length)).sort();

function summary(feed: ParsedFeed) {
  const componentCounts: Record<string, number> = {};
  for (const c of feed.entities.flatMap((e) => e.components)) {
    componentCounts[c.type] = (componentCounts[c.type] ?? 0) + 1;
  }
  return {
    complete: feed.split.complete,
    encoding: feed.decoded.encoding,
    hadBom: feed.decoded.hadBom,
    entityCount: feed.entities.length,
    entityIds: feed.entities.map((e) => e.id).sort(),
    componentCounts,
    timezones: feed.split.timezones.length,
    skippedLines: feed.split.skippedLines,
  };
}

async function goldenEntityIds(name: string): Promise<string[]> {
  const golden = JSON.parse(await readFile(new URL(`${name}.golden.json`, feedsDir), 'utf8')) as { entityIds: string[] };
  return golden.entityIds;
}

const now = Date.parse('2026-01-01T00:00:00Z');

const applySnapshot = (history: FeedHistory | undefined, text: string, at: number) =>
  applyAnalysis(history, packCalendar(Buffer.from(text)), at);

function serializeFeed(feed: ParsedFeed): string {
  return serializeCalendar({ ...feed.split, components: feed.entities.flatMap((e) => e.components) });
}

test('there is one fixture per quirk', () => {
  assert.ok(names.length >= 23, `only ${names.length} fixtures`);
});

for (const name of names) {
  test(`${name}: matches its golden summary`, async () => {
    const actual = summary(await readFixture(name));
    const goldenUrl = new URL(`${name}.golden.json`, feedsDir);
    if (process.env.UPDATE_GOLDEN === '1') {
      await writeFile(goldenUrl, `${JSON.stringify(actual, null, 2)}\n`);
    }
    const golden: unknown = JSON.parse(await readFile(goldenUrl, 'utf8'));
    assert.deepEqual(actual, golden);
  });

  test(`${name}: a serialize round trip keeps every entity id and hash`, async () => {
    const feed = await readFixture(name);
    const again = parseFeed(Buffer.from(serializeFeed(feed), 'utf8'));
    assert.equal(again.split.complete, true);
    assert.equal(again.split.skippedLines, 0);
    assert.deepEqual(
      again.entities.map((e) => [e.id, entityHash(e)]),
      feed.entities.map((e) => [e.id, entityHash(e)]),
    );
  });

  test(`${name}: ical.js parses our full calendar and sees every component`, async () => {
    const feed = await readFixture(name);
    const counts = icalJsCounts(serializeFeed(feed));
    assert.deepEqual(counts, {
      timezones: feed.split.timezones.length,
      components: feed.entities.reduce((n, e) => n + e.components.length, 0),
    });
  });

  test(`${name}: ical.js parses a delta with a tombstone`, async (t) => {
    const feed = await readFixture(name);
    const [removed, ...kept] = feed.entities;
    if (!removed) return t.skip('no entity');
    const components = [...kept.flatMap((e) => e.components), tombstone(removed, '20260101T000000Z')];
    const counts = icalJsCounts(serializeCalendar({ ...feed.split, components }));
    assert.equal(counts.components, components.length);
  });
}

for (const name of names) {
  test(`${name}: a snapshot's full body keeps the golden entity ids and ical.js sees every component`, async () => {
    const feed = await readFixture(name);
    const { history } = applySnapshot(undefined, feed.decoded.text, now);
    assert.deepEqual([...history.entities.keys()].sort(), await goldenEntityIds(name));
    const body = calendarText(history, currentTexts(history));
    const components = feed.entities.reduce((n, e) => n + e.components.length, 0);
    assert.deepEqual(icalJsCounts(body), { timezones: feed.split.timezones.length, components });
  });

  test(`${name}: a delta after removing the first entity carries a tombstone ical.js reads`, async (t) => {
    const feed = await readFixture(name);
    const [removed] = feed.entities;
    if (!removed) return t.skip('no entity');
    const first = applySnapshot(undefined, feed.decoded.text, now).history;
    // By entity id, not by component: a superseded duplicate would otherwise bring the entity back.
    const kept = feed.split.components.filter((c) => groupEntities([c])[0]?.id !== removed.id);
    const text = serializeCalendar({ ...feed.split, components: kept });
    const { history, removed: removedIds } = applySnapshot(first, text, now + 60_000);
    assert.deepEqual(removedIds, [removed.id]);

    const changes = changesSince(history, { version: 1 });
    assert.equal(changes.tombstones.length, 1);
    const body = calendarText(history, [...changes.entities, ...changes.tombstones], changes.timezones);
    assert.equal(icalJsCounts(body).components, changes.entities.length + changes.tombstones.length);
    // SPEC "Deltas are valid iCalendar": the tombstone names no TZID the body does not define; the live
    // entities only those the upstream itself left undefined (a feed we pass on, not one we assemble).
    const upstreamOwn = new Set(unresolvedTzids(calendarText(first, currentTexts(first))).map((p) => p.tzid));
    for (const problem of unresolvedTzids(body)) {
      assert.ok(!problem.deleted && upstreamOwn.has(problem.tzid), `${problem.property} names ${problem.tzid}`);
    }

    const root = new ICAL.Component(ICAL.parse(body));
    const deleted = root.getAllSubcomponents().filter((c) => c.getFirstPropertyValue('status') === 'DELETED');
    assert.equal(deleted.length, 1);
    const stone = deleted[0]!;
    assert.equal(stone.getFirstPropertyValue('uid'), removed.uid ?? removed.id);
    assert.equal(stone.getFirstPropertyValue('dtstamp')?.toString(), '2026-01-01T00:01:00Z');
    const master = removed.components[0];
    assert.equal(stone.hasProperty('dtstart'), master !== undefined && propertyLine(master, 'DTSTART') !== undefined);
  });
}
