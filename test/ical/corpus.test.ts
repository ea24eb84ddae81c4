// Reads every real export in ../shared/corpus in place (never copied into the project): nothing
// throws and no top-level component is lost. Skips when the corpus is not next to the project.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeFeed } from '../../src/ical/decode.ts';
import { entityHash } from '../../src/ical/normalize.ts';
import { serializeCalendar } from '../../src/ical/serialize.ts';
import { propertyValue } from '../../src/ical/split.ts';
import { assertDirectMatchesNodeIcal, icalJsCounts, parseFeed } from './feeds.ts';

const corpusDir = fileURLToPath(new URL('../../../shared/corpus/', import.meta.url));
const files = existsSync(corpusDir)
  ? readdirSync(corpusDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ics')).sort()
  : [];

// Independent of split.ts: no unfolding, no stack; just BEGIN lines of entity types inside the VCALENDAR.
function naiveTopLevelCount(text: string): number {
  let inside = false;
  let count = 0;
  for (const line of text.split(/\r\n|\n|\r/)) {
    if (/^BEGIN:VCALENDAR\s*$/i.test(line)) inside = true;
    else if (/^END:VCALENDAR\s*$/i.test(line) && inside) break;
    else if (inside && /^BEGIN:(VEVENT|VTODO|VJOURNAL|VFREEBUSY)\s*$/i.test(line)) count += 1;
  }
  return count;
}

test('the corpus is readable when present', { skip: files.length === 0 && `no corpus at ${corpusDir}` }, () => {
  assert.ok(files.length >= 30);
});

for (const file of files) {
  test(`corpus ${relative('.', file)}: splits without loss and round-trips`, async () => {
    const body = await readFile(join(corpusDir, file));
    const feed = parseFeed(body);
    assert.equal(feed.split.components.length, naiveTopLevelCount(decodeFeed(body).text));

    // Only same-type duplicates of one UID and one instance may be dropped (highest SEQUENCE wins).
    const instances = new Set(feed.split.components.map((c) => [
      c.type, propertyValue(c, 'UID') ?? JSON.stringify(c), (propertyValue(c, 'RECURRENCE-ID') ?? '').slice(0, 8),
    ].join('|')));
    const kept = feed.entities.reduce((n, e) => n + e.components.length, 0);
    assert.ok(kept >= instances.size && kept <= feed.split.components.length, `kept ${kept} of ${feed.split.components.length}`);

    const out = serializeCalendar({ ...feed.split, components: feed.entities.flatMap((e) => e.components) });
    const again = parseFeed(Buffer.from(out, 'utf8'));
    assert.deepEqual(again.entities.map((e) => [e.id, entityHash(e)]), feed.entities.map((e) => [e.id, entityHash(e)]));
    assert.deepEqual(icalJsCounts(out), { timezones: feed.split.timezones.length, components: kept });

    // Plain events are read without node-ical: the spans must be exactly node-ical's, around today too.
    for (const from of ['2015-01-01', '2026-08-22', new Date().toISOString().slice(0, 10)]) {
      const window = { from: new Date(`${from}T00:00:00Z`), expandUntil: new Date(Date.parse(`${from}T00:00:00Z`) + 730 * 864e5) };
      await assertDirectMatchesNodeIcal(feed.decoded.text, window, `${file} from ${from}`);
    }
  });
}

test('corpus Booking.com t0/t1 pair (only DTSTAMP differs) hashes the same', { skip: files.length === 0 }, async () => {
  const read = async (stamp: string) => parseFeed(await readFile(join(corpusDir, `str-booking/booking-com_dtstamp-churn_${stamp}.ics`)));
  const t0 = await read('t0_2026-08-22T2012Z');
  const t1 = await read('t1_2026-08-22T2112Z');
  assert.ok(t0.entities.length > 0);
  assert.deepEqual(t1.entities.map((e) => [e.id, entityHash(e)]), t0.entities.map((e) => [e.id, entityHash(e)]));
});
