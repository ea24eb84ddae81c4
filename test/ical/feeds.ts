// Shared by the src/ical tests: reads a fixture feed through decode → split → group, and counts
// what ical.js (an independent parser) sees in a body we serialize.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import ICAL from 'ical.js';
import { decodeFeed, type DecodedFeed } from '../../src/ical/decode.ts';
import { type Entity, groupEntities } from '../../src/ical/entities.ts';
import { type EventSpan, parseEventSpans, type ParseEventSpansOptions } from '../../src/ical/parse.ts';
import { splitCalendar, type SplitCalendar } from '../../src/ical/split.ts';

/** The directory of the fixture feeds. */
export const feedsDir = new URL('../fixtures/feeds/', import.meta.url);

/** A feed read the way the sidecar reads one. */
export type ParsedFeed = { decoded: DecodedFeed; split: SplitCalendar; entities: Entity[] };

/** Decodes, splits and groups a body. */
export function parseFeed(body: Buffer): ParsedFeed {
  const decoded = decodeFeed(body);
  const split = splitCalendar(decoded.text);
  return { decoded, split, entities: groupEntities(split.components) };
}

/** Reads `test/fixtures/feeds/<name>.ics`. */
export async function readFixture(name: string): Promise<ParsedFeed> {
  return parseFeed(await readFile(new URL(`${name}.ics`, feedsDir)));
}

/** How many VTIMEZONE and other top-level components ical.js finds in `text`; throws when it cannot parse. */
export function icalJsCounts(text: string): { timezones: number; components: number } {
  const root = new ICAL.Component(ICAL.parse(text));
  const subs = root.getAllSubcomponents();
  const timezones = subs.filter((c) => c.name === 'vtimezone').length;
  return { timezones, components: subs.length - timezones };
}

/** Spans in a canonical order (ties in start and end keep file order, which differs between the two paths). */
const canonical = (spans: EventSpan[]) => spans.map((s) => JSON.stringify(s)).sort();

/** Asserts that reading plain events directly gives exactly what node-ical gives for `text`. */
export async function assertDirectMatchesNodeIcal(text: string, window: ParseEventSpansOptions, label: string) {
  const direct = await parseEventSpans(text, window);
  const viaNodeIcal = await parseEventSpans(text, { ...window, direct: false });
  assert.deepEqual(canonical(direct.spans), canonical(viaNodeIcal.spans), label);
  assert.equal(direct.unreadable, viaNodeIcal.unreadable, label);
  assert.equal(direct.capped, viaNodeIcal.capped, label);
}
