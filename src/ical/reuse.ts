// Re-reading a feed that changed a little: split it reusing the components parsed from the last
// read wherever a component's text is the same apart from DTSTAMP lines, so one booking on a
// 10,000-event feed parses one event, not ten thousand. Only the plain layout takes this path
// (BEGIN/END in upper case at line starts, LF or CRLF line ends); anything else is handed to
// splitCalendar whole, so the result is always exactly what splitCalendar gives.
import { type Component, type ContentLine, entityTypes, type SplitCalendar, splitCalendar } from './split.ts';

/**
 * The blocks of one read in file order, located in that read's text (held so the next read compares
 * against it in place: no per-block key string is made or hashed). Kept as columns, not an object per
 * block: a 10,000-event feed's memo is a few arrays, which the collector does not walk object by object.
 * `distinct`, when the caller set it: no two of the read's values share an identity (analyze.ts: each
 * component was an entity of its own).
 */
export type BlockMemo<T> = {
  text: string;
  /** How many blocks. */
  count: number;
  /** `blockInts` per block: its first segment, how many it has, its length without DTSTAMP lines, the
   * lines its split skipped, and 1 for a VTIMEZONE (which stays a component). */
  blocks: Int32Array;
  /** What was made of each block: `make`'s value, or a VTIMEZONE's component. */
  made: (T | Component)[];
  /** Start and end pairs into `text`: where each block's text lies without its DTSTAMP lines. */
  segments: Int32Array;
  distinct?: boolean;
};

const blockInts = 5;

/** A memo of no blocks. */
function emptyMemo<T>(): BlockMemo<T> {
  return { text: '', count: 0, blocks: new Int32Array(0), made: [], segments: new Int32Array(0) };
}

/** How many bytes a memo's columns take (its text and what was made of its blocks aside). */
export function memoColumnBytes(memo: BlockMemo<unknown>): number {
  return memo.blocks.byteLength + memo.segments.byteLength + 8 * memo.made.length;
}

// A growable column of integers.
type Ints = { data: Int32Array; length: number };

function push(ints: Ints, value: number): void {
  if (ints.length === ints.data.length) {
    const grown = new Int32Array(2 * ints.data.length + 64);
    grown.set(ints.data);
    ints.data = grown;
  }
  ints.data[ints.length] = value;
  ints.length += 1;
}

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
  /** What the last read made of its entity blocks that this read did not take (a block changed or gone). */
  left: T[];
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
  if (!scanned) return { calendar: splitCalendar(text), memo: emptyMemo(), reused: 0, parsed: 0 };
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
type Finder = {
  /** The last read's block looked for: among those after the last one found, then by UID. */
  find(block: Located): number;
  /** The last read's block right after the last one found (-1: none): the first one `find` tries. */
  next(): number;
  /** Says `next()` was this read's block (matchBlock found it): the next search starts after it. */
  took(i: number): void;
};
/** The last read's blocks by a hash of their UID: `heads` gives a bucket's first block, `next` the next
 * block of the same bucket in file order, `hashes` each block's full hash (-1 ends a chain). */
type UidIndex = { heads: Int32Array; next: Int32Array; hashes: Int32Array };

function createFinder<T>(memo: BlockMemo<T> | undefined, text: string, segments: Ints): Finder {
  const { count, blocks, text: old, segments: oldSegments } = memo ?? emptyMemo<T>();
  let at = 0;
  let misses = 0;
  let index: UidIndex | undefined;
  const same = (block: Located, i: number) => blocks[blockInts * i + 2] === block.length
    && sameText(text, segments.data, block.first, block.count, old, oldSegments, blocks[blockInts * i] as number,
      blocks[blockInts * i + 1] as number);
  const find = (block: Located) => {
    // Once the feed counts as reordered, only the next block in the last read's order is tried before the index.
    const near = index ? 1 : nearby;
    for (let i = at; i < at + near && i < count; i += 1) {
      if (same(block, i)) {
        at = i + 1;
        return i;
      }
    }
    if (!index) {
      misses += 1;
      if (misses <= missesBeforeIndex) return -1;
      index = indexByUid(old, oldSegments, blocks, count);
    }
    const hash = uidHash(text, segments.data, block.first, block.count);
    let candidate = index.heads[hash & (index.heads.length - 1)] ?? -1;
    for (let tried = 0; candidate !== -1 && tried < maxCandidates; candidate = index.next[candidate] ?? -1) {
      // Another UID in the same bucket is no candidate.
      if (index.hashes[candidate] !== hash) continue;
      tried += 1;
      if (same(block, candidate)) {
        at = candidate + 1;
        return candidate;
      }
    }
    return -1;
  };
  return {
    find,
    next: () => (at < count ? at : -1),
    took: (i) => {
      at = i + 1;
    },
  };
}

