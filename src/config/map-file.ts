// What reading a listings file (listings-file.ts) gives, whatever its format.
import type { KeySegment } from './key-path.ts';

/** The line (1-based) of the value at a key path under the file's top level (`[id, 'peers', 0, 'url']`). */
export type MapLocator = (path: readonly KeySegment[]) => number | undefined;

/** One thing wrong with the file: the key path as the config names it (`listings.x.peers[0].url`, or ''
 * for a whole row or the file), its line, and what. */
export type MapFileProblem = { path: string; line?: number; message: string };

/**
 * The file's listings in the shape of inline `listings` (not validated yet) and every problem found reading
 * them. With problems, the listings are what could be read (a row or value in error is left out), so that the
 * schema's findings on the rest are reported in the same pass; nothing is read from a file that does not parse.
 */
export type MapFileRead = {
  listings: Record<string, unknown>;
  locate: MapLocator;
  problems: MapFileProblem[];
};

/** A read that found nothing usable. */
export function unreadable(problem: MapFileProblem): MapFileRead {
  return { listings: {}, locate: () => undefined, problems: [problem] };
}
