// What the sidecar needs of one feed body, computed off the request path (work/feed-worker.ts runs it):
// the frame, every entity as compact text with its content hashes and tombstone stub, the snapshot's
// content tag and, when asked, the listing's busy nights. Components live only while their block is
// read: a feed is never held as parsed objects, so a 12 MB feed costs a few times its size, not 70×.
import { createHash } from 'node:crypto';
import { type BusyNightsOptions, edgeRunEvents, nightsOfSpans, nightWindow, withoutNodeIcalWarnings } from '../push/availability.ts';
import { decodeFeed } from './decode.ts';
import { type GroupMember, groupMembers, isDateLine, recurrenceKeys } from './entities.ts';
import { combineHashes, componentHash, componentHashes } from './normalize.ts';
import { directSpan, type EventSpan, parseEventSpans, recurrenceBudget } from './parse.ts';
import { type BlockMemo, scanReusing } from './reuse.ts';
import { assembleCalendar, foldLine, frameProperties, serializeComponent } from './serialize.ts';
import { type Component, type ContentLine, contentLineText, propertyLine, propertyValue, scanCalendar } from './split.ts';

/** One top-level component as analysis keeps it: grouping facts, hashes and its canonical text. */
export class ComponentSummary implements GroupMember {
  readonly type: string;
  readonly uid: string | undefined;
  readonly rid: { date: string; full: string } | undefined;
  readonly dateStart: boolean;
  readonly sequence: number;
  /** componentHash: DTSTAMP, property order and folding do not count. */
  readonly contentHash: string;
  /** The same without UID: equal for an event re-sent under a new UID. */
  readonly uidlessHash: string;
  /** Folded CRLF lines, BEGIN to END: what the sidecar serves for it. */
  readonly text: string;
  /** The folded DTSTART line with its CRLF, for the tombstone (draft -13: it carries DTSTART). */
  readonly dtstart: string;
  /** A plain VEVENT's span read without node-ical; null when it needs node-ical; undefined for others. */
  readonly span: EventSpan | null | undefined;

  constructor(component: Component) {
    const ridLine = propertyLine(component, 'RECURRENCE-ID');
    const dtstart = propertyLine(component, 'DTSTART');
    this.type = component.type;
    this.uid = propertyValue(component, 'UID')?.trim() || undefined;
    this.rid = ridLine ? recurrenceKeys(ridLine) : undefined;
    this.dateStart = isDateLine(dtstart);
    this.sequence = Number.parseInt(propertyValue(component, 'SEQUENCE') ?? '', 10) || 0;
    const hashes = componentHashes(component);
    this.contentHash = hashes.hash;
    this.uidlessHash = hashes.uidless;
    this.text = serializeComponent(component);
    this.dtstart = dtstart ? `${foldLine(contentLineText(dtstart))}\r\n` : '';
    this.span = component.type === 'VEVENT' ? (directSpan(component, this.uid) ?? null) : undefined;
  }

  hash(): string {
    return this.contentHash;
  }

  // The entity this component is when it is its entity's only member, made once: a summary is reused
  // read after read (reuse.ts), and so is what its entity's hashes, stub and tag line cost.
  #alone: { entity: EntitySummary; line: string } | undefined;

  /** The id of the entity this component belongs to (groupMembers: the UID, or a content identity). */
  get id(): string {
    return this.uid ?? `content:${this.contentHash}`;
  }

  /** The entity of this component alone, and its content tag line. */
  alone(): { entity: EntitySummary; line: string } {
    if (!this.#alone) {
      const entity = entityOf(this.id, [this]);
      this.#alone = { entity, line: tagLine(entity) };
    }
    return this.#alone;
  }

  /** The entity of this component alone when made already (alone() makes it). */
  madeAlone(): EntitySummary | undefined {
    return this.#alone?.entity;
  }

  /** About what this summary keeps in memory, in bytes. */
  get bytes(): number {
    return 2 * this.text.length + 400;
  }
}

/** One entity as analysis gives it. */
export type EntitySummary = {
  id: string;
  /** entityHash: what tells a changed entity from an unchanged one. */
  hash: string;
  /** entityContentHash: what tells a re-keyed entity (same content, new UID) from a new one. */
  content: string;
  /** The entity's components as folded CRLF text, master first. */
  text: string;
  /** `TYPE\n` then the folded UID and DTSTART lines of the master: what its tombstone is made of. */
  stub: string;
  members: ComponentSummary[];
  /** What packing keeps of the entity to pack it again (work/feed-tasks.ts); set on an entity of one
   * member, which is its component's read after read. */
  packed: object | undefined;
};