// Where the line from `pos` ends: its line feed, or the end of the text.
function lineEndAt(text: string, pos: number): number {
  const eol = text.indexOf('\n', pos);
  return eol === -1 ? text.length : eol;
}

// True when a DTSTAMP content line starts at `at` (what locate leaves out).
function isStampLine(text: string, at: number): boolean {
  if (!text.startsWith('DTSTAMP', at)) return false;
  const c = text[at + 7];
  return c === ':' || c === ';';
}

/**
 * Where the block starting at `pos` ends when it is, DTSTAMP lines aside, the last read's block `i`; -1
 * when it is not. Most blocks of a re-read are the last read's next one: this reads the block once, along
 * the last read's segments, where finding its END line, its DTSTAMP lines and then comparing it took six
 * searches. The answer is what blockEnd, locate and `find` give: between the segments (whose texts are
 * compared) lie DTSTAMP lines in both reads, which hold no END line, so the first END line after the BEGIN
 * line is at the same place in both. Appends the block's segments and fills `into`, as locate does; on -1,
 * appends nothing.
 */
function matchBlock(text: string, pos: number, old: string, oldSegments: Int32Array, blocks: Int32Array, i: number,
  segments: Ints, into: Located): number {
  const oldFirst = blocks[blockInts * i] as number;
  const oldCount = blocks[blockInts * i + 1] as number;
  const mark = segments.length;
  let from = pos;
  let p = pos;
  for (let s = 0; s < oldCount; s += 1) {
    const start = oldSegments[2 * (oldFirst + s)] as number;
    const end = oldSegments[2 * (oldFirst + s) + 1] as number;
    if (s > 0) {
      // The last read left DTSTAMP lines out here (and had nothing else between its segments): so must this.
      if (!isStampLine(text, p)) {
        segments.length = mark;
        return -1;
      }
      push(segments, from);
      push(segments, p);
      do {
        let eol = text.indexOf('\n', p);
        while (eol !== -1 && (text[eol + 1] === ' ' || text[eol + 1] === '\t')) eol = text.indexOf('\n', eol + 1);
        if (eol === -1) {
          segments.length = mark;
          return -1;
        }
        p = eol + 1;
      } while (isStampLine(text, p));
      from = p;
    }
    // Two slices compared: V8 compares them in place.
    if (text.slice(p, p + end - start) !== old.slice(start, end)) {
      segments.length = mark;
      return -1;
    }
    p += end - start;
  }
  // The END line's name ends there, as blockEnd asks.
  const c = text[p];
  if (c !== undefined && c !== '\r' && c !== '\n') {
    segments.length = mark;
    return -1;
  }
  push(segments, from);
  push(segments, p);
  into.first = mark / 2;
  into.count = (segments.length - mark) / 2;
  into.length = blocks[blockInts * i + 2] as number;
  return p;
}

