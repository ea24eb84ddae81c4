// Derived facts of the connection map that several parts need.
import { compilePathPattern, isPathPatternError } from '../http/path-pattern.ts';
import type { Config } from './schema.ts';

/**
 * A listing's own feed (path and query on the upstream): explicit, or the first feeds pattern filled
 * in. Undefined when that pattern has a `{secret}` (the config check requires an explicit feed then).
 */
export function ownFeedTarget(config: Pick<Config, 'feeds' | 'listings'>, id: string): string | undefined {
  const explicit = config.listings[id]?.feed;
  if (explicit !== undefined) return explicit;
  const derive = compiledFirstPattern(config.feeds[0]?.path ?? '');
  return isPathPatternError(derive) ? undefined : derive.expand(id);
}

// The first feeds pattern, compiled once per config rather than once per listing (10,000 at start).
let lastPattern: { path: string; compiled: ReturnType<typeof compilePathPattern> } | undefined;
function compiledFirstPattern(path: string): ReturnType<typeof compilePathPattern> {
  if (lastPattern?.path !== path) lastPattern = { path, compiled: compilePathPattern(path) };
  return lastPattern.compiled;
}
