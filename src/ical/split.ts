// Splits iCalendar text into the VCALENDAR frame (its properties and every VTIMEZONE) and its
// top-level components, keeping raw parameter and value text so answers keep the upstream's bytes.
// Tolerant by design: real feeds have blank lines, junk lines and unbalanced BEGIN/END.

/** One unfolded content line (RFC 5545 §3.1): upper-case name, raw `;param=…` text, raw escaped value. */
export type ContentLine = { name: string; params: string; value: string };

/** A component with its own properties and its nested components (VALARM, STANDARD, DAYLIGHT…). */
export type Component = { type: string; lines: ContentLine[]; children: Component[] };

/** What splitCalendar found; `complete` is true only when END:VCALENDAR was seen. */
export type SplitCalendar = {
  complete: boolean;
  properties: ContentLine[];
  timezones: Component[];
  components: Component[];
  skippedLines: number;
};

/** The top-level component types that carry entities (SPEC "entity"). */
export const entityTypes: ReadonlySet<string> = new Set(['VEVENT', 'VTODO', 'VJOURNAL', 'VFREEBUSY']);

// RFC 5545 §3.1: name = iana-token / x-name, both letters, digits and '-'.
const namePattern = /^[A-Za-z0-9-]+$/;

/** Components nest at most this deep; deeper BEGIN/END lines are kept as plain lines of the deepest one,
 * so no feed can drive a recursion (hashing, serializing) past the stack (3,000 nested `BEGIN:X` seen). */
export const maxNestingDepth = 32;

/** What scanCalendar found besides the components it handed over. */
export type CalendarFrame = Omit<SplitCalendar, 'components'>;

/** Splits a decoded feed into frame and components; never throws. */
export function splitCalendar(text: string): SplitCalendar {
  const components: Component[] = [];
  const frame = scanCalendar(text, (component) => components.push(component));
  return { ...frame, components };
}

/**
 * splitCalendar as a stream: each top-level entity component is handed to `onComponent` as soon as it
 * closes, and nothing but the frame is kept, so a feed of 100k events is never held as parsed objects.
 * Lines are unfolded one at a time (no array of every line). Never throws.
 */
export function scanCalendar(text: string, onComponent: (component: Component) => void): CalendarFrame {
  const result: CalendarFrame = { complete: false, properties: [], timezones: [], skippedLines: 0 };
  let inCalendar = false;
  const stack: Component[] = [];
  // BEGIN lines past maxNestingDepth not closed yet: their END lines are plain lines too.
  let overflow = 0;

  const close = (depth: number) => {
    while (stack.length > depth) {
      const done = stack.pop() as Component;
      const parent = stack.at(-1);
      // A VTIMEZONE belongs to the frame wherever it appears (iCloud puts it after the events).
      if (done.type === 'VTIMEZONE') result.timezones.push(done);
      else if (parent) parent.children.push(done);
      else if (entityTypes.has(done.type)) onComponent(done);
      // A top-level component that is neither frame nor entity has no place in a snapshot.
      else result.skippedLines += 1;
    }
  };

  forEachUnfolded(text, (raw) => {
    const line = parseContentLine(raw);
    if (!line) {
      // Blank lines (Airbnb 0.8.8) and lines without a colon (a stray `X`) are invalid but common.
      if (inCalendar) result.skippedLines += 1;
      return true;
    }
    const value = line.name === 'BEGIN' || line.name === 'END' ? line.value.trim().toUpperCase() : '';
    if (!inCalendar) {
      if (line.name === 'BEGIN' && value === 'VCALENDAR') inCalendar = true;
      return true;
    }
    if (line.name === 'BEGIN' && value === 'VCALENDAR') {
      // A second header inside the calendar (feeds merged by concatenation) is noise, not a component.
      result.skippedLines += 1;
    } else if (line.name === 'BEGIN' && (entityTypes.has(value) || value === 'VTIMEZONE')) {
      // An entity or VTIMEZONE never nests: a new one closes an unterminated predecessor.
      close(0);
      overflow = 0;
      stack.push({ type: value, lines: [], children: [] });
    } else if (line.name === 'BEGIN') {
      const top = stack.at(-1);
      if (top && (overflow > 0 || stack.length >= maxNestingDepth)) {
        overflow += 1;
        top.lines.push(line);
      } else {
        stack.push({ type: value, lines: [], children: [] });
      }
    } else if (line.name === 'END' && value === 'VCALENDAR') {
      close(0);
      result.complete = true;
      return false;
    } else if (line.name === 'END' && overflow > 0) {
      overflow -= 1;
      stack.at(-1)?.lines.push(line);
    } else if (line.name === 'END') {
      const depth = stack.findLastIndex((c) => c.type === value);
      if (depth === -1) result.skippedLines += 1;
      else close(depth);
    } else {
      (stack.at(-1)?.lines ?? result.properties).push(line);
    }
    return true;
  });
  close(0);
  return result;
}

