// Content hashes for entities and components: equal for the same content whatever the DTSTAMP,
// property order, folding or line ends, so fetch-time DTSTAMP churn (Booking.com, Airbnb) is no change.
import { hash as oneShotHash } from 'node:crypto';
import type { Entity } from './entities.ts';
import { type Component, contentLineText } from './split.ts';

/**
 * The sha256 (base64url) of an entity's content: of its one component's normalized text, or of its
 * components' hashes in the entity's canonical order. Hashing hashes keeps a component's cost to one
 * normalization however often its entity is rehashed (a master whose override changed).
 */
export function entityHash(entity: Entity): string {
  const [only] = entity.components;
  if (only && entity.components.length === 1) return componentHash(only);
  return combineHashes(entity.components.map((c) => componentHash(c)));
}

/** The hash of several component hashes, in order: the entity hash of a multi-component entity. */
export function combineHashes(hashes: readonly string[]): string {
  return hash(hashes.join('\n'));
}

// Components are never changed once split, so their hash can live as long as they do.
const knownHashes = new WeakMap<Component, string>();

/**
 * The sha256 (base64url) of an entity's content without its UID: equal for the same events under
 * another UID, which is how an exporter that mints new UIDs on every request is recognized.
 */
export function entityContentHash(entity: Entity): string {
  return combineHashes(entity.components.map((c) => uidlessHash(c)));
}

/** The sha256 (base64url) of one normalized component without its UID (and DTSTAMP). */
export function uidlessHash(component: Component): string {
  return hash(normalizedComponent(component, uidless));
}

/** componentHash and uidlessHash of one component, normalizing it once (what analysis needs of each). */
export function componentHashes(component: Component): { hash: string; uidless: string } {
  const lines: string[] = [];
  const uids: string[] = [];
  for (const line of component.lines) {
    if (line.name === 'DTSTAMP') continue;
    const text = contentLineText(line);
    lines.push(text);
    if (line.name === 'UID') uids.push(text);
  }
  lines.sort();
  const childrenHaveUid = component.children.some(hasUid);
  const children = normalizedChildren(component, stampless);
  const uidlessChildren = childrenHaveUid ? normalizedChildren(component, uidless) : children;
  const wrap = (own: string[], kids: string) => `BEGIN:${component.type}\n${own.join('\n')}${kids}\nEND:${component.type}`;
  const hash = oneShotHash('sha256', wrap(lines, children), 'base64url');
  knownHashes.set(component, hash);
  const withoutUid = uids.length === 0 ? lines : lines.filter((line) => !uids.includes(line));
  return { hash, uidless: oneShotHash('sha256', wrap(withoutUid, uidlessChildren), 'base64url') };
}

function hasUid(component: Component): boolean {
  return component.lines.some((line) => line.name === 'UID') || component.children.some(hasUid);
}

function normalizedChildren(component: Component, ignored: ReadonlySet<string>): string {
  if (component.children.length === 0) return '';
  const children = component.children.map((c) => normalizedComponent(c, ignored)).sort();
  return `\n${children.join('\n')}`;
}

/** The sha256 (base64url) of one normalized component, its children included. */
export function componentHash(component: Component): string {
  let known = knownHashes.get(component);
  if (known === undefined) {
    known = hash(normalizedComponent(component));
    knownHashes.set(component, known);
  }
  return known;
}

// DTSTAMP is the export time on most platforms, not a change of the event (RFC 5545 §3.8.7.2).
// Lines and children are sorted so order does not count; unfolded lines hold no line ends, so
// '\n' separates them unambiguously. Recursion depth is bounded by split.ts's maxNestingDepth.
const stampless: ReadonlySet<string> = new Set(['DTSTAMP']);
const uidless: ReadonlySet<string> = new Set(['DTSTAMP', 'UID']);

function normalizedComponent(component: Component, ignored: ReadonlySet<string> = stampless): string {
  // Plain loops: this runs for every event of every changed read, and allocation is its cost.
  const lines: string[] = [];
  for (const line of component.lines) if (!ignored.has(line.name)) lines.push(contentLineText(line));
  lines.sort();
  let text = `BEGIN:${component.type}\n${lines.join('\n')}`;
  if (component.children.length > 0) {
    const children = component.children.map((c) => normalizedComponent(c, ignored)).sort();
    text += `\n${children.join('\n')}`;
  }
  return `${text}\nEND:${component.type}`;
}

// The one-shot form skips the Hash object: a third of the hashing cost for event-sized inputs.
function hash(text: string): string {
  return oneShotHash('sha256', text, 'base64url');
}
