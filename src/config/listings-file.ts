// `listingsFile` (SPEC "Configuration"): more of the connection map, in a file of its own, as YAML, JSON
// (the shape of inline `listings`: listing id → listing) or CSV (listings-csv.ts). This reads the file
// into that shape with `${VAR}` substituted, and keeps where each value came from: the schema validates
// the merged map, and each finding is named by this file and line.
import { extname } from 'node:path';
import { CORE_SCHEMA, load as loadYaml, YAMLException } from 'js-yaml';
import { isMap, LineCounter, type Node, type Pair, parseDocument } from 'yaml';
import { substituteVariables } from './env.ts';
import { type KeySegment, formatKeyPath } from './key-path.ts';
import { parseListingsCsv } from './listings-csv.ts';
import { type MapFileProblem, type MapFileRead, type MapLocator, unreadable } from './map-file.ts';
import { findNode, keyText } from './yaml-tree.ts';

type Environment = Readonly<Record<string, string | undefined>>;
/** The formats a listings file may have, by file name extension. */
export const listingsFileFormats = ['.csv', '.yaml', '.yml', '.json'] as const;

/** Reads listings file text, in the format its name says. */
export function parseListingsFile(name: string, text: string, env: Environment): MapFileRead {
  const format = extname(name).toLowerCase();
  if (format === '.csv') return parseListingsCsv(text, env);
  if (format === '.json') return parseListingsJson(text, env);
  if (format === '.yaml' || format === '.yml') return parseListingsYaml(text, env);
  return unreadable({ path: 'listingsFile',
    message: `must be a .csv, .yaml, .yml or .json file (the extension says the format), not ${format || 'a name without one'}` });
}

/**
 * YAML: a mapping of listing id → listing, as inline `listings`. js-yaml reads it (a map of 10,000 listings in
 * ~0.15 s, where the `yaml` package's document takes over a second); `yaml`, which keeps every node's line,
 * parses it again only when a problem needs a line.
 */
function parseListingsYaml(text: string, env: Environment): MapFileRead {
  const body = text.replace(/^\uFEFF/, '');
  let listings: unknown;
  try {
    // The core schema, as the config's own parser: no timestamps or other YAML 1.1 types.
    listings = loadYaml(body, { schema: CORE_SCHEMA });
  } catch (err) {
    const mark = err instanceof YAMLException ? err.mark : undefined;
    return unreadable({ path: '', ...(mark ? { line: mark.line + 1 } : {}),
      message: `invalid YAML: ${err instanceof YAMLException ? err.reason : String(err)}` });
  }
  return listingsTree(body, listings ?? undefined, env);
}

