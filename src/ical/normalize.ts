// Content hashes for entities and components: equal for the same content whatever the DTSTAMP,
// property order, folding or line ends, so fetch-time DTSTAMP churn (Booking.com, Airbnb) is no change.
import { createHash } from 'node:crypto';
import type { Entity } from './entities.ts';
import { type Component, contentLineText } from './split.ts';

/** The sha256 (base64url) of an entity's normalized components, in the entity's canonical order. */
export function entityHash(entity: Entity): string {
  return hash(entity.components.map(normalizedComponent).join('\n'));
}

/** The sha256 (base64url) of one normalized component, its children included. */
export function componentHash(component: Component): string {
  return hash(normalizedComponent(component));
}

// DTSTAMP is the export time on most platforms, not a change of the event (RFC 5545 §3.8.7.2).
// Lines and children are sorted so order does not count; unfolded lines hold no line ends, so
// '\n' separates them unambiguously.
function normalizedComponent(component: Component): string {
  const lines = component.lines.filter((l) => l.name !== 'DTSTAMP').map(contentLineText).sort();
  const children = component.children.map(normalizedComponent).sort();
  return [`BEGIN:${component.type}`, ...lines, ...children, `END:${component.type}`].join('\n');
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}
