// Reads the YAML configuration, substitutes `${VAR}`, validates it with the schema and
// freezes it. Every problem comes back at once, with its key path and line, in words an
// operator understands; nothing here throws for a bad file.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { substituteVariables } from './env.ts';
import { formatKeyPath, type KeySegment } from './key-path.ts';
import { parseListingsFile } from './listings-file.ts';
import type { MapLocator } from './map-file.ts';
import { duplicateKeys, findNode, visitStrings } from './yaml-tree.ts';
import { type Config, configSchema } from './schema.ts';

/** One thing wrong with a configuration: where (dotted key path; `file` when it is in the listings file,
 * not the config file; 1-based line) and what. */
export type ConfigProblem = { path: string; line?: number; file?: string; message: string };

/** Where the connection map came from: how many listings inline, and the listings file with its own. */
export type MapSources = { inline: number; listingsFile?: { path: string; listings: number } };

/** A validated, frozen configuration, or every problem found. */
export type ConfigResult =
  | { ok: true; config: Config; sourceName: string; map: MapSources }
  | { ok: false; problems: ConfigProblem[] };

/** What parseConfigText needs besides the text. */
export type ParseConfigOptions = {
  /** Where `${VAR}` values come from. */
  env: Readonly<Record<string, string | undefined>>;
  /** The file name used in messages. */
  sourceName: string;
  /** Directory that a relative `store` or `listingsFile` path is resolved against: the config file's. */
  baseDir: string;
  /** Reads the listings file (default: from disk); throws as readFileSync does. */
  readFile?: (path: string) => string;
  /** False: `listingsFile` is not read, and the map is the inline listings alone (`icalpush reload` needs
   * only where the sidecar listens, whatever state the listings file is in). Default true. */
  listingsFile?: boolean;
};

/** Reads and validates the configuration file at `path`. */
export async function loadConfigFile(
  path: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
  options: Pick<ParseConfigOptions, 'listingsFile'> = {},
): Promise<ConfigResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    return {
      ok: false,
      problems: [{ path: '', message: `cannot read the configuration file: ${readFailure(err)}` }],
    };
  }
  return parseConfigText(text, { ...options, env, sourceName: path, baseDir: dirname(resolve(path)) });
}

