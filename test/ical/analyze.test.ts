// The worker's analysis must say what the component path says: the same entities, ids and content
// hashes, whether blocks are reused from the last read or not, for every fixture and every real export;
// and the text it keeps must read back to the same entities.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { analyzeCalendar, calendarNights } from '../../src/ical/analyze.ts';
import { decodeFeed } from '../../src/ical/decode.ts';
import { groupEntities } from '../../src/ical/entities.ts';
import { entityContentHash, entityHash } from '../../src/ical/normalize.ts';
import { assembleCalendar } from '../../src/ical/serialize.ts';
import { splitCalendar } from '../../src/ical/split.ts';
import { busyNights } from '../../src/push/availability.ts';
import { feedsDir } from './feeds.ts';

const corpusDir = fileURLToPath(new URL('../../../shared/corpus/', import.meta.url));
const fixtures = readdirSync(feedsDir).filter((f) => f.endsWith('.ics')).map((f) => fileURLToPath(new URL(f, feedsDir)));
const corpus = existsSync(corpusDir)
  ? readdirSync(corpusDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ics')).map((f) => join(corpusDir, f))
  : [];

for (const file of [...fixtures, ...corpus].sort()) {
  const name = file.slice(file.lastIndexOf('/') + 1);
  test(`analyzeCalendar gives the component path's entities and hashes: ${name}`, async () => {
    const body = readFileSync(file);
    const split = splitCalendar(decodeFeed(body).text);
    const expected = groupEntities(split.components).map((e) => [e.id, entityHash(e), entityContentHash(e)]);
    const first = analyzeCalendar(body);
    assert.equal(first.complete, split.complete);
    assert.deepEqual(first.entities.map((e) => [e.id, e.hash, e.content]), expected);
    const again = analyzeCalendar(body, first.memo);
    assert.equal(again.tag, first.tag);
    assert.deepEqual(again.entities.map((e) => [e.id, e.hash]), first.entities.map((e) => [e.id, e.hash]));
    // What is kept and served reads back to the same entities.
    const served = assembleCalendar(first.frame.properties, [...first.frame.timezones.map(([, tz]) => tz),
      ...first.entities.map((e) => e.text)]);
    const reread = analyzeCalendar(Buffer.from(served));
    assert.deepEqual(reread.entities.map((e) => [e.id, e.hash]), first.entities.map((e) => [e.id, e.hash]));
    // And the worker's nights are busyNights' own.
    const today = '2026-01-01';
    const nights = await calendarNights(first, { today });
    assert.deepEqual(nights.busy, [...(await busyNights(decodeFeed(body).text, { today })).nights].sort());
  });
}
