// A cheap test for "nothing changed": the hash of a feed body's bytes with every DTSTAMP line left
// out. Equal fingerprints mean equal content, so the re-read of an unchanged feed skips the split and
// the per-entity hashing, even on exporters that stamp every event with the fetch time.
import { createHash, type Hash } from 'node:crypto';
import { yieldToLoop } from '../util/yield.ts';

const lf = 0x0a;
const space = 0x20;
const tab = 0x09;
const marker = Buffer.from('\nDTSTAMP', 'latin1');

/**
 * sha256 (base64url) of `body` without its DTSTAMP content lines (and their folded continuations).
 * Only lines that start exactly `DTSTAMP:` or `DTSTAMP;` after a line feed are left out, so a
 * different fingerprint never means different content, only that the full comparison must run.
 */
export function fingerprint(body: Buffer): string {
  // keptHasher's loop without its budget, in one function: what a re-read's fingerprint runs.
  const hash: Hash = createHash('sha256');
  let used = 0;
  let from = 0;
  let at = body.indexOf(marker, 0);
  while (at !== -1) {
    const after = body[at + marker.length];
    if (after !== 0x3a && after !== 0x3b) {
      at = body.indexOf(marker, at + 1);
      continue;
    }
    // Keep the line feed before DTSTAMP, skip up to and including the line's own line feed.
    const to = at + 1;
    if (used + (to - from) > scratchBytes) {
      hash.update(scratch.subarray(0, used));
      used = 0;
    }
    if (to - from > scratchBytes) hash.update(body.subarray(from, to));
    else used += body.copy(scratch, used, from, to);
    let end = lineEnd(body, to);
    while (end !== -1 && (body[end + 1] === space || body[end + 1] === tab)) end = lineEnd(body, end + 1);
    if (end === -1) {
      from = body.length;
      break;
    }
    from = end + 1;
    at = body.indexOf(marker, end);
  }
  hash.update(scratch.subarray(0, used));
  if (from < body.length) hash.update(body.subarray(from));
  return hash.digest('base64url');
}

// The kept bytes are gathered in a scratch buffer and hashed a buffer at a time: hashing each range
// between two DTSTAMP lines made a view and a hash call per event (most of the cost, and of the bytes).
const scratchBytes = 64 * 1024;
const scratch = Buffer.allocUnsafeSlow(scratchBytes);

// A piece between two turns of the event loop: hashing runs at about 1.5 GB/s, but a body of nothing but
// DTSTAMP lines is stepped through a line at a time (800,000 of them, 20 MB: ~13 ms a MiB).
const pieceBytes = 256 * 1024;

/** fingerprint() for a body of any size without holding the event loop: hashed a piece at a time. */
export async function fingerprintAsync(body: Buffer): Promise<string> {
  if (body.length <= pieceBytes) return fingerprint(body);
  // A scratch buffer of its own: another fingerprint may run while this one waits.
  const kept = keptHasher(body, Buffer.allocUnsafeSlow(scratchBytes));
  while (!kept.step(pieceBytes)) await yieldToLoop();
  return kept.digest();
}

/** Hashes the bytes of `body` outside its DTSTAMP content lines (and their folded continuations): `step`
 * hashes about `limit` more bytes and says whether the body is done, so a caller can stop between two. */
function keptHasher(body: Buffer, buffer: Buffer): { step(limit: number): boolean; digest(): string } {
  const hash: Hash = createHash('sha256');
  let used = 0;
  // The kept range being hashed starts at `from`; `at` is the next `\nDTSTAMP` at or after it (-1: none).
  let from = 0;
  let at = body.indexOf(marker, 0);
  // Hashes body[from, to) and moves `from` there.
  const put = (to: number) => {
    while (from < to) {
      const n = Math.min(to - from, buffer.length - used);
      body.copy(buffer, used, from, from + n);
      used += n;
      from += n;
      if (used === buffer.length) {
        hash.update(buffer);
        used = 0;
      }
    }
  };
  const step = (limit: number) => {
    let budget = limit;
    while (budget > 0) {
      if (at === -1) {
        const to = Math.min(body.length, from + budget);
        budget -= to - from;
        put(to);
        if (from === body.length) return true;
        continue;
      }
      if (body[at + marker.length] !== 0x3a && body[at + marker.length] !== 0x3b) {
        at = body.indexOf(marker, at + 1);
        continue;
      }
      // Keep the line feed before DTSTAMP, skip up to and including the line's own line feed.
      const to = Math.min(at + 1, from + budget);
      budget -= to - from;
      put(to);
      if (from < at + 1) break;
      // A DTSTAMP line is short: its end is looked for byte by byte (a call per line was a third of the cost).
      // The bytes skipped count against the budget too: a hostile feed's one DTSTAMP line of 20 MB is stepped
      // through in pieces like any other bytes.
      let end = lineEnd(body, at + 1);
      while (end !== -1 && (body[end + 1] === space || body[end + 1] === tab)) end = lineEnd(body, end + 1);
      const next = end === -1 ? body.length : end + 1;
      budget -= next - from;
      from = next;
      at = end === -1 ? -1 : body.indexOf(marker, end);
    }
    return false;
  };
  const digest = () => {
    hash.update(buffer.subarray(0, used));
    return hash.digest('base64url');
  };
  return { step, digest };
}

// A DTSTAMP line is looked through byte by byte this far; a longer one (a hostile feed) natively.
const shortLineBytes = 256;

// The index of the next line feed at or after `from`, or -1.
function lineEnd(body: Buffer, from: number): number {
  const until = Math.min(body.length, from + shortLineBytes);
  for (let i = from; i < until; i += 1) if (body[i] === lf) return i;
  return until === body.length ? -1 : body.indexOf(lf, until);
}