/** The frame of a feed (SPEC "entity": VCALENDAR properties and VTIMEZONEs are the frame). */
export type FrameSummary = {
  /** The VCALENDAR property lines, folded, each with CRLF (VERSION and PRODID added when missing). */
  properties: string;
  /** Each VTIMEZONE as [TZID, folded CRLF text]. */
  timezones: [tzid: string, text: string][];
  /** The frame's content hash. */
  hash: string;
};

/** What analyzeCalendar found. */
export type CalendarAnalysis = {
  complete: boolean;
  encoding: 'utf-8' | 'latin1';
  skippedLines: number;
  frame: FrameSummary;
  /** Entities in file order of first appearance. */
  entities: EntitySummary[];
  /** The snapshot's content tag: equal for equal normalized content, the semantic ETag's value. */
  tag: string;
  /** The blocks of this read, for the next read of the same feed to reuse. */
  memo: BlockMemo<ComponentSummary> | undefined;
};

// What a component becomes: one function for every read, so the scan that calls it keeps one call target (a
// closure made per read made its optimized code bail out on every read and be compiled again, ~80 ms).
const summarize = (component: Component) => new ComponentSummary(component);

/** Decodes, splits and summarizes a feed body; never throws on its content. With `keepMemo: false`
 * (a feed too big to keep blocks of) nothing is kept for a next read, so the split streams. */
export function analyzeCalendar(body: Uint8Array, memo?: BlockMemo<ComponentSummary>,
  options: { keepMemo?: boolean } = {}): CalendarAnalysis {
  const decoded = decodeFeed(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  let properties: ContentLine[];
  let timezones: Component[];
  let summaries: ComponentSummary[];
  let skippedLines: number;
  let complete = true;
  let nextMemo: BlockMemo<ComponentSummary> | undefined;
  let alone = false;
  const reused = options.keepMemo === false && memo === undefined ? undefined
    : scanReusing(decoded.text, memo, summarize);
  if (reused) {
    ({ properties, timezones, skippedLines } = reused);
    summaries = reused.values;
    alone = memo?.distinct === true && isEachAlone(summaries, reused.unsure, reused.left);
  } else {
    summaries = [];
    const frame = scanCalendar(decoded.text, (component) => summaries.push(summarize(component)));
    ({ properties, timezones, skippedLines, complete } = frame);
  }
  const frameHash = componentHash({ type: 'VCALENDAR', lines: properties, children: timezones });
  const entities: EntitySummary[] = [];
  const lines: string[] = [];
  if (alone) {
    // Each component is an entity of its own, as groupMembers would find: no grouping map is made.
    for (const summary of summaries) {
      const { entity, line } = summary.alone();
      entities.push(entity);
      lines.push(line);
    }
  } else {
    for (const { id, members } of groupMembers(summaries)) {
      const [master] = members as [ComponentSummary, ...ComponentSummary[]];
      if (members.length === 1) {
        const { entity, line } = master.alone();
        entities.push(entity);
        lines.push(line);
      } else {
        const entity = entityOf(id, members);
        entities.push(entity);
        lines.push(tagLine(entity));
      }
    }
  }
  if (reused) nextMemo = { ...reused.memo, distinct: entities.length === summaries.length };
  return {
    complete,
    encoding: decoded.encoding,
    skippedLines,
    frame: {
      properties: frameProperties(properties),
      timezones: timezones.map((tz) => [propertyValue(tz, 'TZID')?.trim() ?? '', serializeComponent(tz)]),
      hash: frameHash,
    },
    entities,
    tag: tagOfLines(frameHash, lines),
    memo: nextMemo,
  };
}

// True when no two components share an id, given that all but the `unsure` ones are distinct components
// of the last read (whose ids were pairwise distinct): only the unsure ones' ids can collide. `left` are the
// last read's components this read did not take: when each unsure one has the id of a different one of those
// (a booking changed in place), it has an id none of the taken ones has, and nothing else is looked at.
function isEachAlone(summaries: readonly ComponentSummary[], unsure: readonly number[],
  left: readonly ComponentSummary[]): boolean {
  if (unsure.length === 0) return true;
  if (unsure.length <= left.length && left.length <= 64) {
    const leftIds = new Set(left.map((summary) => summary.id));
    const seen = new Set<string>();
    for (const i of unsure) {
      const id = (summaries[i] as ComponentSummary).id;
      if (!leftIds.has(id) || seen.has(id)) break;
      seen.add(id);
    }
    if (seen.size === unsure.length) return true;
  }
  // Past this many, a set of them costs about what grouping does.
  if (unsure.length > summaries.length / 8) return false;
  const ids = new Set<string>();
  for (const i of unsure) ids.add((summaries[i] as ComponentSummary).id);
  if (ids.size < unsure.length) return false;
  let next = 0;
  for (let i = 0; i < summaries.length; i += 1) {
    if (i === unsure[next]) {
      next += 1;
      continue;
    }
    // Its entity was made last read (it was alone then): its id is that entity's, hashed once already.
    if (ids.has((summaries[i] as ComponentSummary).alone().entity.id)) return false;
  }
  return true;
}

// One entity of these members (master first, as groupMembers orders them).
function entityOf(id: string, members: ComponentSummary[]): EntitySummary {
  const [master] = members as [ComponentSummary, ...ComponentSummary[]];
  const single = members.length === 1;
  return {
    id,
    hash: single ? master.contentHash : combineHashes(members.map((m) => m.contentHash)),
    content: combineHashes(members.map((m) => m.uidlessHash)),
    text: single ? master.text : members.map((m) => m.text).join(''),
    stub: `${master.type}\n${foldLine(`UID:${master.uid ?? id}`)}\r\n${master.dtstart}`,
    members,
    packed: undefined,
  };
}

// An entity's line of the content tag, line feed first.
function tagLine(entity: { id: string; hash: string }): string {
  return `\n${entity.id} ${entity.hash}`;
}

/** The snapshot's identity: the frame's hash and every entity's, in id order. Equal content gives the
 * same tag in any process, which is what makes it usable as an ETag. */
export function contentTag(frameHash: string, entities: readonly { id: string; hash: string }[]): string {
  return tagOfLines(frameHash, entities.map(tagLine));
}

// The tag's text is hashed from a scratch buffer, a piece at a time: joined, it was a string the size of
// every id and hash together, made on every read.
const scratch = Buffer.allocUnsafeSlow(64 * 1024);

// sha256 of `${frameHash}\n${lines.join('\n')}` with the lines sorted, cut to 27 characters. Each line
// comes with its line feed in front (tagLine): sorted the same, and written out as it is.
function tagOfLines(frameHash: string, lines: string[]): string {
  lines.sort();
  const hash = createHash('sha256');
  let at = scratch.write(lines.length === 0 ? `${frameHash}\n` : frameHash, 0, 'utf8');
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i] as string;
    // Three bytes a UTF-16 unit at most, so a line is never cut inside a character.
    if (3 * line.length > scratch.length - at) {
      hash.update(scratch.subarray(0, at));
      at = 0;
    }
    if (3 * line.length > scratch.length) hash.update(line, 'utf8');
    else at += scratch.write(line, at, 'utf8');
  }
  hash.update(scratch.subarray(0, at));
  return hash.digest('base64url').slice(0, 27);
}

