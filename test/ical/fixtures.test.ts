// Every fixture feed against its golden summary, a serialize round trip, and ical.js reading our output.
// Goldens change only by an explicit `UPDATE_GOLDEN=1` run (house style).
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { entityHash } from '../../src/ical/normalize.ts';
import { serializeCalendar, tombstone } from '../../src/ical/serialize.ts';
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
