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
  const derive = compilePathPattern(config.feeds[0]?.path ?? '');
  return isPathPatternError(derive) ? undefined : derive.expand(id);
}