// The last read's blocks by a hash of the UID line they carry ('' without one), each bucket chaining its
// blocks in order. A hash, not a Map of UID strings: no string is cut out of the text per block.
function indexByUid(text: string, segments: Int32Array, blocks: Int32Array, count: number): UidIndex {
  let size = 16;
  while (size < 2 * count) size *= 2;
  const heads = new Int32Array(size).fill(-1);
  const next = new Int32Array(count);
  const hashes = new Int32Array(count);
  // From the last block back: each bucket's chain then runs in file order.
  for (let i = count - 1; i >= 0; i -= 1) {
    const hash = uidHash(text, segments, blocks[blockInts * i] as number, blocks[blockInts * i + 1] as number);
    const bucket = hash & (size - 1);
    hashes[i] = hash;
    next[i] = heads[bucket] as number;
    heads[bucket] = i;
  }
  return { heads, next, hashes };
}

// FNV-1a of the raw value of a block's first `UID:` line, unfolded or not (0 offset basis for none): only
// a hint, blocks are compared in full.
function uidHash(text: string, segments: Int32Array, first: number, count: number): number {
  const start = segments[2 * first] as number;
  const end = segments[2 * (first + count) - 1] as number;
  let hash = 0x811c9dc5 | 0;
  const at = text.indexOf('\nUID:', start);
  if (at === -1 || at >= end) return hash;
  const eol = text.indexOf('\n', at + 5);
  let stop = eol === -1 || eol > end ? end : eol;
  if (text.charCodeAt(stop - 1) === 0x0d) stop -= 1;
  for (let i = at + 5; i < stop; i += 1) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash;
}