/** JSON: the same shape; JSON.parse reads it. */
function parseListingsJson(text: string, env: Environment): MapFileRead {
  const body = text.replace(/^\uFEFF/, '');
  let listings: unknown;
  try {
    listings = JSON.parse(body);
  } catch (err) {
    // V8's message quotes the text around the error but not its line: `yaml` (JSON is YAML) finds it.
    const line = parseDocument(body, { uniqueKeys: false }).errors[0]?.linePos?.[0].line;
    const message = (err as Error).message.split(/, "|\n| in JSON at position/)[0] ?? '';
    return unreadable({ path: '', ...(line === undefined ? {} : { line }), message: `invalid JSON: ${message}` });
  }
  // JSON.parse keeps the last of a key given twice: a listing exported twice (a join gone wrong) would lose
  // one without a word. js-yaml refuses duplicate keys, with the line (JSON is YAML); its other objections to
  // valid JSON, if any, are not JSON's.
  try {
    loadYaml(body, { schema: CORE_SCHEMA });
  } catch (err) {
    if (err instanceof YAMLException && /duplicated mapping key/.test(err.reason)) {
      return unreadable({ path: '', line: err.mark.line + 1, message: 'invalid JSON: a key given twice in one object' });
    }
  }
  return listingsTree(body, listings ?? undefined, env);
}

/** The parsed tree of a YAML or JSON file, checked to be a mapping, `${VAR}` substituted. Lines are found by
 * parsing the text again with `yaml` (JSON is YAML), only once a problem asks for one. */
function listingsTree(body: string, listings: unknown, env: Environment): MapFileRead {
  const isObject = typeof listings === 'object' && listings !== null && !Array.isArray(listings);
  const shape = topLevelProblem(listings, isObject, 1);
  if (shape) return unreadable(shape);
  // js-yaml shares the object an alias names: nested aliases would make every walk of the tree (this one, the
  // schema's) exponential. A listings file is generated: it needs none, and one is refused.
  if (hasSharedNodes(listings)) {
    return unreadable({ path: '', message: 'invalid YAML: aliases (*name) are not accepted in a listings file' });
  }
  let tree: { root: Node; lines: LineCounter; byId: Map<string, Pair> } | undefined;
  const locate: MapLocator = (path) => {
    tree ??= (() => {
      const lines = new LineCounter();
      const root = parseDocument(body, { lineCounter: lines, uniqueKeys: false }).contents as Node;
      // The listings indexed once: a problem in each of 10,000 listings must not search the map each time.
      const byId = new Map<string, Pair>();
      if (isMap(root)) {
        for (const pair of root.items) if (!byId.has(keyText(pair.key))) byId.set(keyText(pair.key), pair);
      }
      return { root, lines, byId };
    })();
    const { lines, byId } = tree;
    const lineOf = (node: Node | undefined) => (node?.range ? lines.linePos(node.range[0]).line : undefined);
    const pair = byId.get(String(path[0]));
    if (pair === undefined) return lineOf(tree.root);
    // As findNode: the key of the deepest entry the path reaches (the listing's own, when nothing under it).
    const node = path.length > 1 && pair.value ? findNode(pair.value as Node, path.slice(1)) : undefined;
    return lineOf(node === undefined || node === pair.value ? (pair.key as Node) : node);
  };
  const problems: MapFileProblem[] = [];
  substituteIn(listings, [], env, (path, message) => {
    problems.push({ path: listingsKey(path), line: locate(path), message });
  });
  return { listings: listings as Record<string, unknown>, locate, problems };
}

/** True when one object or array is reached twice in the tree (a YAML alias). */
function hasSharedNodes(root: unknown): boolean {
  const seen = new Set<object>();
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value !== 'object' || value === null) continue;
    if (seen.has(value)) return true;
    seen.add(value);
    for (const child of Object.values(value)) if (typeof child === 'object' && child !== null) stack.push(child);
  }
  return false;
}

/** Substitutes `${VAR}` in every string value of a parsed JSON tree, in place. */
function substituteIn(value: unknown, path: KeySegment[], env: Environment,
  report: (path: KeySegment[], message: string) => void): void {
  if (typeof value !== 'object' || value === null) return;
  const entries: Array<[KeySegment, unknown]> = Array.isArray(value)
    ? value.map((v, i) => [i, v])
    : Object.entries(value);
  for (const [key, child] of entries) {
    if (typeof child === 'string') {
      if (!child.includes('${')) continue;
      const result = substituteVariables(child, env);
      if (result.ok) (value as Record<KeySegment, unknown>)[key] = result.value;
      else for (const message of result.problems) report([...path, key], message);
    } else substituteIn(child, [...path, key], env, report);
  }
}

/** A top level that is not a mapping of listings: empty (a truncated export, most likely), or a list. */
function topLevelProblem(root: unknown, isMapping: boolean, line: number | undefined): MapFileProblem | undefined {
  if (root === undefined) {
    return { path: '', message: 'the file is empty (write {} for a map without listings)' };
  }
  if (!isMapping) {
    return { path: '', ...(line === undefined ? {} : { line }),
      message: 'the top level must be a mapping of listing id → listing, as inline listings' };
  }
  return undefined;
}

function listingsKey(path: readonly KeySegment[]): string {
  return formatKeyPath(['listings', ...path]);
}
