// The one real iCalendar parse: the time span and state of each event, for the availability model.
// node-ical sits behind this adapter (house style: one file per outside library) and nothing else
// imports it; its dates depend on the host's time zone, so every date it gives is normalized here.
import ical, { type CalendarResponse, type RRule } from 'node-ical';
import { groupEntities } from './entities.ts';
import { serializeCalendar } from './serialize.ts';
import { type Component, type ContentLine, splitCalendar } from './split.ts';

/** One event, or one occurrence of a recurring event, as a half-open span of time. */
export type EventSpan = {
  uid: string | undefined;
  /** RECURRENCE-ID of an override, as an ISO string, when this is one */
  recurrenceId?: string;
  /** Inclusive; for all-day: midnight UTC of the DTSTART date. */
  start: Date;
  /** Exclusive; for all-day: midnight UTC of the DTEND date. */
  end: Date;
  /** DTSTART;VALUE=DATE (or an 8-digit date value). */
  allDay: boolean;
  status: 'CONFIRMED' | 'TENTATIVE' | 'CANCELLED' | undefined;
  /** TRANSP:TRANSPARENT. */
  transparent: boolean;
  /** A recurring event whose expansion ran out of budget: busy from here to its end or the window's. */
  busySafe?: true;
};

/** The window recurring events are expanded in; single events are returned wherever they are.
 * `direct: false` sends every event through node-ical (the tests compare both ways). `budget` is the
 * recurrence budget left for the whole feed (shared across calls for one feed); a fresh one by default. */
export type ParseEventSpansOptions = { expandUntil?: Date; from?: Date; direct?: boolean; budget?: RecurrenceBudget };

/** Rule iterations a feed may still spend; each recurring event takes at most maxIterationsPerEvent. */
export type RecurrenceBudget = { iterations: number };

/** What parseEventSpans read: the spans sorted by start, how many VEVENTs it could not read, and
 * how many recurring events ran out of budget (each then stands as one busy-safe span). */
export type EventSpans = { spans: EventSpan[]; unreadable: number; capped: number };

/**
 * Rule iterations one recurring event may take, counted from its DTSTART (COUNT counts from there): a
 * daily rule since 2000 fits, FREQ=MINUTELY or COUNT=2^31 does not. The count, not the clock, decides,
 * so the same feed gives the same nights on every read.
 */
export const maxIterationsPerEvent = 10_000;

/** Rule iterations one feed may take in all: 300 FREQ=MINUTELY events cost five events' budget, not 300. */
export const maxIterationsPerFeed = 50_000;

/** Iterations every rule gets even once the feed's budget is spent, so a short rule after many long ones
 * (a WEEKLY;COUNT=3) is still read as it is, not taken for busy to the window's end. */
export const minIterationsPerRule = 200;

/** A fresh budget for one feed. */
export function recurrenceBudget(): RecurrenceBudget {
  return { iterations: maxIterationsPerFeed };
}

const dayMs = 24 * 60 * 60 * 1000;
const statuses: ReadonlySet<string> = new Set(['CONFIRMED', 'TENTATIVE', 'CANCELLED']);

// The fields of a node-ical VEVENT this adapter reads; its typings promise more than it delivers
// (a DTSTART it cannot parse stays a string, a property with parameters becomes { params, val }).
type NodeEvent = {
  type?: unknown;
  uid?: unknown;
  start?: unknown;
  end?: unknown;
  datetype?: unknown;
  status?: unknown;
  transparency?: unknown;
  rrule?: RRule;
  recurrenceid?: unknown;
  exdate?: Record<string, unknown>;
  recurrences?: Record<string, NodeEvent>;
};

// node-ical marks DATE values with `dateOnly` and zoned values with a `tz` it could resolve or not.
type NodeDate = Date & { tz?: string; dateOnly?: boolean };

type Window = { from: number; until: number; budget: RecurrenceBudget };

/** Parses a complete calendar text asynchronously (node-ical's async parser), never throws on bad
 * input: returns the spans it could read and a count of components it could not. */