/** Parses, substitutes and validates configuration text. */
export function parseConfigText(text: string, options: ParseConfigOptions): ConfigResult {
  const lineCounter = new LineCounter();
  // Editors on Windows may save a BOM; it must never become part of the first key.
  const doc = parseDocument(text.replace(/^\uFEFF/, ''), { lineCounter, prettyErrors: true, uniqueKeys: false });
  const lineOf = (node: { range?: readonly number[] | null } | null | undefined) =>
    node?.range ? lineCounter.linePos(node.range[0] ?? 0).line : undefined;

  const problems: ConfigProblem[] = doc.errors.map((err) => ({
    path: '',
    line: err.linePos?.[0].line,
    message: `invalid YAML: ${yamlMessage(err.message)}`,
  }));
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) {
    if (problems.length === 0) {
      problems.push({
        path: '',
        message: 'the file is empty: it needs at least upstream: and feeds:',
      });
    }
    return { ok: false, problems };
  }
  if (!isMap(root)) {
    problems.push({
      path: '',
      line: lineOf(root),
      message: 'the top level must be a mapping of keys (listen:, upstream:, feeds:, …)',
    });
    return { ok: false, problems };
  }
  const duplicates = duplicateKeys(root);
  for (const duplicate of duplicates) {
    problems.push({ path: formatKeyPath(duplicate.path), line: lineOf(duplicate.node),
      message: `appears twice in this mapping (first on line ${lineOf(duplicate.firstNode)}): keep one` });
  }

  // Substitute in the document tree rather than the text: the key path and line of each
  // reference stay known, a value can never inject YAML, and keys are left alone.
  const variablePaths = new Map<string, string[]>();
  const failedPaths: string[] = [];
  visitStrings(root, [], (scalar, path) => {
    if (!scalar.value.includes('${')) return;
    const result = substituteVariables(scalar.value, options.env);
    const key = formatKeyPath(path);
    if (result.ok) {
      scalar.value = result.value;
      if (result.variables.length > 0) variablePaths.set(key, result.variables);
      return;
    }
    failedPaths.push(key);
    for (const message of result.problems)
      problems.push({ path: key, line: lineOf(scalar), message });
  });

  // The tree after a syntax error is a guess; schema findings on it would mislead.
  if (doc.errors.length > 0 || duplicates.length > 0) return { ok: false, problems: sortProblems(problems) };

  let input: unknown;
  try {
    input = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    problems.push({ path: '', message: `invalid YAML: ${(err as Error).message}` });
    return { ok: false, problems: sortProblems(problems) };
  }

  const map = mergeListingsFile(input as Record<string, unknown>, options, (path) => lineOf(findNode(root, path)));
  problems.push(...map.problems);
  const locate = (path: readonly KeySegment[]): Place => {
    if (path[0] === 'listings' && map.fromFile?.has(String(path[1]))) {
      return { file: map.file, line: map.locateInFile?.(path.slice(1)) };
    }
    return { line: lineOf(findNode(root, path)) };
  };
  const rawStore = (input as Record<string, unknown>).store;
  const storeProblem = typeof rawStore === 'string' ? redisUrlProblem(rawStore) : undefined;
  if (storeProblem !== undefined) problems.push({ path: 'store', ...locate(['store']), message: storeProblem });

  const parsed = configSchema.safeParse(input, { error: operatorMessage, reportInput: true });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      for (const problem of issueProblems(issue, locate)) {
        // A failed `${VAR}` already explains this value; a second problem would only echo it.
        if (failedPaths.some((p) => isAtOrUnder(problem.path, p))) continue;
        // The same for a value the listings file already reported.
        if (problem.file !== undefined && map.problems.some((p) => p.file === problem.file && p.path !== ''
          && isAtOrUnder(problem.path, p.path))) continue;
        const variables = variablePaths.get(problem.path);
        if (variables) {
          problem.message += ` (value from ${variables.map((v) => `\${${v}}`).join(', ')})`;
        }
        problems.push(problem);
      }
    }
  }
  if (problems.length > 0 || !parsed.success) {
    return { ok: false, problems: sortProblems(dedupe(problems)) };
  }

  const config = { ...parsed.data, store: resolveStore(parsed.data.store, options.baseDir),
    ...(map.file === undefined ? {} : { listingsFile: map.file }) };
  const sources: MapSources = { inline: map.inline,
    ...(map.file === undefined || map.fromFile === undefined ? {}
      : { listingsFile: { path: map.file, listings: map.fromFile.size } }) };
  return { ok: true, config: deepFreeze(config), sourceName: options.sourceName, map: sources };
}

/** Where a problem is: the config file (no `file`) or the listings file, and the line. */
type Place = { file?: string | undefined; line?: number | undefined };

/** What merging the listings file into the inline listings left. */
type Merged = {
  problems: ConfigProblem[];
  /** Inline listings. */
  inline: number;
  /** The listings file's absolute path, when there is one. */
  file?: string;
  /** The ids the listings file defined, and where its values are. */
  fromFile?: ReadonlySet<string>;
  locateInFile?: MapLocator;
};

/**
 * Reads `listingsFile` (relative to the config file) and adds its listings to `input.listings`, in place. A
 * listing defined in both is a problem naming both places; the file's own problems carry its name and lines.
 */
function mergeListingsFile(input: Record<string, unknown>, options: ParseConfigOptions,
  configLine: (path: readonly KeySegment[]) => number | undefined): Merged {
  const inline = input.listings;
  const inlineCount = typeof inline === 'object' && inline !== null ? Object.keys(inline).length : 0;
  const name = input.listingsFile;
  if (typeof name !== 'string' || name === '') return { problems: [], inline: inlineCount };
  const file = isAbsolute(name) ? name : resolve(options.baseDir, name);
  if (options.listingsFile === false) return { problems: [], inline: inlineCount, file };
  const at = { path: 'listingsFile', line: configLine(['listingsFile']) };
  let text: string;
  try {
    text = (options.readFile ?? ((path: string) => readFileSync(path, 'utf8')))(file);
  } catch (err) {
    return { problems: [{ ...at, message: `cannot read ${file}: ${readFailure(err)}` }], inline: inlineCount, file };
  }
  const read = parseListingsFile(file, text, options.env);
  const problems: ConfigProblem[] = read.problems.map((p) => (p.path === 'listingsFile' ? { ...p, ...at } : { ...p, file }));
  if (inline !== undefined && (typeof inline !== 'object' || inline === null || Array.isArray(inline))) {
    // The schema says what is wrong with the inline listings; the file's are kept out of that finding.
    return { problems, inline: inlineCount, file };
  }
  // Without a prototype, so that a listing id such as `__proto__` is a key here, refused by the schema.
  const merged: Record<string, unknown> = Object.assign(Object.create(null) as Record<string, unknown>,
    inline as Record<string, unknown> | undefined);
  const fromFile = new Set<string>();
  for (const [id, listing] of Object.entries(read.listings)) {
    if (id === '__proto__') {
      // The schema's record would drop it without a word.
      problems.push({ path: formatKeyPath(['listings', id]), file, ...lineOf(read.locate([id])),
        message: 'is not a usable listing id: __proto__ is reserved' });
      continue;
    }
    if (Object.hasOwn(merged, id)) {
      const inlineLine = configLine(['listings', id]);
      problems.push({ path: formatKeyPath(['listings', id]), ...(inlineLine === undefined ? {} : { line: inlineLine }),
        message: `is defined twice: inline in ${options.sourceName}${lineText(inlineLine)} `
          + `and in ${file}${lineText(read.locate([id]))}: keep one` });
      continue;
    }
    merged[id] = listing;
    fromFile.add(id);
  }
  input.listings = merged;
  return { problems, inline: inlineCount, file, fromFile, locateInFile: read.locate };
}

