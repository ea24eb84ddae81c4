// Decides who answers a request: the admin endpoints, the feed engine (configured feed paths),
// or the transparent passthrough. The feed route is the seam the feed engine plugs into.
import { compilePathPattern, isPathPatternError, type PathPattern } from './path-pattern.ts';

/** Where a request goes. */
export type Route =
  | { kind: 'admin'; path: string }
  | { kind: 'feed'; path: string; listing: string; pattern: string }
  | { kind: 'passthrough'; path: string };

/** The admin prefix; nothing under it is ever proxied. */
export const adminPrefix = '/_icalpush/';

/** The path part of a request target (origin-form or absolute-form), without the query. */
export function requestPath(target: string): string {
  if (target.startsWith('/')) {
    const q = target.indexOf('?');
    return q === -1 ? target : target.slice(0, q);
  }
  try {
    return new URL(target).pathname;
  } catch {
    return target;
  }
}

/** A router over the configured feed patterns. */
export type Router = { route(target: string): Route };

/** Builds the router; `feedPatterns` were validated with the config. */
export function createRouter(feedPatterns: readonly string[]): Router {
  const patterns: PathPattern[] = [];
  for (const source of feedPatterns) {
    const compiled = compilePathPattern(source);
    if (isPathPatternError(compiled)) throw new Error(`feed pattern ${source}: ${compiled.error}`);
    patterns.push(compiled);
  }
  return {
    route(target) {
      const path = requestPath(target);
      if (path.startsWith(adminPrefix) || path === '/_icalpush') return { kind: 'admin', path };
      for (const pattern of patterns) {
        const match = pattern.match(path);
        if (match) return { kind: 'feed', path, listing: match.listing, pattern: pattern.source };
      }
      return { kind: 'passthrough', path };
    },
  };
}