export async function parseEventSpans(text: string, options: ParseEventSpansOptions = {}): Promise<EventSpans> {
  const from = options.from?.getTime() ?? Date.now() - dayMs;
  const until = options.expandUntil?.getTime() ?? twoYearsAfter(from);
  const window: Window = { from, until, budget: options.budget ?? recurrenceBudget() };
  const result: EventSpans = { spans: [], unreadable: 0, capped: 0 };
  try {
    // Our own split first: it survives lone CRs, blank and junk lines and a missing END:VCALENDAR,
    // and only VEVENTs go on, since node-ical merges a VTODO into a VEVENT that shares its UID.
    const split = splitCalendar(text);
    const frame = { properties: split.properties, timezones: split.timezones };
    // groupEntities drops superseded copies of an instance the way the snapshot does; node-ical would
    // keep both copies of Exchange's twice-moved occurrence, one under each of its lookup keys.
    const entities = groupEntities(split.components.filter((c) => c.type === 'VEVENT')).filter((entity) => {
      // Most stays are one VEVENT with UTC or DATE bounds and no recurrence: read those here, without
      // node-ical's serialize-and-parse round trip (a quarter of a busy sidecar's CPU, measured).
      const [only] = entity.components;
      const span = options.direct !== false && entity.components.length === 1 && only
        ? directSpan(only, entity.uid) : undefined;
      if (span) result.spans.push(span);
      return span === undefined;
    });
    const whole = await readCalendar(frame, entities.flatMap((e) => e.components));
    if (whole) {
      collect(whole, window, result);
    } else {
      // node-ical rejects a whole calendar for one bad component (a duplicate DTSTART throws), so
      // read entity by entity: a bad event then costs only itself and its overrides.
      for (const entity of entities) {
        const data = await readCalendar(frame, entity.components);
        if (data) collect(data, window, result);
        else result.unreadable += entity.components.length;
      }
    }
  } catch {
    // Never throw on input: whatever was read so far stands.
  }
  result.spans.sort((a, b) => a.start.getTime() - b.start.getTime() || a.end.getTime() - b.end.getTime());
  return result;
}

async function readCalendar(frame: { properties: ContentLine[]; timezones: Component[] },
  components: Component[]): Promise<CalendarResponse | undefined> {
  if (components.length === 0) return undefined;
  try {
    return await ical.async.parseICS(serializeCalendar({ ...frame, components }));
  } catch {
    return undefined;
  }
}

function collect(data: CalendarResponse, window: Window, result: EventSpans): void {
  for (const [key, value] of Object.entries(data)) {
    if (key === 'vcalendar' || !value || value.type !== 'VEVENT') continue;
    try {
      collectEvent(value as NodeEvent, window, result);
    } catch {
      result.unreadable += 1;
    }
  }
}

// A node-ical entry is a master with its overrides under `recurrences`, or, when the feed has only
// overrides (Google's orphan overrides), the first override standing in for the missing master.
function collectEvent(event: NodeEvent, window: Window, result: EventSpans): void {
  const uid = textValue(event.uid);
  const overrides = [...new Set(Object.values(event.recurrences ?? {}))];
  const isOrphan = event.recurrenceid !== undefined && !event.rrule;
  const master = isOrphan ? undefined : spanOf(event, uid);
  if (!isOrphan && !master) result.unreadable += 1;

  const used = new Set<NodeEvent>();
  if (master && event.rrule) {
    expand(event, event.rrule, master, window, used, result);
  } else if (master) {
    // A single event's own RECURRENCE-ID override replaces it, as an override replaces an occurrence.
    const override = findOverride(event, asNodeDate(event.start));
    if (override) used.add(override);
    pushSpan(override ? spanOf(override, uid) : master, result, override !== undefined);
  }
  for (const override of overrides) {
    if (used.has(override)) continue;
    const span = spanOf(override, uid);
    if (!span) {
      result.unreadable += 1;
      continue;
    }
    // An override of a recurring event is one of its occurrences, so the window applies to it too.
    if (event.rrule && !overlaps(span, window)) continue;
    pushSpan(span, result, true);
  }
}