// True when two blocks' segments hold the same characters (their lengths are known equal).
function sameText(a: string, aSegments: Int32Array, aFirst: number, aCount: number, b: string,
  bSegments: Int32Array, bFirst: number, bCount: number): boolean {
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

/**
 * One scan's state and its two ways of taking a block. Most blocks of a re-read are the last read's next one:
 * `takeExpected`, small, takes those; `takeBlock` does everything else. Two methods called per block rather
 * than one loop holding both: V8 optimizes each soon after it gets hot, within the first read, where one big
 * loop was compiled again and again, on the compiler's thread, over later reads (60–80 ms each time).
 */
class Scan<T> {
  readonly text: string;
  readonly memo: BlockMemo<T> | undefined;
  readonly make: (component: Component) => T;
  // Sized for about the last read's blocks: the columns seldom grow.
  readonly segments: Ints;
  readonly blocks: Ints;
  readonly made: (T | Component)[] = [];
  // Where the current block lies (locate fills it in): one object for the whole scan, not one per block.
  readonly located: Located = { first: 0, count: 0, length: 0 };
  readonly finder: Finder;
  // Which of the last read's blocks this read took already: a second taker is not a distinct value.
  readonly taken: Uint8Array;
  readonly unsure: number[] = [];
  // Blocks this read parsed (their index in this read), for a block that comes twice: the last read did
  // not have it either.
  readonly fresh = new Map<string, number>();
  readonly values: T[] = [];
  readonly timezones: Component[] = [];
  skippedLines = 0;
  reused = 0;
  parsed = 0;
  // The next DTSTAMP line start at or after the position, found once for all the blocks before it.
  stampAt = -2;
  // Whether the blocks come in the last read's order here: takeExpected tries the next block only then.
  inStep = true;

  constructor(text: string, memo: BlockMemo<T> | undefined, make: (component: Component) => T) {
    this.text = text;
    this.memo = memo;
    this.make = make;
    this.segments = { data: new Int32Array(memo ? memo.segments.length + 64 : 4096), length: 0 };
    this.blocks = { data: new Int32Array(memo ? blockInts * (memo.count + 16) : 2048), length: 0 };
    this.finder = createFinder(memo, text, this.segments);
    this.taken = new Uint8Array(memo?.count ?? 0);
  }

  /** The block at `pos` when it is the last read's next one (matchBlock): taken, and where the next line
   * starts; -2 when it is not (takeBlock then looks). */
  takeExpected(pos: number): number {
    const { memo } = this;
    const expected = this.finder.next();
    if (!memo || expected === -1) return -2;
    const end = matchBlock(this.text, pos, memo.text, memo.segments, memo.blocks, expected, this.segments,
      this.located);
    if (end === -1) return -2;
    this.finder.took(expected);
    // The DTSTAMP line to look for next is looked for again.
    this.stampAt = -2;
    const timezone = memo.blocks[blockInts * expected + 4] === 1;
    if (this.taken[expected] === 1) {
      if (!timezone) this.unsure.push(this.values.length);
    } else {
      this.taken[expected] = 1;
    }
    this.reused += 1;
    this.record(memo.made[expected] as T | Component, memo.blocks[blockInts * expected + 3] as number, timezone);
    return this.after(end);
  }

  /** Any block at `pos`: found near or by UID among the last read's, or parsed; where the next line starts, or
   * -1 when the text needs splitCalendar. */
  takeBlock(pos: number): number {
    const { text, memo, segments, located } = this;
    const expected = memo ? this.finder.next() : -1;
    const lineEnd = lineEndAt(text, pos);
    // Any other type (a lone CR in it included: it ends lines only for splitCalendar) needs splitCalendar.
    const type = typeAt(text, pos + 6, text[lineEnd - 1] === '\r' ? lineEnd - 1 : lineEnd);
    if (type === undefined) return -1;
    const end = blockEnd(text, pos, lineEnd, type);
    if (end === -1) return -1;
    if (this.stampAt !== -1 && this.stampAt < pos) this.stampAt = text.indexOf('\nDTSTAMP', pos);
    this.stampAt = locate(text, pos, end, this.stampAt, segments, located);
    const found = this.finder.find(located);
    // Found further on or by UID, the feed is out of the last read's order here: the next block is
    // takeExpected's again only when it is found close after where it was looked for.
    if (found !== -1) this.inStep = expected !== -1 && found >= expected && found < expected + nearby;
    // A block found is, DTSTAMP lines aside, a block of the last read, which had no nested one: a BEGIN
    // line is never a DTSTAMP line, so one here would be in the last read's block too.
    if (found === -1 && hasNestedBlock(text, lineEnd, end)) return -1;
    const timezone = type === 'VTIMEZONE';
    const again = found === -1 && this.fresh.size > 0
      ? this.fresh.get(stampless(text, segments.data, located)) ?? -1 : -1;
    if (found === -1 || this.taken[found] === 1) {
      if (!timezone) this.unsure.push(this.values.length);
    } else {
      this.taken[found] = 1;
    }
    // A block found is that block's component, located in this read's text: the last read's is let go.
    if (found !== -1 && memo) {
      this.reused += 1;
      this.record(memo.made[found] as T | Component, memo.blocks[blockInts * found + 3] as number, timezone);
    } else if (again !== -1) {
      this.reused += 1;
      this.record(this.made[again] as T | Component, this.blocks.data[blockInts * again + 3] as number, timezone);
    } else {
      const split = splitCalendar(`BEGIN:VCALENDAR\n${text.slice(pos, end)}\nEND:VCALENDAR\n`);
      const component = timezone ? split.timezones[0] : split.components[0];
      if (!component || split.components.length + split.timezones.length !== 1) return -1;
      this.fresh.set(stampless(text, segments.data, located), this.made.length);
      this.parsed += 1;
      this.record(timezone ? component : this.make(component), split.skippedLines, timezone);
    }
    return this.after(end);
  }

  // Appends the located block and what was made of it.
  record(value: T | Component, skipped: number, timezone: boolean): void {
    const { blocks, located } = this;
    push(blocks, located.first);
    push(blocks, located.count);
    push(blocks, located.length);
    push(blocks, skipped);
    push(blocks, timezone ? 1 : 0);
    this.made.push(value);
    if (timezone) this.timezones.push(value as Component);
    else this.values.push(value as T);
    this.skippedLines += skipped;
  }

  // Where the line after a block's END line starts.
  after(end: number): number {
    const afterEnd = this.text.indexOf('\n', end);
    return afterEnd === -1 ? this.text.length : afterEnd + 1;
  }
}

function scan<T>(text: string, memo: BlockMemo<T> | undefined, make: (component: Component) => T):
  ReusedScan<T> | undefined {
  const start = text.indexOf('BEGIN:VCALENDAR');
  if (start === -1 || (start > 0 && text[start - 1] !== '\n')) return undefined;
  const firstEnd = text.indexOf('\n', start);
  if (firstEnd === -1 || !/^BEGIN:VCALENDAR\r?$/.test(text.slice(start, firstEnd))) return undefined;
  const state = new Scan(text, memo, make);
  const frameLines: string[] = [];
  let complete = false;
  let afterBlock = false;
  let pos = firstEnd + 1;
  while (pos < text.length) {
    // A BEGIN line is read without slicing the line: this runs once per block.
    if (text.startsWith('BEGIN:', pos)) {
      let next = memo && state.inStep ? state.takeExpected(pos) : -2;
      if (next === -2) next = state.takeBlock(pos);
      if (next === -1) return undefined;
      pos = next;
      afterBlock = true;
      continue;
    }
    const lineEnd = lineEndAt(text, pos);
    const line = text.slice(pos, text[lineEnd - 1] === '\r' ? lineEnd - 1 : lineEnd);
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
  const left: T[] = [];
  if (memo) {
    for (let i = 0; i < memo.count; i += 1) {
      if (state.taken[i] !== 1 && memo.blocks[blockInts * i + 4] !== 1) left.push(memo.made[i] as T);
    }
  }
  return {
    properties: frame.properties,
    timezones: state.timezones,
    values: state.values,
    unsure: state.unsure,
    left,
    skippedLines: state.skippedLines + frame.skippedLines,
    memo: { text, count: state.made.length, blocks: state.blocks.data, made: state.made,
      segments: state.segments.data },
    reused: state.reused,
    parsed: state.parsed,
  };
}

/**
 * Appends to `segments` the block [start, end) without its DTSTAMP content lines (and their folded
 * continuations): lines that start exactly `DTSTAMP:` or `DTSTAMP;`, and says where in `into`. `stampAt`
 * is the first `\nDTSTAMP` at or after `start` (-1: none); the one after the block is given back.
 */
function locate(text: string, start: number, end: number, stampAt: number, segments: Ints,
  into: Located): number {
  const first = segments.length / 2;
  let length = 0;
  let from = start;
  let at = stampAt;
  while (at !== -1 && at < end) {
    const c = text[at + 8];
    if (c === ':' || c === ';') {
      if (at + 1 > from) {
        push(segments, from);
        push(segments, at + 1);
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
    push(segments, from);
    push(segments, end);
    length += end - from;
  }
  into.first = first;
  into.count = segments.length / 2 - first;
  into.length = length;
  return at;
}

// A located block's text without DTSTAMP lines, as one string (only for blocks the last read lacked).
function stampless(text: string, segments: Int32Array, block: Located): string {
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

/** Where the block from a BEGIN line ends (after its first END line's content, which hasNestedBlock
 * checks no other top-level BEGIN comes before); -1 for none. */
function blockEnd(text: string, pos: number, lineEnd: number, type: string): number {
  const marker = endMarkers.get(type) ?? `\nEND:${type}`;
  const end = text.indexOf(marker, lineEnd);
  if (end === -1) return -1;
  const after = end + marker.length;
  const c = text[after];
  if (c !== undefined && c !== '\r' && c !== '\n') return -1;
  return after;
}

/** True when a block type's (or VCALENDAR's) BEGIN line lies between a block's BEGIN line end and its
 * `end`: splitCalendar closes an unterminated entity at the next entity or VTIMEZONE, so that is left to it. */
function hasNestedBlock(text: string, lineEnd: number, end: number): boolean {
  for (let at = text.indexOf('\nBEGIN:', lineEnd); at !== -1 && at < end; at = text.indexOf('\nBEGIN:', at + 1)) {
    const nestedEnd = text.indexOf('\n', at + 1);
    const nested = text.slice(at + 7, nestedEnd === -1 ? text.length : nestedEnd).replace(/\r$/, '');
    if (blockTypes.has(nested.toUpperCase()) || nested.toUpperCase() === 'VCALENDAR') return true;
  }
  return false;
}
