// Key paths as messages show them: `feeds[0].path`, `listings.beach-house.peers[1].url`,
// `listings["a.b"]`.

/** One step of a key path: a mapping key or a list index. */
export type KeySegment = string | number;

/** Renders a key path the way problems name it. */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else {
      const key = String(segment);
      if (/^[A-Za-z0-9_-]+$/.test(key)) out += out === '' ? key : `.${key}`;
      else out += `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}
