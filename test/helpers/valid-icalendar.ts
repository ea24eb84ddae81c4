// Is a body the sidecar assembled valid iCalendar as far as time zones go? ical.js (an independent parser)
// reads it as one VCALENDAR, and every TZID a component names resolves to a VTIMEZONE in that VCALENDAR
// (RFC 5545 §3.2.19; SPEC "Deltas are valid iCalendar"; issue 11: a tombstone's TZID outlived its VTIMEZONE).
import assert from 'node:assert/strict';
import ICAL from 'ical.js';

/** One property naming a TZID that does not resolve in its calendar. */
export type UnresolvedTzid = {
  component: string;
  uid: string | undefined;
  deleted: boolean;
  property: string;
  tzid: string;
};

/** Parses `text` with ical.js; fails unless it is exactly one VCALENDAR. */
export function parseICalendar(text: string): ICAL.Component {
  const jcal: unknown = ICAL.parse(text);
  // ICAL.parse gives one jCal component, or an array of them when the text holds several.
  assert.ok(Array.isArray(jcal) && typeof jcal[0] === 'string', 'one top-level component');
  const root = new ICAL.Component(jcal as unknown[]);
  assert.equal(root.name, 'vcalendar');
  return root;
}

/** Every TZID reference in `text` without a VTIMEZONE of that TZID in the same VCALENDAR, or one that
 * ical.js does not resolve to it (a floating time). */
export function unresolvedTzids(text: string): UnresolvedTzid[] {
  const root = parseICalendar(text);
  const defined = new Set(root.getAllSubcomponents('vtimezone').map((tz) => String(tz.getFirstPropertyValue('tzid'))));
  const problems: UnresolvedTzid[] = [];
  const visit = (component: ICAL.Component, top: ICAL.Component) => {
    for (const property of component.getAllProperties()) {
      const tzid = property.getParameter('tzid');
      if (typeof tzid !== 'string') continue;
      const resolved = defined.has(tzid) && property.getValues().every((value: unknown) => {
        const time = value instanceof ICAL.Period ? value.start : value;
        return !(time instanceof ICAL.Time) || (time.zone?.tzid === tzid && Number.isFinite(time.toUnixTime()));
      });
      if (!resolved) {
        const uid = top.getFirstPropertyValue('uid');
        problems.push({ component: top.name, uid: typeof uid === 'string' ? uid : undefined,
          deleted: top.getFirstPropertyValue('status') === 'DELETED', property: property.name, tzid });
      }
    }
    for (const child of component.getAllSubcomponents()) visit(child, top);
  };
  for (const component of root.getAllSubcomponents()) {
    if (component.name !== 'vtimezone') visit(component, component);
  }
  return problems;
}

/** Asserts that ical.js parses `text` as one VCALENDAR in which every TZID reference resolves to a
 * VTIMEZONE of the same VCALENDAR. */
export function assertValidICalendar(text: string, label = 'calendar'): void {
  assert.deepEqual(unresolvedTzids(text), [], `${label}: every TZID has its VTIMEZONE`);
}