function lineOf(line: number | undefined): { line?: number } {
  return line === undefined ? {} : { line };
}

function lineText(line: number | undefined): string {
  return line === undefined ? '' : ` line ${line}`;
}

/** Renders problems one per line: `path.to.key: what is wrong (proxy.yaml line 12)`. */
export function formatProblems(problems: readonly ConfigProblem[], sourceName: string): string {
  return problems
    .map((p) => {
      const file = p.file ?? sourceName;
      const where = p.line === undefined ? file : `${file} line ${p.line}`;
      return `${p.path === '' ? '' : `${p.path}: `}${p.message} (${where})`;
    })
    .join('\n');
}

function isAtOrUnder(path: string, parent: string): boolean {
  return path === parent || path.startsWith(`${parent}.`) || path.startsWith(`${parent}[`);
}

/** Turns one zod issue into problems: one per unknown key, otherwise one. */
function issueProblems(
  issue: z.core.$ZodIssue,
  locate: (path: readonly KeySegment[]) => Place,
): ConfigProblem[] {
  const path = issue.path.map((s) => (typeof s === 'symbol' ? String(s) : s));
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(path);
    return issue.keys.map((key) => {
      const close = closestKey(key, known);
      const hint = close
        ? ` (did you mean "${close}"?)`
        : known.length > 0
          ? ` (known keys: ${known.join(', ')})`
          : '';
      return {
        path: formatKeyPath([...path, key]),
        ...definedOnly(locate([...path, key])),
        message: `unknown key${hint}`,
      };
    });
  }
  // A missing key reaches here as invalid_type with no input, whatever message the schema
  // gives for a wrong type.
  const message =
    issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message;
  return [{ path: formatKeyPath(path), ...definedOnly(locate(path)), message }];
}

/** zod's messages for the issues that the schema gives no message of its own. */
const operatorMessage: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) return 'is required';
      const expected = expectedText[issue.expected] ?? `must be ${issue.expected}`;
      return `${expected} (got ${inputText(issue.input)})`;
    }
    case 'too_small': {
      const min = Number(issue.minimum);
      if (issue.origin === 'string') {
        return min <= 1 ? 'must not be empty' : `must be at least ${min} characters`;
      }
      if (issue.origin === 'array' || issue.origin === 'set') {
        return min <= 1 ? 'must not be empty' : `must have at least ${min} entries`;
      }
      return issue.inclusive === false ? `must be more than ${min}` : `must be at least ${min}`;
    }
    case 'too_big': {
      const max = Number(issue.maximum);
      if (issue.origin === 'string') return `must be at most ${max} characters`;
      if (issue.origin === 'array' || issue.origin === 'set') {
        return `must have at most ${max} entries`;
      }
      return issue.inclusive === false ? `must be less than ${max}` : `must be at most ${max}`;
    }
    case 'invalid_value':
      return issue.values.length === 1
        ? `must be ${String(issue.values[0])}`
        : `must be one of ${issue.values.map(String).join(', ')}`;
    case 'invalid_format':
      return issue.format === 'regex' ? 'has the wrong format' : `must be a valid ${issue.format}`;
    case 'not_multiple_of':
      return `must be a multiple of ${String(issue.divisor)}`;
    case 'unrecognized_keys':
      return 'unknown key';
    case 'invalid_key':
      // The key's own schema says why (e.g. what a listing id may contain).
      return issue.issues[0]?.message ?? 'is not an accepted key';
    case 'invalid_union':
      return 'is none of the accepted forms';
    case 'invalid_element':
      return 'has an invalid entry';
    default:
      return 'is not valid';
  }
};

