// Re-reading a feed that changed a little: split it reusing the components parsed from the last
// read wherever a component's text is the same apart from DTSTAMP lines, so one booking on a
// 10,000-event feed parses one event, not ten thousand. Only the plain layout takes this path
// (BEGIN/END in upper case at line starts, LF or CRLF line ends); anything else is handed to
// splitCalendar whole, so the result is always exactly what splitCalendar gives.
import { type Component, type ContentLine, entityTypes, type SplitCalendar, splitCalendar } from './split.ts';

/** One block: its text without DTSTAMP lines, what was made of it (a VTIMEZONE stays a component) and
 * the lines its split skipped. */
type MemoEntry<T> = { key: string; value: T | undefined; timezone: Component | undefined; skipped: number };

/** The blocks of one read in file order, each with its text without DTSTAMP lines. */
export type BlockMemo<T> = MemoEntry<T>[];

/** The blocks of one read as components (what splitReusing keeps). */
export type ComponentMemo = BlockMemo<Component>;

/** What splitReusing gives: the split calendar, the memo for the next read, and how much it reused. */
export type ReusedSplit = { calendar: SplitCalendar; memo: ComponentMemo; reused: number; parsed: number };

/** What scanReusing gives: the frame, what `make` made of each entity component, the memo, and counts. */
export type ReusedScan<T> = {
  properties: ContentLine[];
  timezones: Component[];
  values: T[];
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
  if (!scanned) return { calendar: splitCalendar(text), memo: [], reused: 0, parsed: 0 };
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
// read's blocks are indexed by text.
const nearby = 8;
const missesBeforeIndex = 16;

/**
 * Finds a block's entry among the last read's. Looking every block up in a Map by its text made V8
 * hash each block's text on every read (about 1.6 ns a character: two thirds of the split of a
 * re-read 10,000-event feed). Most blocks come where the last read had them, one booking changed or
 * added aside, so the blocks after the last one found are compared first (`===` compares, it does
 * not hash). A block missed before the index exists is parsed again: the same component, a little
 * more work.
 */
function createFinder<T>(memo: BlockMemo<T> | undefined): (key: string) => MemoEntry<T> | undefined {
  const entries = memo ?? [];
  let at = 0;
  let misses = 0;
  let byText: Map<string, number> | undefined;
  return (key) => {
    for (let i = at; i < at + nearby && i < entries.length; i += 1) {
      const entry = entries[i];
      if (entry?.key === key) {
        at = i + 1;
        return entry;
      }
    }
    if (!byText) {
      misses += 1;
      if (misses <= missesBeforeIndex) return undefined;
      byText = new Map(entries.map((entry, index) => [entry.key, index]));
    }
    const found = byText.get(key);
    if (found === undefined) return undefined;
    at = found + 1;
    return entries[found];
  };
}

function scan<T>(text: string, memo: BlockMemo<T> | undefined, make: (component: Component) => T):
  ReusedScan<T> | undefined {
  const start = text.indexOf('BEGIN:VCALENDAR');
  if (start === -1 || (start > 0 && text[start - 1] !== '\n')) return undefined;
  const firstEnd = text.indexOf('\n', start);
  if (firstEnd === -1 || !/^BEGIN:VCALENDAR\r?$/.test(text.slice(start, firstEnd))) return undefined;

  const find = createFinder(memo);
  // Blocks this read parsed, for a block that comes twice: the last read did not have it either.
  const fresh = new Map<string, MemoEntry<T>>();
  const next: BlockMemo<T> = [];
  const values: T[] = [];
  const timezones: Component[] = [];
  const frameLines: string[] = [];
  let skippedLines = 0;
  let reused = 0;
  let parsed = 0;
  let complete = false;
  let afterBlock = false;
  let pos = firstEnd + 1;
  while (pos < text.length) {
    const eol = text.indexOf('\n', pos);
    const lineEnd = eol === -1 ? text.length : eol;
    const contentEnd = text[lineEnd - 1] === '\r' ? lineEnd - 1 : lineEnd;
    // A BEGIN line is read without slicing the line: this runs once per block.
    if (text.startsWith('BEGIN:', pos)) {
      const type = text.slice(pos + 6, contentEnd);
      // A lone CR ends lines only for splitCalendar.
      if (type.includes('\r') || !blockTypes.has(type)) return undefined;
      const block = blockAt(text, pos, lineEnd, type);
      if (!block) return undefined;
      const key = withoutStamps(block.text);
      const known = find(key) ?? fresh.get(key);
      let entry: MemoEntry<T>;
      if (known) {
        // A new entry with this read's key: the last read's keys are slices of its text, which the
        // memo would otherwise keep alive read after read.
        entry = { key, value: known.value, timezone: known.timezone, skipped: known.skipped };
        reused += 1;
      } else {
        const split = splitCalendar(`BEGIN:VCALENDAR\n${block.text}\nEND:VCALENDAR\n`);
        const component = type === 'VTIMEZONE' ? split.timezones[0] : split.components[0];
        if (!component || split.components.length + split.timezones.length !== 1) return undefined;
        entry = type === 'VTIMEZONE'
          ? { key, value: undefined, timezone: component, skipped: split.skippedLines }
          : { key, value: make(component), timezone: undefined, skipped: split.skippedLines };
        fresh.set(key, entry);
        parsed += 1;
      }
      next.push(entry);
      if (entry.timezone) timezones.push(entry.timezone);
      else values.push(entry.value as T);
      skippedLines += entry.skipped;
      pos = block.next;
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
    skippedLines: skippedLines + frame.skippedLines,
    memo: next,
    reused,
    parsed,
  };
}

/** The block from a BEGIN line to its END line; undefined when another top-level BEGIN comes first. */
function blockAt(text: string, pos: number, lineEnd: number, type: string): { text: string; next: number } | undefined {
  const marker = endMarkers.get(type) ?? `\nEND:${type}`;
  const end = text.indexOf(marker, lineEnd);
  if (end === -1) return undefined;
  const after = end + marker.length;
  const c = text[after];
  if (c !== undefined && c !== '\r' && c !== '\n') return undefined;
  // splitCalendar closes an unterminated entity at the next entity or VTIMEZONE: leave that to it.
  for (let at = text.indexOf('\nBEGIN:', lineEnd); at !== -1 && at < end; at = text.indexOf('\nBEGIN:', at + 1)) {
    const nestedEnd = text.indexOf('\n', at + 1);
    const nested = text.slice(at + 7, nestedEnd === -1 ? text.length : nestedEnd).replace(/\r$/, '');
    if (blockTypes.has(nested.toUpperCase()) || nested.toUpperCase() === 'VCALENDAR') return undefined;
  }
  const eol = text.indexOf('\n', after);
  return { text: text.slice(pos, after), next: eol === -1 ? text.length : eol + 1 };
}

/** The block without its DTSTAMP content lines (and their folded continuations). */
function withoutStamps(block: string): string {
  let at = block.indexOf('\nDTSTAMP');
  if (at === -1) return block;
  let out = '';
  let from = 0;
  while (at !== -1) {
    const c = block[at + 8];
    if (c === ':' || c === ';') {
      out += block.slice(from, at + 1);
      let end = block.indexOf('\n', at + 1);
      while (end !== -1 && (block[end + 1] === ' ' || block[end + 1] === '\t')) end = block.indexOf('\n', end + 1);
      from = end === -1 ? block.length : end + 1;
      at = end === -1 ? -1 : block.indexOf('\nDTSTAMP', end);
    } else {
      at = block.indexOf('\nDTSTAMP', at + 1);
    }
  }
  return out + block.slice(from);
}
