// Re-reading a feed that changed a little: split it reusing the components parsed from the last
// read wherever a component's text is the same apart from DTSTAMP lines, so one booking on a
// 10,000-event feed parses one event, not ten thousand. Only the plain layout takes this path
// (BEGIN/END in upper case at line starts, LF or CRLF line ends); anything else is handed to
// splitCalendar whole, so the result is always exactly what splitCalendar gives.
import { type Component, type ContentLine, entityTypes, type SplitCalendar, splitCalendar } from './split.ts';

/** One block of a read: where its text lies without DTSTAMP lines (`segments`, start and end pairs into
 * the read's text, from `segment` on), what was made of it (a VTIMEZONE stays a component) and the lines its
 * split skipped. */
type MemoEntry<T> = {
  segment: number;
  segments: number;
  length: number;
  value: T | undefined;
  timezone: Component | undefined;
  skipped: number;
};

/** The blocks of one read in file order, located in that read's text (held so the next read compares
 * against it in place: no per-block key string is made or hashed). `distinct`, when the caller set it:
 * no two of the read's values share an identity (analyze.ts: each component was an entity of its own). */
export type BlockMemo<T> = { text: string; entries: MemoEntry<T>[]; segments: number[]; distinct?: boolean };

/** The blocks of one read as components (what splitReusing keeps). */
export type ComponentMemo = BlockMemo<Component>;

/** What splitReusing gives: the split calendar, the memo for the next read, and how much it reused. */
export type ReusedSplit = { calendar: SplitCalendar; memo: ComponentMemo; reused: number; parsed: number };

/** What scanReusing gives: the frame, what `make` made of each entity component, the memo, and counts.
 * `unsure` lists the indexes into `values` of those not taken from a block of the last read once and only
 * once (parsed now, or a block that came twice): the others are distinct values of the last read. */
export type ReusedScan<T> = {
  properties: ContentLine[];
  timezones: Component[];
  values: T[];
  unsure: number[];
  skippedLines: number;
  memo: BlockMemo<T>;
  reused: number;
  parsed: number;
};

const blockTypes: ReadonlySet<string> = new Set([...entityTypes, 'VTIMEZONE']);
// Each block type's END line, made once rather than per block.
const endMarkers: ReadonlyMap<string, string> = new Map([...blockTypes].map((type) => [type, `\nEND:${type}`]));

/** Splits `text` like splitCalendar, reusing `memo`'s components for unchanged blocks. */
export function splitReusing(text: string, memo: ComponentMemo | undefined): ReusedSplit {
  const scanned = scanReusing(text, memo, (component) => component);
  if (!scanned) return { calendar: splitCalendar(text), memo: { text: '', entries: [], segments: [] }, reused: 0, parsed: 0 };
  const { properties, timezones, values, skippedLines } = scanned;
  return {
    calendar: { complete: true, properties, timezones, components: values, skippedLines },
    memo: scanned.memo,
    reused: scanned.reused,
    parsed: scanned.parsed,
  };
}

/**
 * The plain-layout scan: each entity block's `make(component)` is reused from `memo` when the block's
 * text (DTSTAMP aside) is the same, and made from a fresh split otherwise. Undefined when the text
 * needs splitCalendar's tolerance (the caller then splits it whole): the result always equals what
 * splitCalendar gives, with `make` applied to each component.
 */
export function scanReusing<T>(text: string, memo: BlockMemo<T> | undefined, make: (component: Component) => T):
  ReusedScan<T> | undefined {
  return scan(text, memo, make);
}

// A block is looked for among the next `nearby` blocks of the last read after the last one found;
// after `missesBeforeIndex` blocks found nowhere near, the feed was likely reordered and the last
// read's blocks are indexed by UID. An index key names at most `maxCandidates` blocks compared in full.
const nearby = 8;
const missesBeforeIndex = 16;
const maxCandidates = 8;

/** Where one block's text lies without its DTSTAMP lines: `count` start/end pairs of `segments` from
 * `first`, `length` characters in all. */
type Located = { first: number; count: number; length: number };

