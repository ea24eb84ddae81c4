// The compressed representations of feed answers (SPEC "Compression"): each compressed once per
// representation and kept in an LRU bounded by bytes; a body too big to compress in one go is
// compressed as a stream, kept too when what came out of it fits the cache's entry bound.
import { createHash } from 'node:crypto';
import { pipeline, Readable, Transform } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { type Compression, type ContentCoding, compress, createCompressor, minCompressedBytes } from '../http/compress.ts';
import { createSingleFlight } from '../util/single-flight.ts';
import { yieldToLoop } from '../util/yield.ts';

/** An answer body: one buffer, or pieces sent one after another. */
export type Body = Buffer | Buffer[];

/** A body as it goes out: with a known length, or a stream of unknown length (sent chunked). */
export type EncodedBody =
  | { coding: ContentCoding; body: Body; identityBytes: number }
  | { coding: Compression; stream: Readable; identityBytes: number };

/** An encoded body that is kept: its bytes and the size it stands for unencoded. */
export type KeptEncoding = { encoded: Buffer; identityBytes: number };

/** Options for createEncodedBodies. */
export type EncodedBodiesOptions = {
  /** Called for every compression started (one-shot or stream), not for cache hits. */
  onCompress?: (coding: Compression) => void;
  /** Bound of the kept encoded bodies, in bytes; default 16 MiB. */
  maxBytes?: number;
  /** Streamed compressions (bodies over 4 MiB) under way at once; past it, such a body goes out as it
   * is. Default 2: each holds a compressor and its buffers, and runs in libuv's small thread pool. */
  maxStreams?: number;
};

/** Encodes answer bodies, keeping what it compressed. */
export type EncodedBodies = {
  /**
   * `body` in `coding`: kept already, compressed now (joining a compression of the same `key` under
   * way), or as a stream when it is too big for one go. `key` names the representation (feed, version,
   * variant: everything the bytes depend on but the coding); without it the result is not kept.
   * Bodies under 1 KiB are sent as they are.
   */
  encode(key: string | undefined, body: Body, coding: ContentCoding): Promise<EncodedBody>;
  /** The kept encoding of representation `key`, if there is one. */
  kept(key: string, coding: Compression): KeptEncoding | undefined;
};

/** Larger bodies are compressed as a stream, a piece at a time, with the response's backpressure. Up to
 * this size the identity body is held whole anyway (the full-body cache's own bound), so is its encoding. */
export const maxOneShotBytes = 4 * 1024 * 1024;

// Encoded feeds are about a tenth of their size: 16 MiB keeps a few hundred 1,000-event feeds in both codings.
const defaultMaxBytes = 16 * 1024 * 1024;
const maxEntryBytes = 4 * 1024 * 1024;
// What a streamed body is fed in: each piece is compressed in the thread pool while the last one is sent.
const streamPieceBytes = 256 * 1024;

/** Creates the store of encoded bodies. */
export function createEncodedBodies(options: EncodedBodiesOptions = {}): EncodedBodies {
  const cache = new LRUCache<string, KeptEncoding>({
    maxSize: options.maxBytes ?? defaultMaxBytes,
    maxEntrySize: maxEntryBytes,
    sizeCalculation: (kept) => Math.max(1, kept.encoded.length),
  });
  const running = createSingleFlight<Buffer>();
  const maxStreams = options.maxStreams ?? 2;
  let streaming = 0;
  // Representations being kept from a stream right now: one stream per representation gathers its output.
  const gathering = new Set<string>();
  const cacheKey = (key: string, coding: Compression) => `${key}\u0000${coding}`;

  function stream(key: string | undefined, body: Body, coding: Compression, identityBytes: number): Readable {
    options.onCompress?.(coding);
    const source = Readable.from(pieces(body), { objectMode: false });
    const compressor = createCompressor(coding, identityBytes);
    const gather = key !== undefined && !gathering.has(cacheKey(key, coding)) ? cacheKey(key, coding) : undefined;
    if (gather !== undefined) gathering.add(gather);
    let gathered: Buffer[] | undefined = gather === undefined ? undefined : [];
    let gatheredBytes = 0;
    const tee = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        if (gathered) {
          gatheredBytes += chunk.length;
          // Past the entry bound it would not be kept: stop holding it at once.
          if (gatheredBytes > maxEntryBytes) gathered = undefined;
          else gathered.push(chunk);
        }
        callback(null, chunk);
      },
      flush(callback) {
        // Only a body compressed to its end is kept.
        if (gather !== undefined && gathered) cache.set(gather, { encoded: Buffer.concat(gathered), identityBytes });
        callback();
      },
    });
    streaming += 1;
    // Whatever ends it (the end, the client gone, a zlib error), every stage is destroyed and the slot freed.
    return pipeline(source, compressor, tee, () => {
      streaming -= 1;
      if (gather !== undefined) gathering.delete(gather);
      gathered = undefined;
    });
  }

  return {
    async encode(key, body, coding) {
      const identityBytes = bodyLength(body);
      if (coding === 'identity' || identityBytes < minCompressedBytes) return { coding: 'identity', body, identityBytes };
      const hit = key === undefined ? undefined : cache.get(cacheKey(key, coding));
      if (hit) return { coding, body: hit.encoded, identityBytes };
      if (identityBytes > maxOneShotBytes) {
        // A poll wave on a big feed must not start a compressor per client: past the bound, as it is.
        if (streaming >= maxStreams) return { coding: 'identity', body, identityBytes };
        return { coding, stream: stream(key, body, coding, identityBytes), identityBytes };
      }
      const once = async () => {
        options.onCompress?.(coding);
        return compress(Array.isArray(body) ? Buffer.concat(body) : body, coding);
      };
      if (key === undefined) return { coding, body: await once(), identityBytes };
      const name = cacheKey(key, coding);
      const encoded = await running(name, async () => {
        const out = await once();
        cache.set(name, { encoded: out, identityBytes });
        return out;
      });
      return { coding, body: encoded, identityBytes };
    },
    kept: (key, coding) => cache.get(cacheKey(key, coding)),
  };
}

/** The length of a body in bytes. */
export function bodyLength(body: Body | undefined): number {
  if (body === undefined) return 0;
  return Array.isArray(body) ? body.reduce((n, piece) => n + piece.length, 0) : body.length;
}

function* pieces(body: Body): Generator<Buffer> {
  for (const piece of Array.isArray(body) ? body : [body]) {
    for (let at = 0; at < piece.length; at += streamPieceBytes) yield piece.subarray(at, at + streamPieceBytes);
  }
}

// sha256 runs at about 1.7 GB/s: a 1 MiB piece is well under a millisecond of the loop.
const digestPieceBytes = 1024 * 1024;
// A body shared by every request that joined one upstream read is hashed once.
const digests = new WeakMap<Buffer, Promise<string>>();

/** A name for exactly these bytes (sha256, base64url), hashed a piece at a time between turns of the loop. */
export function digestOf(body: Buffer): Promise<string> {
  let digest = digests.get(body);
  if (!digest) {
    digest = (async () => {
      const hash = createHash('sha256');
      for (let at = 0; at < body.length; at += digestPieceBytes) {
        if (at > 0) await yieldToLoop();
        hash.update(body.subarray(at, at + digestPieceBytes));
      }
      return hash.digest('base64url');
    })();
    digests.set(body, digest);
  }
  return digest;
}
