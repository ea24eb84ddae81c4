// Groups top-level components into entities (draft -13: a recurring master and its RECURRENCE-ID
// overrides are one entity), drops superseded duplicates and gives UID-less components a content identity.
// The grouping runs on small member records, so parsed components and their compact summaries
// (analyze.ts) group by exactly the same rules.
import { componentHash } from './normalize.ts';
import { type Component, type ContentLine, parameterValue, propertyLine, propertyValue } from './split.ts';

/** All components sharing one UID, master first then overrides by RECURRENCE-ID. */
export type Entity = { id: string; uid?: string; components: Component[] };

/** What grouping needs of one component. */
export type GroupMember = {
  type: string;
  /** The trimmed UID, when there is one. */
  uid: string | undefined;
  /** The RECURRENCE-ID compared by date (an all-day master) and by value + TZID (a timed one). */
  rid: { date: string; full: string } | undefined;
  /** DTSTART is a DATE: with no RECURRENCE-ID, this is an all-day master. */
  dateStart: boolean;
  sequence: number;
  /** The component's content hash: the identity of a UID-less component. */
  hash(): string;
};

/** A group of members sharing one id, canonically ordered. */
export type MemberGroup<T> = { id: string; uid?: string; members: T[] };

/** The grouping facts of a parsed component. */
export function memberOf(component: Component): GroupMember {
  const ridLine = propertyLine(component, 'RECURRENCE-ID');
  return {
    type: component.type,
    uid: propertyValue(component, 'UID')?.trim() || undefined,
    rid: ridLine ? recurrenceKeys(ridLine) : undefined,
    dateStart: isDateLine(propertyLine(component, 'DTSTART')),
    sequence: Number.parseInt(propertyValue(component, 'SEQUENCE') ?? '', 10) || 0,
    hash: () => componentHash(component),
  };
}

/** Groups components by UID in file order of first appearance; never throws. */
export function groupEntities(components: Component[]): Entity[] {
  const byMember = new Map<GroupMember, Component>();
  const members = components.map((component) => {
    const member = memberOf(component);
    byMember.set(member, component);
    return member;
  });
  return groupMembers(members).map((group) => ({
    id: group.id,
    ...(group.uid === undefined ? {} : { uid: group.uid }),
    components: group.members.map((m) => byMember.get(m) as Component),
  }));
}

/** Groups members by UID (a content identity without one), in file order of first appearance. */
export function groupMembers<T extends GroupMember>(members: readonly T[]): MemberGroup<T>[] {
  const byId = new Map<string, MemberGroup<T>>();
  for (const member of members) {
    // Exchange exports events without UID: a content identity keeps them stable across fetches.
    const id = member.uid ?? `content:${member.hash()}`;
    const group = byId.get(id);
    if (group) group.members.push(member);
    else if (member.uid === undefined) byId.set(id, { id, members: [member] });
    else byId.set(id, { id, uid: member.uid, members: [member] });
  }
  const groups = [...byId.values()];
  for (const group of groups) group.members = resolveDuplicates(group.members);
  return groups;
}

// Same type and same normalized RECURRENCE-ID is one instance: the highest SEQUENCE wins, ties go
// to the later one in the file (RFC 5545 §3.8.7.4). The result is sorted so hashes ignore file order.
function resolveDuplicates<T extends GroupMember>(entries: T[]): T[] {
  // Most entities are one component: nothing to resolve or order.
  if (entries.length === 1) return entries;
  // Exchange 2010 gives an all-day (VALUE=DATE) master's moved instance a DATE-TIME RECURRENCE-ID
  // with a Windows TZID; against a DATE master only the date counts. Otherwise value and TZID count.
  const masterIsDate = entries.some((member) => member.rid === undefined && member.dateStart);
  const winners = new Map<string, { member: T; rid: string }>();
  for (const member of entries) {
    const rid = member.rid === undefined ? '' : masterIsDate ? member.rid.date : member.rid.full;
    const key = `${member.type} ${rid}`;
    const held = winners.get(key);
    if (!held || member.sequence >= held.member.sequence) winners.set(key, { member, rid });
  }
  return [...winners.values()].sort(compareMembers).map((m) => m.member);
}

// Master (no RECURRENCE-ID) first, then overrides by normalized RECURRENCE-ID, then type: a total,
// file-order-free order.
function compareMembers(a: { member: GroupMember; rid: string }, b: { member: GroupMember; rid: string }): number {
  if ((a.rid === '') !== (b.rid === '')) return a.rid === '' ? -1 : 1;
  return compareText(a.rid, b.rid) || compareText(a.member.type, b.member.type);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A RECURRENCE-ID's two comparison keys: by date only, and by value + TZID (a DATE value: by date). */
export function recurrenceKeys(line: ContentLine): { date: string; full: string } {
  const value = line.value.trim().toUpperCase();
  const range = parameterValue(line.params, 'RANGE')?.toUpperCase() ?? '';
  const date = `${value.slice(0, 8)};${range}`;
  return { date, full: isDateLine(line) ? date : `${value};${parameterValue(line.params, 'TZID') ?? ''};${range}` };
}

/** True for a DATE value (VALUE=DATE, or eight digits). */
export function isDateLine(line: { params: string; value: string } | undefined): boolean {
  if (!line) return false;
  return parameterValue(line.params, 'VALUE')?.toUpperCase() === 'DATE' || /^\d{8}$/.test(line.value.trim());
}