/** The busy nights of an analysed feed, and how many events could not be read or ran out of budget. */
export type NightsResult = { busy: string[]; unreadable: number; busySafe: number; edgeEvents: number };

/** Busy nights from `options.today` on: plain events as read, the rest through node-ical, one recurrence
 * budget for the whole feed (parse.ts). */
export async function calendarNights(analysis: CalendarAnalysis, options: BusyNightsOptions): Promise<NightsResult> {
  const spans: EventSpan[] = [];
  const indirect: string[] = [];
  for (const entity of analysis.entities) {
    const [only] = entity.members;
    if (only && entity.members.length === 1) {
      if (only.span) spans.push(only.span);
      else if (only.span === null) indirect.push(only.text);
    } else if (entity.members.some((m) => m.type === 'VEVENT')) {
      indirect.push(entity.text);
    }
  }
  let unreadable = 0;
  let busySafe = 0;
  if (indirect.length > 0) {
    const { fromMs, untilMs } = nightWindow(options);
    const timezones = analysis.frame.timezones.map(([, tz]) => tz);
    const text = assembleCalendar(analysis.frame.properties, [...timezones, ...indirect]);
    const read = await withoutNodeIcalWarnings(() => parseEventSpans(text, {
      from: new Date(fromMs), expandUntil: new Date(untilMs), budget: recurrenceBudget(),
    }));
    spans.push(...read.spans);
    unreadable = read.unreadable;
    busySafe = read.capped;
  }
  const busy = [...nightsOfSpans(spans, options)].sort();
  return { busy, unreadable, busySafe, edgeEvents: edgeRunEvents(spans, busy, options) };
}