// RFC 5545 §3.8.5.3: the occurrences of the rule, minus EXDATE, each replaced by its override
// (a cancelled override removes it). One pass over the rule from its DTSTART (walking it with `after()`
// from each occurrence restarted the count every time: quadratic, 27–56 s on one COUNT rule), within
// the iteration budget. A rule that exceeds it is busy from its last occurrence read to its UNTIL or
// the window's end: for a booking calendar a night wrongly shown busy loses a sale, one wrongly shown
// free sells it twice, and a budget that counts iterations gives the same answer on every read.
function expand(event: NodeEvent, rule: RRule, master: EventSpan, window: Window, used: Set<NodeEvent>,
  result: EventSpans): void {
  const durationMs = master.end.getTime() - master.start.getTime();
  const start = asNodeDate(event.start);
  // A floating master was read in host time and steps in UTC: the same shift applies to every occurrence.
  const shiftMs = master.allDay || !start ? 0 : master.start.getTime() - start.getTime();
  const inner = (rule as unknown as { _rrule?: RuleInternals })._rrule;
  const allowed = Math.max(minIterationsPerRule, Math.min(maxIterationsPerEvent, window.budget.iterations));
  let lastStartMs: number | undefined;
  if (!inner || typeof inner.maxIterations !== 'number') {
    busySafe(master, window, inner, lastStartMs, result);
    return;
  }
  inner.maxIterations = allowed;
  let steps = 0;
  try {
    rule.all((next: Date) => {
      steps += 1;
      const occurrence = next as NodeDate;
      const startMs = master.allDay ? calendarDayMs(occurrence) : occurrence.getTime() + shiftMs;
      if (startMs >= window.until) return false;
      lastStartMs = startMs;
      // All-day occurrences come back as host-local midnights; rrule-temporal counts from UTC midnight.
      if (startMs + durationMs + dayMs < window.from || isExcluded(event, occurrence, master.allDay)) return true;
      const override = findOverride(event, occurrence, master.allDay);
      if (override) {
        used.add(override);
        const span = spanOf(override, master.uid);
        if (!span) result.unreadable += 1;
        else if (overlaps(span, window)) pushSpan(span, result, true);
        return true;
      }
      const span = { ...master, start: new Date(startMs), end: new Date(startMs + durationMs) };
      if (overlaps(span, window)) pushSpan(span, result, false);
      return true;
    });
    window.budget.iterations -= Math.min(steps, allowed);
  } catch {
    // rrule-temporal throws past maxIterations (and on rules it cannot evaluate): the budget is spent.
    window.budget.iterations -= allowed;
    busySafe(master, window, inner, lastStartMs, result);
  }
}

// What expand reads of rrule-temporal behind node-ical's wrapper: its iteration bound and UNTIL.
type RuleInternals = { maxIterations: number; options?: () => { until?: { epochMilliseconds?: number } } };

// The busy-safe stand-in for a rule past its budget: busy from its last occurrence read (or its
// DTSTART) to its UNTIL (plus one occurrence's length) or the window's end.
function busySafe(master: EventSpan, window: Window, inner: RuleInternals | undefined, lastStartMs: number | undefined,
  result: EventSpans): void {
  result.capped += 1;
  let untilMs: number | undefined;
  try {
    untilMs = inner?.options?.().until?.epochMilliseconds;
  } catch {
    untilMs = undefined;
  }
  const durationMs = master.end.getTime() - master.start.getTime();
  const startMs = Math.max(window.from, lastStartMs ?? master.start.getTime());
  const endMs = Math.min(window.until, untilMs === undefined ? window.until : untilMs + Math.max(durationMs, dayMs));
  if (endMs <= startMs) return;
  result.spans.push({ ...master, start: new Date(startMs), end: new Date(endMs), allDay: false, busySafe: true });
}

// Overrides whose STATUS is CANCELLED remove their occurrence (Thunderbird's cancelled occurrence).
function pushSpan(span: EventSpan | undefined, result: EventSpans, isOverride: boolean): void {
  if (!span) return;
  if (isOverride && span.status === 'CANCELLED') return;
  result.spans.push(span);
}

function overlaps(span: EventSpan, window: Window): boolean {
  const start = span.start.getTime();
  return start < window.until && (span.end.getTime() > window.from || start >= window.from);
}