/**
 * Finds a block's entry among the last read's (its index, -1 for none). Blocks are compared where they
 * lie, in this read's text and the last read's: a key string per block made V8 copy each block's text and
 * hash it on every read (most of the split of a re-read 10,000-event feed). Most blocks come where the last
 * read had them, one booking changed or added aside, so the blocks after the last one found are compared
 * first. A block missed before the index exists is parsed again: the same component, a little more work.
 */
type Finder = (block: Located) => number;
type UidIndex = { first: Map<string, number>; next: Int32Array };

function createFinder<T>(memo: BlockMemo<T> | undefined, text: string, segments: readonly number[]): Finder {
  const entries = memo?.entries ?? [];
  const old = memo?.text ?? '';
  const oldSegments = memo?.segments ?? [];
  let at = 0;
  let misses = 0;
  let index: UidIndex | undefined;
  const same = (block: Located, entry: MemoEntry<T>) => entry.length === block.length
    && sameText(text, segments, block.first, block.count, old, oldSegments, entry.segment, entry.segments);
  return (block) => {
    // Once the feed counts as reordered, only the next block in the last read's order is tried before the index.
    const near = index ? 1 : nearby;
    for (let i = at; i < at + near && i < entries.length; i += 1) {
      const entry = entries[i] as MemoEntry<T>;
      if (same(block, entry)) {
        at = i + 1;
        return i;
      }
    }
    if (!index) {
      misses += 1;
      if (misses <= missesBeforeIndex) return -1;
      index = indexByUid(old, oldSegments, entries);
    }
    let candidate = index.first.get(uidOf(text, segments, block.first, block.count)) ?? -1;
    for (let tried = 0; candidate !== -1 && tried < maxCandidates; tried += 1) {
      const entry = entries[candidate] as MemoEntry<T>;
      if (same(block, entry)) {
        at = candidate + 1;
        return candidate;
      }
      candidate = index.next[candidate] ?? -1;
    }
    return -1;
  };
}

// The last read's blocks by the UID line they carry ('' without one), each key chaining its blocks in order.
function indexByUid<T>(text: string, segments: readonly number[], entries: readonly MemoEntry<T>[]): UidIndex {
  const first = new Map<string, number>();
  const next = new Int32Array(entries.length);
  // From the last block back: each key's chain then runs in file order.
  for (let i = entries.length - 1; i >= 0; i -= 1) {
    const entry = entries[i] as MemoEntry<T>;
    const uid = uidOf(text, segments, entry.segment, entry.segments);
    next[i] = first.get(uid) ?? -1;
    first.set(uid, i);
  }
  return { first, next };
}

// The raw value of a block's first `UID:` line, unfolded or not: only a hint, blocks are compared in full.
function uidOf(text: string, segments: readonly number[], first: number, count: number): string {
  const start = segments[2 * first] as number;
  const end = segments[2 * (first + count) - 1] as number;
  const at = text.indexOf('\nUID:', start);
  if (at === -1 || at >= end) return '';
  const eol = text.indexOf('\n', at + 5);
  const stop = eol === -1 || eol > end ? end : eol;
  return text.slice(at + 5, text[stop - 1] === '\r' ? stop - 1 : stop);
}

// True when two blocks' segments hold the same characters (their lengths are known equal).
function sameText(a: string, aSegments: readonly number[], aFirst: number, aCount: number, b: string,
  bSegments: readonly number[], bFirst: number, bCount: number): boolean {
  let i = 2 * aFirst;
  let j = 2 * bFirst;
  const aStop = 2 * (aFirst + aCount);
  const bStop = 2 * (bFirst + bCount);
  let ap = aSegments[i] as number;
  let bp = bSegments[j] as number;
  while (i < aStop && j < bStop) {
    const aEnd = aSegments[i + 1] as number;
    const bEnd = bSegments[j + 1] as number;
    const n = Math.min(aEnd - ap, bEnd - bp);
    // Two slices compared: V8 compares them in place (startsWith was four times slower).
    if (a.slice(ap, ap + n) !== b.slice(bp, bp + n)) return false;
    ap += n;
    bp += n;
    if (ap === aEnd) {
      i += 2;
      ap = aSegments[i] as number;
    }
    if (bp === bEnd) {
      j += 2;
      bp = bSegments[j] as number;
    }
  }
  return i >= aStop && j >= bStop;
}

