// Shared by the src/ical tests: reads a fixture feed through decode → split → group, and counts
// what ical.js (an independent parser) sees in a body we serialize.
import { readFile } from 'node:fs/promises';
import ICAL from 'ical.js';
import { decodeFeed, type DecodedFeed } from '../../src/ical/decode.ts';
import { type Entity, groupEntities } from '../../src/ical/entities.ts';
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
