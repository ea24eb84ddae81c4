// The zone a tombstone's DTSTART names, and that tombstone with its DTSTART in UTC. A tombstone outlives
// its entity, and often the entity's VTIMEZONE too (issue 11: `TZID=Custom Zone Lisbon` read as floating
// by python-icalendar); a delta must name no TZID it does not define (RFC 5545 §3.2.19, SPEC "Deltas are
// valid iCalendar"). Run when a tombstone is made or loaded, never per read.
import { foldLine } from './serialize.ts';
import { contentLineText, type ContentLine, parameterValue, parseContentLine, withoutParameter } from './split.ts';

/** The TZID (trimmed) the DTSTART line of a tombstone's text names; undefined when it names none. */
export function tombstoneZone(text: string): string | undefined {
  const at = text.indexOf('\r\nDTSTART');
  // The common case, a DTSTART without parameters (or none at all), names no zone: no parse.
  if (at === -1 || text.charCodeAt(at + '\r\nDTSTART'.length) === 0x3a) return undefined;
  return dtstartOf(text)?.zone;
}

/**
 * The tombstone with its DTSTART written without TZID, for a zone whose VTIMEZONE is not known. A local
 * DATE-TIME becomes the UTC instant it is in the IANA zone of that name when the runtime knows one
 * (`TZID=Europe/Lisbon` with no VTIMEZONE: what ical.js and Google read it as); otherwise its wall-clock
 * digits are kept and marked UTC: with no definition there is no right instant, and a client matches a
 * tombstone by UID (draft -13 asks DTSTART to be there, not exact). A DATE or UTC value only loses TZID.
 */
export function tombstoneInUtc(text: string): string {
  const found = dtstartOf(text);
  if (!found || found.zone === undefined) return text;
  const { line, start, end, zone } = found;
  const utc: ContentLine = { name: line.name, params: withoutParameter(line.params, 'TZID'), value: utcValue(line.value, zone) };
  return `${text.slice(0, start)}${foldLine(contentLineText(utc))}${text.slice(end)}`;
}

type Dtstart = { line: ContentLine; start: number; end: number; zone: string | undefined };

// The (folded) DTSTART line of a component text: where it starts and ends (before its CRLF), unfolded.
function dtstartOf(text: string): Dtstart | undefined {
  const at = text.indexOf('\r\nDTSTART');
  if (at === -1) return undefined;
  const start = at + 2;
  let end = text.indexOf('\r\n', start);
  while (end !== -1 && (text[end + 2] === ' ' || text[end + 2] === '\t')) end = text.indexOf('\r\n', end + 2);
  if (end === -1) end = text.length;
  // RFC 5545 §3.1 unfolding: a CRLF followed by one space or tab is removed.
  const line = parseContentLine(text.slice(start, end).replace(/\r\n[ \t]/g, ''));
  if (line?.name !== 'DTSTART') return undefined;
  return { line, start, end, zone: parameterValue(line.params, 'TZID')?.trim() };
}

// RFC 5545 §3.3.5 local time form: YYYYMMDD "T" HHMMSS, no "Z".
const localDateTime = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})$/;

function utcValue(value: string, zone: string): string {
  const local = localDateTime.exec(value.trim());
  if (!local) return value;
  const [y, mo, d, h, mi, s] = local.slice(1).map(Number) as [number, number, number, number, number, number];
  const wall = new Date(0);
  wall.setUTCFullYear(y, mo - 1, d);
  wall.setUTCHours(h, mi, s, 0);
  const format = formatterFor(zone);
  const instant = format ? instantOf(wall.getTime(), format) : wall.getTime();
  return utcText(instant) ?? `${value.trim()}Z`;
}

// The instant whose wall clock in the zone reads `wallMs` (as if UTC), as RFC 5545 §3.3.5 reads a local
// time: the offsets in force 12 hours either side are the candidates; of those that give back this wall
// clock the earliest instant (a time repeated when clocks go back is its first occurrence), and a time
// the change skipped is read with the offset before the gap.
function instantOf(wallMs: number, format: Intl.DateTimeFormat): number {
  const before = offsetAt(wallMs - 12 * 3_600_000, format);
  const after = offsetAt(wallMs + 12 * 3_600_000, format);
  const candidates = [...new Set([before, after])].map((offset) => wallMs - offset)
    .filter((instant) => instant + offsetAt(instant, format) === wallMs);
  return candidates.length > 0 ? Math.min(...candidates) : wallMs - before;
}

function offsetAt(ms: number, format: Intl.DateTimeFormat): number {
  const parts: Record<string, number> = {};
  for (const part of format.formatToParts(ms)) parts[part.type] = Number(part.value);
  const wall = new Date(0);
  wall.setUTCFullYear(parts.year ?? 1970, (parts.month ?? 1) - 1, parts.day ?? 1);
  wall.setUTCHours(parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0, 0);
  return wall.getTime() - Math.floor(ms / 1000) * 1000;
}

// YYYYMMDDTHHMMSSZ, or undefined outside the four-digit years iCalendar can write.
function utcText(ms: number): string | undefined {
  const date = new Date(ms);
  const year = date.getUTCFullYear();
  if (Number.isNaN(year) || year < 0 || year > 9999) return undefined;
  const two = (n: number) => String(n).padStart(2, '0');
  return `${String(year).padStart(4, '0')}${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}T`
    + `${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}Z`;
}

// One formatter per zone name (making one costs ~50 µs); names come from feeds, so the cache is capped.
const formatters = new Map<string, Intl.DateTimeFormat | null>();
const maxFormatters = 256;

function formatterFor(zone: string): Intl.DateTimeFormat | undefined {
  let format = formatters.get(zone);
  if (format === undefined) {
    try {
      format = new Intl.DateTimeFormat('en-US', {
        timeZone: zone, year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric',
        second: 'numeric', hourCycle: 'h23',
      });
    } catch {
      // RangeError: not a zone the runtime knows (a custom or a Windows name).
      format = null;
    }
    if (formatters.size >= maxFormatters) formatters.clear();
    formatters.set(zone, format);
  }
  return format ?? undefined;
}