function scan<T>(text: string, memo: BlockMemo<T> | undefined, make: (component: Component) => T):
  ReusedScan<T> | undefined {
  const start = text.indexOf('BEGIN:VCALENDAR');
  if (start === -1 || (start > 0 && text[start - 1] !== '\n')) return undefined;
  const firstEnd = text.indexOf('\n', start);
  if (firstEnd === -1 || !/^BEGIN:VCALENDAR\r?$/.test(text.slice(start, firstEnd))) return undefined;

  const segments: number[] = [];
  // Where the current block lies (locate fills it in): one object for the whole scan, not one per block.
  const located: Located = { first: 0, count: 0, length: 0 };
  const find = createFinder(memo, text, segments);
  // Which of the last read's blocks this read took already: a second taker is not a distinct value.
  const taken = new Uint8Array(memo?.entries.length ?? 0);
  const unsure: number[] = [];
  // Blocks this read parsed, for a block that comes twice: the last read did not have it either.
  const fresh = new Map<string, MemoEntry<T>>();
  const next: MemoEntry<T>[] = [];
  const values: T[] = [];
  const timezones: Component[] = [];
  const frameLines: string[] = [];
  let skippedLines = 0;
  let reused = 0;
  let parsed = 0;
  let complete = false;
  let afterBlock = false;
  // The next DTSTAMP line start at or after `pos`, found once for all the blocks before it.
  let stampAt = -2;
  let pos = firstEnd + 1;
  while (pos < text.length) {
    const eol = text.indexOf('\n', pos);
    const lineEnd = eol === -1 ? text.length : eol;
    const contentEnd = text[lineEnd - 1] === '\r' ? lineEnd - 1 : lineEnd;
    // A BEGIN line is read without slicing the line: this runs once per block.
    if (text.startsWith('BEGIN:', pos)) {
      // Any other type (a lone CR in it included: it ends lines only for splitCalendar) needs splitCalendar.
      const type = typeAt(text, pos + 6, contentEnd);
      if (type === undefined) return undefined;
      const end = blockEnd(text, pos, lineEnd, type);
      if (end === -1) return undefined;
      if (stampAt !== -1 && stampAt < pos) stampAt = text.indexOf('\nDTSTAMP', pos);
      stampAt = locate(text, pos, end, stampAt, segments, located);
      const found = find(located);
      const known = found !== -1 ? memo?.entries[found]
        : fresh.size > 0 ? fresh.get(stampless(text, segments, located)) : undefined;
      let entry: MemoEntry<T>;
      const { first, count, length } = located;
      if (found === -1 || taken[found] === 1) {
        if (type !== 'VTIMEZONE') unsure.push(values.length);
      } else {
        taken[found] = 1;
      }
      if (known) {
        // A new entry located in this read's text: the last read's text is then let go.
        entry = { segment: first, segments: count, length, value: known.value, timezone: known.timezone,
          skipped: known.skipped };
        reused += 1;
      } else {
        const split = splitCalendar(`BEGIN:VCALENDAR\n${text.slice(pos, end)}\nEND:VCALENDAR\n`);
        const component = type === 'VTIMEZONE' ? split.timezones[0] : split.components[0];
        if (!component || split.components.length + split.timezones.length !== 1) return undefined;
        entry = type === 'VTIMEZONE'
          ? { segment: first, segments: count, length, value: undefined, timezone: component,
              skipped: split.skippedLines }
          : { segment: first, segments: count, length, value: make(component), timezone: undefined,
              skipped: split.skippedLines };
        fresh.set(stampless(text, segments, located), entry);
        parsed += 1;
      }
      next.push(entry);
      if (entry.timezone) timezones.push(entry.timezone);
      else values.push(entry.value as T);
      skippedLines += entry.skipped;
      const afterEnd = text.indexOf('\n', end);
      pos = afterEnd === -1 ? text.length : afterEnd + 1;
      afterBlock = true;
      continue;
    }
    const line = text.slice(pos, contentEnd);
    // A lone CR ends lines only for splitCalendar.
    if (line.includes('\r')) return undefined;
    const head = line.slice(0, 6).toUpperCase();
    if (line === 'END:VCALENDAR') {
      complete = true;
      break;
    }
    // Any other BEGIN or END (a stray one, lower case, VCALENDAR again) needs splitCalendar.
    if (head.startsWith('BEGIN:') || head.startsWith('END:')) return undefined;
    // A continuation right after a block would continue its END line.
    if (afterBlock && (line.startsWith(' ') || line.startsWith('\t'))) return undefined;
    afterBlock = false;
    frameLines.push(line);
    pos = lineEnd + 1;
  }
  if (!complete) return undefined;
  const frame = splitCalendar(`BEGIN:VCALENDAR\n${frameLines.map((l) => `${l}\n`).join('')}END:VCALENDAR\n`);
  if (frame.components.length + frame.timezones.length > 0) return undefined;
  return {
    properties: frame.properties,
    timezones,
    values,
    unsure,
    skippedLines: skippedLines + frame.skippedLines,
    memo: { text, entries: next, segments },
    reused,
    parsed,
  };
}