const expectedText: Record<string, string> = {
  string: 'must be a string',
  number: 'must be a number',
  int: 'must be a whole number',
  boolean: 'must be true or false',
  array: 'must be a list',
  object: 'must be a mapping (key: value)',
  record: 'must be a mapping (key: value)',
};

/** The kind of a value, never the value: it may be a secret from the environment. */
function inputText(input: unknown): string {
  if (input === null) return 'an empty value';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  if (typeof input === 'number') return Number.isInteger(input) ? 'a whole number' : 'a number';
  if (typeof input === 'boolean') return `${input}`;
  if (typeof input === 'string') return 'a string';
  return typeof input;
}

/** The keys the schema allows in the mapping at `path` (for did-you-mean). */
function knownKeysAt(path: readonly KeySegment[]): string[] {
  let schema: z.core.$ZodType | undefined = unwrap(configSchema);
  for (const segment of path) {
    if (!schema) return [];
    const def: z.core.$ZodTypeDef = schema._zod.def;
    if (def.type === 'object') {
      schema = (def as z.core.$ZodObjectDef).shape[String(segment)];
    } else if (def.type === 'array') {
      schema = (def as z.core.$ZodArrayDef).element;
    } else if (def.type === 'record') {
      schema = (def as z.core.$ZodRecordDef).valueType;
    } else return [];
    schema = schema && unwrap(schema);
  }
  if (schema?._zod.def.type !== 'object') return [];
  return Object.keys((schema._zod.def as z.core.$ZodObjectDef).shape);
}

function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let current = schema;
  for (;;) {
    const def: z.core.$ZodTypeDef = current._zod.def;
    if (def.type === 'optional' || def.type === 'default' || def.type === 'prefault') {
      current = (def as z.core.$ZodOptionalDef).innerType;
    } else if (def.type === 'pipe') {
      current = (def as z.core.$ZodPipeDef).in;
    } else return current;
  }
}

/** The known key within a small edit distance of `key`, if any (case is ignored). */
function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    const allowed = Math.max(1, Math.floor(Math.min(key.length, candidate.length) / 3));
    if (distance <= allowed && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance; keys are short, so the quadratic table is fine. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** yaml's message without its trailing position and code frame (the line is reported apart). */
function yamlMessage(message: string): string {
  const first = message.split('\n')[0] ?? message;
  return first.replace(/ at line \d+, column \d+:?$/, '');
}

function readFailure(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory, not a file';
  return err instanceof Error ? err.message : String(err);
}

/** `memory` stays; a file path is relative to the config file's directory, not the cwd. */
/** What is wrong with a `redis://` / `rediss://` store URL; undefined when it is fine or not a Redis URL. */
export function redisUrlProblem(store: string): string | undefined {
  if (!/^rediss?:\/\//i.test(store)) return undefined;
  let url: URL;
  try {
    url = new URL(store);
  } catch {
    return 'is not a valid Redis URL (redis://[user:password@]host[:port][/db])';
  }
  if (url.hostname === '') return 'a Redis URL needs a host: redis://host[:port][/db]';
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d{1,2}$/.test(url.pathname)) {
    return `a Redis URL's path is a database number (/0 to /99), not ${url.pathname}`;
  }
  if (url.search !== '' || url.hash !== '') return 'a Redis URL takes no query or fragment';
  return undefined;
}

function resolveStore(store: string, baseDir: string): string {
  if (store === 'memory' || /^rediss?:\/\//i.test(store)) return store;
  return isAbsolute(store) ? store : resolve(baseDir, store);
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  // Stable sort: the config file's problems, then the listings file's; in each, problems without a line
  // (whole-file ones) first, then in file order.
  return problems.toSorted((a, b) => Number(a.file !== undefined) - Number(b.file !== undefined)
    || (a.line ?? 0) - (b.line ?? 0));
}

/** A place without its undefined fields (problems are compared and printed as they are). */
function definedOnly(place: Place): Place {
  return { ...(place.file === undefined ? {} : { file: place.file }),
    ...(place.line === undefined ? {} : { line: place.line }) };
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.file ?? ''}\n${p.path}\n${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Freezes `value` and everything it holds: config is validated once, then never changes. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