// node-ical keys EXDATE and overrides by `YYYY-MM-DD` and, for DATE-TIME values, by ISO instant too.
function isExcluded(event: NodeEvent, occurrence: NodeDate, allDay: boolean): boolean {
  const exdate = event.exdate;
  if (!exdate) return false;
  const dateKey = allDay ? isoDay(calendarDayMs(occurrence)) : occurrence.toISOString().slice(0, 10);
  if (allDay) return Object.hasOwn(exdate, dateKey);
  // A DATE EXDATE on a timed rule removes that day's occurrences.
  return Object.hasOwn(exdate, occurrence.toISOString()) || asNodeDate(exdate[dateKey])?.dateOnly === true;
}

function findOverride(event: NodeEvent, occurrence: NodeDate | undefined, allDay = false): NodeEvent | undefined {
  const recurrences = event.recurrences;
  if (!recurrences || !occurrence) return undefined;
  if (allDay || occurrence.dateOnly) return recurrences[isoDay(calendarDayMs(occurrence))];
  const exact = recurrences[occurrence.toISOString()];
  if (exact) return exact;
  const byDay = recurrences[occurrence.toISOString().slice(0, 10)];
  return asNodeDate(byDay?.recurrenceid)?.dateOnly ? byDay : undefined;
}

function spanOf(event: NodeEvent, uid: string | undefined): EventSpan | undefined {
  const start = asNodeDate(event.start);
  if (!start) return undefined;
  const allDay = start.dateOnly === true || event.datetype === 'date';
  const end = asNodeDate(event.end);
  const rid = asNodeDate(event.recurrenceid);
  return makeSpan({
    uid,
    ...(rid ? { recurrenceId: new Date(rid.dateOnly ? calendarDayMs(rid) : instantMs(rid)).toISOString() } : {}),
    startMs: allDay ? calendarDayMs(start) : instantMs(start),
    ...(end ? { endMs: allDay ? calendarDayMs(end) : instantMs(end) } : {}),
    allDay,
    status: textValue(event.status),
    transparent: textValue(event.transparency)?.toUpperCase() === 'TRANSPARENT',
  });
}

type SpanParts = {
  uid: string | undefined;
  recurrenceId?: string;
  startMs: number;
  endMs?: number;
  allDay: boolean;
  status: string | undefined;
  transparent: boolean;
};

// DTEND missing: one day for all-day, DURATION or zero length for timed (RFC 5545 §3.6.1); node-ical
// fills `end` in just that way. An end not after the start (Airbnb 0.8.8) counts as missing. A STATUS
// other than the three an event may have counts as none.
function makeSpan(parts: SpanParts): EventSpan {
  const { startMs, allDay } = parts;
  let endMs = parts.endMs ?? startMs;
  if (endMs < startMs || (allDay && endMs === startMs)) endMs = allDay ? startMs + dayMs : startMs;
  const status = parts.status?.trim().toUpperCase();
  return {
    uid: parts.uid,
    ...(parts.recurrenceId === undefined ? {} : { recurrenceId: parts.recurrenceId }),
    start: new Date(startMs),
    end: new Date(endMs),
    allDay,
    status: status && statuses.has(status) ? status as EventSpan['status'] : undefined,
    transparent: parts.transparent,
  };
}

// Properties that make an event more than one plain span, or need node-ical to read.
const indirect: ReadonlySet<string> = new Set(['RRULE', 'RDATE', 'EXDATE', 'EXRULE', 'RECURRENCE-ID', 'DURATION']);

/** The span of a lone VEVENT whose DTSTART (and DTEND, if any) are both a plain DATE or both a UTC
 * DATE-TIME, with no recurrence, DURATION or sub-component; anything else (undefined) goes to node-ical.
 * Gives what spanOf gives for such an event: the first STATUS and TRANSP count, like node-ical's. */