/**
 * Appends to `segments` the block [start, end) without its DTSTAMP content lines (and their folded
 * continuations): lines that start exactly `DTSTAMP:` or `DTSTAMP;`, and says where in `into`. `stampAt`
 * is the first `\nDTSTAMP` at or after `start` (-1: none); the one after the block is given back.
 */
function locate(text: string, start: number, end: number, stampAt: number, segments: number[],
  into: Located): number {
  const first = segments.length / 2;
  let length = 0;
  let from = start;
  let at = stampAt;
  while (at !== -1 && at < end) {
    const c = text[at + 8];
    if (c === ':' || c === ';') {
      if (at + 1 > from) {
        segments.push(from, at + 1);
        length += at + 1 - from;
      }
      let eol = text.indexOf('\n', at + 1);
      while (eol !== -1 && eol < end && (text[eol + 1] === ' ' || text[eol + 1] === '\t')) eol = text.indexOf('\n', eol + 1);
      from = eol === -1 || eol >= end ? end : eol + 1;
      at = eol === -1 ? -1 : text.indexOf('\nDTSTAMP', eol);
    } else {
      at = text.indexOf('\nDTSTAMP', at + 1);
    }
  }
  if (end > from) {
    segments.push(from, end);
    length += end - from;
  }
  into.first = first;
  into.count = segments.length / 2 - first;
  into.length = length;
  return at;
}

// A located block's text without DTSTAMP lines, as one string (only for blocks the last read lacked).
function stampless(text: string, segments: readonly number[], block: Located): string {
  let out = '';
  for (let i = block.first; i < block.first + block.count; i += 1) {
    out += text.slice(segments[2 * i] as number, segments[2 * i + 1] as number);
  }
  return out;
}

// The block type named on a BEGIN line from `from` to `to` (its CR aside), undefined for any other: read in
// place, no slice per block.
function typeAt(text: string, from: number, to: number): string | undefined {
  for (const type of blockTypes) if (type.length === to - from && text.startsWith(type, from)) return type;
  return undefined;
}

/** Where the block from a BEGIN line ends (after its END line's content); -1 when another top-level BEGIN
 * comes first. */
function blockEnd(text: string, pos: number, lineEnd: number, type: string): number {
  const marker = endMarkers.get(type) ?? `\nEND:${type}`;
  const end = text.indexOf(marker, lineEnd);
  if (end === -1) return -1;
  const after = end + marker.length;
  const c = text[after];
  if (c !== undefined && c !== '\r' && c !== '\n') return -1;
  // splitCalendar closes an unterminated entity at the next entity or VTIMEZONE: leave that to it.
  for (let at = text.indexOf('\nBEGIN:', lineEnd); at !== -1 && at < end; at = text.indexOf('\nBEGIN:', at + 1)) {
    const nestedEnd = text.indexOf('\n', at + 1);
    const nested = text.slice(at + 7, nestedEnd === -1 ? text.length : nestedEnd).replace(/\r$/, '');
    if (blockTypes.has(nested.toUpperCase()) || nested.toUpperCase() === 'VCALENDAR') return -1;
  }
  return after;
}
