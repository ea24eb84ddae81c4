// Dates as push decisions count them: a night is the date it starts on (YYYY-MM-DD), arithmetic is on
// calendar dates (no time of day, no DST), and "the date now" depends on the zone it is asked for.

const dayMs = 24 * 60 * 60 * 1000;

/** A YYYY-MM-DD that is a real calendar date. */
export function isDate(value: string): boolean {
  return parseDayNumber(value) !== undefined;
}

/** The date `days` after `date` (before it when negative). */
export function addDays(date: string, days: number): string {
  return civilFromDays(dayNumber(date) + days);
}

/** How many days from `from` to `to` (negative when `to` is earlier). */
export function daysBetween(from: string, to: string): number {
  return dayNumber(to) - dayNumber(from);
}

/** The UTC date of an instant. */
export function utcDate(ms: number): string {
  return isoDay(ms);
}

/** The date of an instant at a fixed offset from UTC, in hours (UTC−12 is -12). */
export function dateAtOffset(ms: number, offsetHours: number): string {
  return isoDay(ms + offsetHours * 60 * 60 * 1000);
}

// One formatter per zone: making one costs ~50 µs, using one ~1 µs. Zones come from the config, so
// the cache is bounded by it (and by this cap, for zones read from feeds).
const formatters = new Map<string, Intl.DateTimeFormat>();
const maxFormatters = 1_000;

function formatterFor(zone: string): Intl.DateTimeFormat {
  let format = formatters.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-CA', {
      timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
      second: '2-digit', hourCycle: 'h23',
    });
    if (formatters.size >= maxFormatters) formatters.clear();
    formatters.set(zone, format);
  }
  return format;
}

// A zone's offset from UTC only changes at instants that are whole quarter hours (every offset in use is
// a multiple of 15 minutes): it is asked once per zone and quarter hour, not once per instant (~3 µs each;
// a feed of timed events asks twice per event).
const quarterMs = 15 * 60 * 1000;
const offsets = new Map<string, number>();
const maxOffsets = 50_000;

function offsetAt(ms: number, zone: string): number {
  const quarter = Math.floor(ms / quarterMs) * quarterMs;
  const key = `${zone}\u0000${quarter}`;
  let offset = offsets.get(key);
  if (offset === undefined) {
    const parts: Record<string, string> = {};
    for (const part of formatterFor(zone).formatToParts(quarter)) parts[part.type] = part.value;
    const local = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour),
      Number(parts.minute), Number(parts.second));
    offset = local - quarter;
    if (offsets.size >= maxOffsets) offsets.clear();
    offsets.set(key, offset);
  }
  return offset;
}

/** The wall-clock time of an instant in an IANA zone: its date and the seconds since that date's midnight. */
export function wallClock(ms: number, zone: string): { date: string; secondOfDay: number } {
  const local = ms + offsetAt(ms, zone);
  const dayStart = Math.floor(local / dayMs) * dayMs;
  return { date: civilFromDays(dayStart / dayMs), secondOfDay: Math.floor((local - dayStart) / 1000) };
}

/** The date of an instant in an IANA zone. */
export function localDate(ms: number, zone: string): string {
  return wallClock(ms, zone).date;
}

/** An instant as `2026-12-02 00:35:00` on the wall clock of an IANA zone: what the console and `icalpush
 * status` show, read the same way as the decisions read a listing's day. */
export function localDateTime(ms: number, zone: string): string {
  const { date, secondOfDay } = wallClock(ms, zone);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${date} ${two(Math.floor(secondOfDay / 3600))}:${two(Math.floor(secondOfDay / 60) % 60)}:${two(secondOfDay % 60)}`;
}

/** The canonical spelling of an IANA zone name (`europe/rome` → `Europe/Rome`), or undefined when the
 * runtime does not know it. Fixed offsets (`+01:00`) are refused: they ignore daylight saving time. */
export function canonicalTimeZone(name: string): string | undefined {
  if (canonicalZones.has(name)) return canonicalZones.get(name);
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(name)) return undefined;
  let canonical: string | undefined;
  try {
    canonical = new Intl.DateTimeFormat('en', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    canonical = undefined;
  }
  // A map of 10,000 listings names a few zones 10,000 times; a formatter costs ~0.1 ms to make.
  if (canonicalZones.size < maxZonesRemembered) canonicalZones.set(name, canonical);
  return canonical;
}

// The runtime knows ~600 zone names; spellings past this many are looked up each time, never kept.
const maxZonesRemembered = 2_048;
const canonicalZones = new Map<string, string | undefined>();

// Dates ↔ day numbers (days since 1970-01-01) by arithmetic: the decision walks nights one by one, and
// Date parsing and formatting were most of its time (measured by `npm run bench -- decide`).
/** A zone a listing can be in: an IANA name the runtime knows, in its canonical spelling, that is not a
 * fixed offset under an IANA name (`Etc/GMT+1`); undefined otherwise. */
export function usableTimeZone(name: string): string | undefined {
  const canonical = canonicalTimeZone(name);
  return canonical === undefined || /^Etc\/GMT[+-]\d+$/i.test(canonical) ? undefined : canonical;
}

function dayNumber(date: string): number {
  const days = parseDayNumber(date);
  if (days === undefined) throw new RangeError(`not a YYYY-MM-DD date: ${date}`);
  return days;
}

function parseDayNumber(date: string): number | undefined {
  if (date.length !== 10 || date.charCodeAt(4) !== 45 || date.charCodeAt(7) !== 45) return undefined;
  const y = digits(date, 0, 4);
  const m = digits(date, 5, 7);
  const d = digits(date, 8, 10);
  if (y < 0 || m < 1 || m > 12 || d < 1 || d > daysInMonth(y, m)) return undefined;
  return daysFromCivil(y, m, d);
}

function digits(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i += 1) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

// H. Hinnant's days_from_civil / civil_from_days (proleptic Gregorian).
function daysFromCivil(y0: number, m: number, d: number): number {
  const y = m <= 2 ? y0 - 1 : y0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

function civilFromDays(days: number): string {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  if (y < 0 || y > 9999) return new Date(days * dayMs).toISOString().slice(0, 10);
  return `${String(y).padStart(4, '0')}-${m < 10 ? '0' : ''}${m}-${d < 10 ? '0' : ''}${d}`;
}

function isoDay(ms: number): string {
  return civilFromDays(Math.floor(ms / dayMs));
}
