// Writes VCALENDAR bodies the sidecar composes itself (enhanced GET deltas, full feeds) and the
// draft -13 tombstone skeleton for a removed entity. Output is RFC 5545 §3.1: CRLF, folded at 75 octets.
import type { Entity } from './entities.ts';
import { type Component, type ContentLine, contentLineText, propertyLine } from './split.ts';

/** The parts of a calendar to write: frame properties, every VTIMEZONE, then the components. */
export type CalendarParts = { properties: ContentLine[]; timezones: Component[]; components: Component[] };

const maxOctets = 75;
const defaultProdId = '-//icalpush//icalpush//EN';
// RFC 5545 §3.6: these occur once; merged Airbnb feeds repeat PRODID and VERSION, the first wins.
const onceOnly = new Set(['VERSION', 'PRODID', 'CALSCALE', 'METHOD']);

/** A complete VCALENDAR text, CRLF line ends, every line folded at 75 octets. */
export function serializeCalendar(cal: CalendarParts): string {
  const pieces = [...cal.timezones, ...cal.components].map(serializeComponent);
  return assembleCalendar(frameProperties(cal.properties), pieces);
}

/**
 * The VCALENDAR property lines of a frame, folded, each ending in CRLF: the first of each once-only
 * property, and VERSION and PRODID added when missing (RFC 5545 §3.6: iCloud and hand-built feeds omit them).
 */
export function frameProperties(lines: readonly ContentLine[]): string {
  const properties: ContentLine[] = [];
  const seen = new Set<string>();
  for (const line of lines) {
    // RFC 5545 §3.6: these occur once; merged Airbnb feeds repeat PRODID and VERSION, the first wins.
    if (onceOnly.has(line.name) && seen.has(line.name)) continue;
    seen.add(line.name);
    properties.push(line);
  }
  if (!seen.has('PRODID')) properties.unshift({ name: 'PRODID', params: '', value: defaultProdId });
  if (!seen.has('VERSION')) properties.unshift({ name: 'VERSION', params: '', value: '2.0' });
  return properties.map((line) => `${foldLine(contentLineText(line))}\r\n`).join('');
}

/** A VCALENDAR around already serialized pieces: frame properties, then VTIMEZONE and entity texts. */
export function assembleCalendar(properties: string, pieces: readonly string[]): string {
  return `BEGIN:VCALENDAR\r\n${properties}${pieces.join('')}END:VCALENDAR\r\n`;
}

/** One component and its children as folded CRLF lines (a piece for assembleCalendar). */
export function serializeComponent(component: Component): string {
  const out: string[] = [];
  writeComponent(component, out);
  return out.join('');
}

/** Folds one content line at 75 octets without splitting a UTF-8 sequence (RFC 5545 §3.1). */
export function foldLine(line: string): string {
  // Most lines are short ASCII: no per-character walk (it was most of the cost of serializing a feed).
  if (line.length <= maxOctets && Buffer.byteLength(line, 'utf8') <= maxOctets) return line;
  if (Buffer.byteLength(line, 'utf8') === line.length) {
    const parts = [line.slice(0, maxOctets)];
    for (let at = maxOctets; at < line.length; at += maxOctets - 1) parts.push(` ${line.slice(at, at + maxOctets - 1)}`);
    return parts.join('\r\n');
  }
  const parts: string[] = [];
  let current = '';
  let octets = 0;
  for (const char of line) {
    const size = Buffer.byteLength(char, 'utf8');
    if (octets + size > maxOctets) {
      parts.push(current);
      // A continuation line starts with one space, which counts toward its 75 octets.
      current = ' ';
      octets = 1;
    }
    current += char;
    octets += size;
  }
  parts.push(current);
  return parts.join('\r\n');
}

/** The draft -13 skeleton of a removed entity: UID, DTSTAMP, its last DTSTART and STATUS:DELETED. */
export function tombstone(entity: Entity, dtstamp: string): Component {
  const master = entity.components[0];
  const dtstart = master ? propertyLine(master, 'DTSTART') : undefined;
  // A UID-less entity was served without UID; its content identity is the only handle a client can match.
  const lines: ContentLine[] = [
    { name: 'UID', params: '', value: entity.uid ?? entity.id },
    { name: 'DTSTAMP', params: '', value: dtstamp },
    ...(dtstart ? [dtstart] : []),
    { name: 'STATUS', params: '', value: 'DELETED' },
  ];
  return { type: master?.type ?? 'VEVENT', lines, children: [] };
}

// Recursion depth is bounded by split.ts's maxNestingDepth.
function writeComponent(component: Component, out: string[]): void {
  out.push(`BEGIN:${component.type}\r\n`);
  for (const line of component.lines) out.push(`${foldLine(contentLineText(line))}\r\n`);
  for (const child of component.children) writeComponent(child, out);
  out.push(`END:${component.type}\r\n`);
}
