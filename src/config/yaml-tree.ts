// Walking a parsed YAML document (the `yaml` package's tree) by key path: the string values with their
// paths, for `${VAR}` substitution, and the node a path points at, for the line of a problem.
import { isAlias, isMap, isScalar, isSeq, type Node } from 'yaml';
import type { KeySegment } from './key-path.ts';

/** A string scalar as the tree holds it: its value may be replaced in place. */
export type StringScalar = { value: string; range?: readonly number[] | null };

/** Calls `visit` for every string scalar value (never keys), with its key path. */
export function visitStrings(
  node: unknown,
  path: KeySegment[],
  visit: (scalar: StringScalar, path: KeySegment[]) => void,
): void {
  // Aliases are skipped: the anchored node is visited (and substituted) where it is defined.
  if (isAlias(node)) return;
  if (isMap(node)) {
    for (const pair of node.items) visitStrings(pair.value, [...path, keyText(pair.key)], visit);
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      visitStrings(item, [...path, i], visit);
    });
  } else if (isScalar(node) && typeof node.value === 'string') {
    visit(node as typeof node & { value: string }, path);
  }
}

/** The text of a mapping key. */
export function keyText(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

/**
 * The node that a key path points at: the key itself for map entries (so the line is the
 * key's), the item for sequence entries. Where the path runs out (a missing key), the
 * deepest node found: the parent mapping's key.
 */
export function findNode(root: Node, path: readonly PropertyKey[]): Node | undefined {
  let node: unknown = root;
  let found: Node = root;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => keyText(p.key) === String(segment));
      if (!pair) break;
      if (isScalar(pair.key)) found = pair.key;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment];
      if (!item) break;
      if (isScalar(item) || isMap(item) || isSeq(item)) found = item;
      node = item;
    } else break;
  }
  return found;
}

/** A key that appears twice in one mapping: its path, and the lines of both. */
export type DuplicateKey = { path: KeySegment[]; node: Node; firstNode: Node };

/**
 * Every key that appears twice in one mapping, in one linear pass. The `yaml` package's own check
 * (`uniqueKeys`) compares each key with every earlier one: a map of 10,000 listings took seconds.
 */
export function duplicateKeys(root: unknown): DuplicateKey[] {
  const found: DuplicateKey[] = [];
  const walk = (node: unknown, path: KeySegment[]) => {
    if (isMap(node)) {
      const seen = new Map<string, Node>();
      for (const pair of node.items) {
        const key = keyText(pair.key);
        const keyNode = pair.key as Node;
        const first = seen.get(key);
        if (first === undefined) seen.set(key, keyNode);
        else found.push({ path: [...path, key], node: keyNode, firstNode: first });
        walk(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        walk(item, [...path, i]);
      });
    }
  };
  walk(root, []);
  return found;
}