/** The first property named `name` (upper-case) of a component, if any. */
export function propertyLine(component: Component, name: string): ContentLine | undefined {
  return component.lines.find((l) => l.name === name);
}

/** The raw value of the first property named `name` (upper-case), if any. */
export function propertyValue(component: Component, name: string): string | undefined {
  return propertyLine(component, name)?.value;
}

/** The value of parameter `name` in a raw `;A=b;C="d"` text, unquoted; the first one wins. */
export function parameterValue(params: string, name: string): string | undefined {
  for (const part of splitOutsideQuotes(params, ';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim().toUpperCase() === name) {
      return part.slice(eq + 1).replace(/^"(.*)"$/, '$1');
    }
  }
  return undefined;
}

/** A raw `;A=b;C="d"` text without its `name` parameters (upper-case name), the others as they were. */
export function withoutParameter(params: string, name: string): string {
  // The text before the first ';' is empty: params always start with one.
  const kept = splitOutsideQuotes(params, ';').slice(1).filter((part) => {
    const eq = part.indexOf('=');
    return (eq === -1 ? part : part.slice(0, eq)).trim().toUpperCase() !== name;
  });
  return kept.map((part) => `;${part}`).join('');
}

/** The content line text of `line`, unfolded: `NAME;params:value`. */
export function contentLineText(line: ContentLine): string {
  return `${line.name}${line.params}:${line.value}`;
}

// RFC 5545 §3.1 unfolding; CRLF, LF and lone CR all end a line because real feeds mix them. Calls
// `visit` with each logical line, in order, until it returns false; the final line end adds no line.
function forEachUnfolded(text: string, visit: (line: string) => boolean): void {
  let pending: string | undefined;
  let pos = 0;
  const length = text.length;
  while (pos < length) {
    let end = pos;
    while (end < length) {
      const c = text.charCodeAt(end);
      if (c === 0x0a || c === 0x0d) break;
      end += 1;
    }
    const physical = text.slice(pos, end);
    pos = end;
    if (pos < length) pos += text.charCodeAt(pos) === 0x0d && text.charCodeAt(pos + 1) === 0x0a ? 2 : 1;
    const first = physical.charCodeAt(0);
    if ((first === 0x20 || first === 0x09) && pending !== undefined) {
      pending += physical.slice(1);
      continue;
    }
    if (pending !== undefined && !visit(pending)) return;
    pending = physical;
  }
  if (pending !== undefined) visit(pending);
}

/** One unfolded line as a ContentLine, or undefined for junk. The value colon is the first ':' outside a
 * quoted parameter value (`CN="Doe: John"`); a line whose only colon is inside quotes (Exchange 2010
 * `DTSTART;TZID="W. Europe…:2020…"`) has no value: junk. */
export function parseContentLine(raw: string): ContentLine | undefined {
  const colon = raw.indexOf(':');
  if (colon <= 0) return undefined;
  const semicolon = raw.indexOf(';');
  const nameEnd = semicolon !== -1 && semicolon < colon ? semicolon : colon;
  if (nameEnd === 0) return undefined;
  const name = raw.slice(0, nameEnd);
  if (!namePattern.test(name)) return undefined;
  // The common case: no quote before the first colon, which is then the value colon.
  const quote = raw.indexOf('"', nameEnd);
  if (quote === -1 || quote > colon) {
    return { name: name.toUpperCase(), params: raw.slice(nameEnd, colon), value: raw.slice(colon + 1) };
  }
  let quoted = false;
  for (let i = nameEnd; i < raw.length; i += 1) {
    const c = raw[i];
    if (c === '"') quoted = !quoted;
    else if (c === ':' && !quoted) {
      return { name: name.toUpperCase(), params: raw.slice(nameEnd, i), value: raw.slice(i + 1) };
    }
  }
  return undefined;
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i += 1) {
    if (text[i] === '"') quoted = !quoted;
    else if (text[i] === separator && !quoted) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}