export function directSpan(component: Component, uid: string | undefined): EventSpan | undefined {
  if (component.children.length > 0) return undefined;
  let dtstart: ContentLine | undefined;
  let dtend: ContentLine | undefined;
  let status: string | undefined;
  let transp: string | undefined;
  for (const line of component.lines) {
    if (indirect.has(line.name)) return undefined;
    if (line.name === 'DTSTART') {
      if (dtstart) return undefined;
      dtstart = line;
    } else if (line.name === 'DTEND') {
      if (dtend) return undefined;
      dtend = line;
    } else if (line.name === 'STATUS') {
      status ??= line.value;
    } else if (line.name === 'TRANSP') {
      transp ??= line.value.trim().toUpperCase();
    }
  }
  const start = dtstart ? plainTime(dtstart) : undefined;
  if (!start) return undefined;
  const end = dtend ? plainTime(dtend) : undefined;
  if (dtend && end?.allDay !== start.allDay) return undefined;
  return makeSpan({
    uid,
    startMs: start.ms,
    ...(end ? { endMs: end.ms } : {}),
    allDay: start.allDay,
    status,
    transparent: transp === 'TRANSPARENT',
  });
}

const plainDate = /^(\d{4})(\d{2})(\d{2})$/;
const utcDateTime = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

// A DATE (`20300301`) or UTC DATE-TIME (`20300301T140000Z`) that is a real calendar moment, without
// TZID; undefined for anything else (floating and zoned times, impossible dates, leap seconds).
function plainTime(line: ContentLine): { ms: number; allDay: boolean } | undefined {
  if (/TZID/i.test(line.params)) return undefined;
  const value = line.value.trim();
  const date = plainDate.exec(value);
  if (date) {
    if (/VALUE=DATE-TIME/i.test(line.params)) return undefined;
    const ms = Date.UTC(Number(date[1]), Number(date[2]) - 1, Number(date[3]));
    return isoDay(ms).replaceAll('-', '') === value ? { ms, allDay: true } : undefined;
  }
  if (/VALUE=DATE(?!-)/i.test(line.params)) return undefined;
  const time = utcDateTime.exec(value);
  if (!time) return undefined;
  const ms = Date.UTC(Number(time[1]), Number(time[2]) - 1, Number(time[3]),
    Number(time[4]), Number(time[5]), Number(time[6]));
  const written = new Date(ms).toISOString().replaceAll(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return written === value ? { ms, allDay: false } : undefined;
}

// node-ical builds a DATE as the host's local midnight (and a DURATION from it in exact hours, so a
// DST change moves it an hour): the nearest local calendar date is the date as written.
function calendarDayMs(date: NodeDate): number {
  if (!date.dateOnly) {
    return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
  }
  const noon = new Date(date.getTime() + dayMs / 2);
  return Date.UTC(noon.getFullYear(), noon.getMonth(), noon.getDate());
}

// A floating DATE-TIME, or one whose TZID node-ical could not resolve, was read in the host's zone;
// its wall-clock time is read as UTC instead, so the result does not depend on where we run.
function instantMs(date: NodeDate): number {
  if (date.dateOnly) return calendarDayMs(date);
  if (date.tz && isKnownZone(date.tz)) return date.getTime();
  return Date.UTC(date.getFullYear(), date.getMonth(), date.getDate(),
    date.getHours(), date.getMinutes(), date.getSeconds(), date.getMilliseconds());
}

const zoneCache = new Map<string, boolean>();

function isKnownZone(tz: string): boolean {
  let known = zoneCache.get(tz);
  if (known === undefined) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
      known = true;
    } catch {
      known = false;
    }
    // Bounded: a hostile feed could name a new TZID on every line.
    if (zoneCache.size < 1000) zoneCache.set(tz, known);
  }
  return known;
}

function asNodeDate(value: unknown): NodeDate | undefined {
  return value instanceof Date && !Number.isNaN(value.getTime()) ? value : undefined;
}

// node-ical gives `{ params, val }` for a property with parameters and an array for a repeated one.
function textValue(value: unknown): string | undefined {
  const first: unknown = Array.isArray(value) ? value[0] : value;
  if (typeof first === 'string') return first;
  if (typeof first === 'number') return String(first);
  if (first && typeof first === 'object' && 'val' in first) return textValue(first.val);
  return undefined;
}

function isoDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function twoYearsAfter(ms: number): number {
  const date = new Date(ms);
  date.setUTCFullYear(date.getUTCFullYear() + 2);
  return date.getTime();
}
