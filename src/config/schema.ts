// The one configuration schema: the source of the Config type, the runtime check at load,
// and config/schema.json for editors (`npm run schema` writes it; a test keeps it current).
import { z } from 'zod';
import { compilePathPattern, isPathPatternError } from '../http/path-pattern.ts';
import { logLevels } from '../log.ts';
import { byteSizePattern, parseByteSize } from './byte-size.ts';
import { durationPattern, parseDuration } from './duration.ts';
import { parseReadRate, readRatePattern } from './read-rate.ts';
import { parseTrustedRange } from '../http/trust-proxy.ts';
import { usableTimeZone } from '../push/decide/dates.ts';

const durationMessage = 'must be a duration like 500ms, 30s, 5m, 1h or 7d';

/** YAML reads `30` as a number: say that the unit is what is missing. */
function durationError(issue: { input?: unknown }): string {
  return typeof issue.input === 'number' && issue.input !== 0
    ? `${durationMessage} (a bare number has no unit: write 30s, not 30)`
    : durationMessage;
}

/** A duration string (`500ms`, `30s`, `5m`, `1h`, `7d`) or 0, read as milliseconds. */
const duration = z
  .union([z.literal(0), z.string().regex(durationPattern, { error: durationMessage })], {
    error: durationError,
  })
  .transform((value) => parseDuration(value));

const byteSizeMessage = 'must be a size like 512KiB, 20MiB or 1GiB, or a number of bytes';

/** A byte size (`512KiB`, `20MiB`, `1GiB`) or a plain number of bytes, more than 0. */
const byteSize = z
  .union([z.int().min(1), z.string().regex(byteSizePattern, { error: byteSizeMessage })], { error: byteSizeMessage })
  .transform((value) => parseByteSize(value))
  .refine((bytes) => bytes > 0 && Number.isSafeInteger(bytes), { error: byteSizeMessage });

/** A positive duration: 0 makes no sense for a timeout. */
const positiveDuration = z
  .string({ error: durationError })
  .regex(durationPattern, { error: durationMessage, abort: true })
  .transform((value) => parseDuration(value))
  .refine((ms) => ms > 0, { error: 'must be longer than 0' });

const readRateMessage = 'must be a rate like 20/s, 300/m or 3600/h, or a number of reads per second';

/** A read rate (`20/s`, `300/m`, `3600/h`, or a number per second), more than 0, read as reads per second. */
const readRate = z
  .union([z.number().positive(), z.string().regex(readRatePattern, { error: readRateMessage })],
    { error: readRateMessage })
  .transform((value) => parseReadRate(value))
  .refine((perSecond) => perSecond > 0, { error: readRateMessage });

/** `push.watch` after validation (SPEC "Push": the watch must not cost the platform more than its polling).
 * A duration is a flat interval: every listing every `intervalMs`, no budget. */
export type WatchConfig = {
  /** How often a listing with recent activity is read; 0: the watch is off. */
  intervalMs: number;
  /** How often, at most, a listing without recent activity is read (= intervalMs when flat). */
  idleIntervalMs: number;
  /** Reads per second across the fleet, at most; Infinity: unbounded. */
  maxRatePerSecond: number;
  /** The object form: listings split by recent activity. */
  adaptive: boolean;
};

const watchObject = z
  .strictObject({
    interval: positiveDuration.prefault('60s').describe('How often a listing with recent activity is read.'),
    idleInterval: positiveDuration
      .prefault('15m')
      .describe('How often, at most, a listing without activity in the last 7 days is read.'),
    maxRate: readRate
      .optional()
      .describe('Watch reads per second across the fleet, at most (20/s, 300/m, 3600/h); default: unbounded.'),
  })
  .refine((w) => w.idleInterval >= w.interval,
    { error: 'must not be shorter than interval', path: ['idleInterval'] });

// The issues of a nested parse that no schema gave a message to carry this one: they are left without, so
// the caller's own messages (config/load.ts) word them like every other key's.
const noMessageOfItsOwn = '\u0000';

/**
 * `push.watch`: a duration (flat, 0 = off) or `{ interval, idleInterval, maxRate }` (adaptive). The form is
 * picked by the value's type, so a mistake in the object is reported at its own key (`push.watch.maxRate`),
 * not as "neither form matched".
 */
const watch = z
  .unknown()
  .transform((input, ctx): WatchConfig => {
    const isObject = typeof input === 'object' && input !== null;
    const parsed = (isObject ? watchObject : duration).safeParse(input, { error: () => noMessageOfItsOwn,
      reportInput: true });
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const { message, ...rest } = issue;
        ctx.addIssue((message === noMessageOfItsOwn ? rest : issue) as Parameters<typeof ctx.addIssue>[0]);
      }
      return z.NEVER;
    }
    if (typeof parsed.data === 'number') {
      return { intervalMs: parsed.data, idleIntervalMs: parsed.data, maxRatePerSecond: Infinity, adaptive: false };
    }
    const w = parsed.data;
    return { intervalMs: w.interval, idleIntervalMs: w.idleInterval, maxRatePerSecond: w.maxRate ?? Infinity,
      adaptive: true };
  })
  // What a user writes, for config/schema.json (a transform alone would be `{}` there).
  .meta({ anyOf: (z.toJSONSchema(z.union([duration, watchObject]), { io: 'input' }) as { anyOf: unknown[] }).anyOf });

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value.replaceAll('{listing}', 'listing'));
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

const urlMessage = 'must be an http:// or https:// URL';

/** An absolute http(s) URL; `abort` keeps one bad value from being reported twice. */
const httpUrl = z
  .string({ error: urlMessage })
  .regex(/^https?:\/\/\S+$/i, { error: urlMessage, abort: true })
  .refine(isHttpUrl, { error: urlMessage, abort: true });

/** `host:port`, `[v6]:port`; port 0 asks the system for a free port. */
const listenAddress = z
  .string({ error: 'must be host:port, e.g. 127.0.0.1:8080' })
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, {
    error: 'must be host:port, e.g. 127.0.0.1:8080',
    abort: true,
  })
  .refine((value) => Number(value.slice(value.lastIndexOf(':') + 1)) <= 65535, {
    error: 'port must be 0-65535',
  });

/** A path pattern with exactly one `{listing}` capture (and any number of `{secret}`). */
function pathPattern(what: string) {
  return z
    .string({ error: `must be a ${what} path pattern such as /calendar/{listing}.ics` })
    .superRefine((value, ctx) => {
      const compiled = compilePathPattern(value);
      if (isPathPatternError(compiled)) ctx.addIssue({ code: 'custom', message: compiled.error });
    });
}

const listingId = z.string().regex(/^[A-Za-z0-9._~-]+$/, {
  error: 'is not a usable listing id: use letters, digits, . _ ~ and -',
}).refine((id) => id !== '__proto__', { error: 'is not a usable listing id: __proto__ is reserved' });

/** RFC 9110 §5.6.2 token: undici refuses any other header name at request time. */
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, {
  error: 'is not a valid HTTP header name',
});

const httpMethod = z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'], {
  error: 'must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS',
});

/** A zone as a message may show it: a value that cannot be a zone name (a shifted column: maybe a URL with a
 * token) is not repeated. */
export function zoneShown(value: string): string {
  return /^[A-Za-z0-9_+\-/:.]{1,64}$/.test(value) && !value.includes('://') ? value : '(a value that is no zone name)';
}

/** An IANA time zone name (`Europe/Rome`), read as its canonical spelling. Fixed offsets are refused:
 * they ignore daylight saving time, and "today" would be an hour off half the year. */
const timeZone = z
  .string({ error: 'must be an IANA time zone name such as Europe/Rome' })
  .refine((name) => usableTimeZone(name) !== undefined, {
    error: (issue) => `is not an IANA time zone name such as Europe/Rome or America/New_York: ${zoneShown(String(issue.input))}`,
    abort: true,
  })
  .transform((name) => usableTimeZone(name) as string);

const peer = z
  .strictObject({
    name: z.string().min(1).optional().describe('Label for logs, metrics and status.'),
    url: httpUrl.describe(
      'The peer\'s .ics feed for this listing: read when pushed, notified on change.',
    ),
    notify: z.boolean().default(true).describe('Send iPP HEAD notifications to url.'),
    headers: z
      .record(headerName, z.string())
      .default({})
      .describe('Request headers sent when reading this peer\'s feed (credentials: values are never shown).'),
  })
  .describe('Another platform connected to this listing.');

const listing = z
  .strictObject({
    feed: z
      .string()
      .regex(/^\/\S*$/, { error: 'must be a path (and query) starting with /' })
      .optional()
      .describe('Explicit own feed path and query; default: the first feeds pattern.'),
    headers: z
      .record(headerName, z.string())
      .default({})
      .describe('Request headers sent on the sidecar\'s own reads of this listing\'s feed (values never shown).'),
    timezone: timeZone
      .optional()
      .describe('IANA zone of the property: what "today" means for it; default: push.timezone.'),
    peers: z.array(peer).default([]).describe('Platforms connected to this listing.'),
  })
  .describe('One listing of the connection map.');

const feedPattern = z
  .strictObject({
    path: pathPattern('feed').describe(
      'Upstream path of a calendar feed; {listing} captures one segment, {secret} marks one to redact.',
    ),
    maxAge: duration
      .prefault(0)
      .describe('Answer anonymous GETs from a snapshot this fresh without re-reading (0 = always re-read).'),
  })
  .describe('A calendar feed path pattern.');

const trigger = z
  .strictObject({
    method: httpMethod.default('POST').describe('HTTP method of the proxied request.'),
    path: pathPattern('trigger').describe(
      'Path pattern; {listing} captures the listing, * one segment, ** the rest.',
    ),
  })
  .describe('A proxied request that likely changed a listing.');

/** The whole configuration file, as validated at load. */
export const configSchema = z
  .strictObject({
    listen: listenAddress.default('127.0.0.1:8080').describe('host:port the sidecar listens on.'),
    upstream: httpUrl
      .refine(
        (value) => {
          // httpUrl aborts on unparsable values, but a refine must never throw.
          if (!URL.canParse(value)) return false;
          const url = new URL(value);
          return (url.pathname === '/' || url.pathname === '') && !url.search && !url.hash;
        },
        { error: 'must be an origin (scheme://host:port) without path or query' },
      )
      .describe('Base URL of the unmodified platform.'),
    publicBaseUrl: httpUrl
      .optional()
      .describe('Base of absolute URLs in Link headers; default: from the request.'),
    store: z
      .string()
      .min(1)
      .default('./data/icalpush.db')
      .describe('`memory`, a file path for the durable embedded store (relative to this file), or a ' +
        '`redis://[user:password@]host[:port][/db]` (or `rediss://`) URL for several replicas sharing one Redis.'),
    feeds: z
      .array(feedPattern)
      .min(1, { error: 'needs at least one feed pattern' })
      .describe('Which upstream paths are calendar feeds.'),
    trustProxy: z
      .array(z.string().refine((value) => parseTrustedRange(value) !== undefined, {
        error: (issue) => `is not an IP address or CIDR range such as 10.0.0.0/8: ${String(issue.input)}`,
      }))
      .default(['127.0.0.1/8', '::1'])
      .describe('Clients whose X-Forwarded-Proto/-Host are believed for the Link base (CIDRs or addresses).'),
    listingsFile: z
      .string()
      .min(1)
      .optional()
      .describe('More of the connection map in a file of its own (.csv, .yaml, .yml or .json; relative to this file), '
        + 'reloaded with the config. CSV: a header row listing,peer_name,peer_url,notify,timezone, one row per listing '
        + 'and peer. YAML/JSON: the shape of listings. A listing may not be both here and in listings.'),
    listings: z
      .record(listingId, listing)
      .default({})
      .describe('The connection map: listing id -> peers.'),
    snapshots: z
      .strictObject({
        retention: positiveDuration
          .prefault('30d')
          .describe('How long tombstones (and the sync tokens that need them) are kept.'),
        maxBodyBytes: byteSize
          .prefault('20MiB')
          .describe('Largest upstream feed body read; a bigger one is refused with 502.'),
        maxFeeds: z
          .int()
          .min(1)
          .max(1_000_000)
          .default(10_000)
          .describe('Feed URLs with a snapshot; reads of further URLs pass through unversioned.'),
        maxVariantsPerPath: z
          .int()
          .min(1)
          .max(10_000)
          .default(16)
          .describe('Query variants of one path with a snapshot; further variants pass through unversioned.'),
        maxEntitiesPerFeed: z
          .int()
          .min(1)
          .max(1_000_000)
          .default(25_000)
          .describe('Events of a feed with a snapshot (and tombstones kept); a bigger feed passes through unversioned.'),
        hold: z
          .strictObject({
            span: duration
              .prefault('2h')
              .describe('How long a sudden drop must persist before it is applied (0 = at once).'),
            fraction: z
              .number()
              .gt(0)
              .max(1)
              .default(0.5)
              .describe('A read that loses more than this share of a listing\'s future busy nights (of the events for other feeds) is a drop.'),
          })
          .prefault({})
          .describe('Holding answers that suddenly drop most entities.'),
      })
      .prefault({})
      .describe('Feed snapshots, tombstones and sync tokens.'),
    push: z
      .strictObject({
        debounce: duration
          .prefault('5m')
          .describe('Inbound HEAD: at most one peer read + refresh per listing per window.'),
        retryFor: positiveDuration
          .prefault('24h')
          .describe('How long a failing outbound notification is retried before it is dropped.'),
        watch: watch
          .prefault('60s')
          .describe('Re-read own feeds this often to catch primary changes (0 = off); or adaptive: '
            + '{ interval, idleInterval, maxRate }.'),
        timezone: timeZone
          .optional()
          .describe('IANA zone of listings without their own; unset: the conservative rule (UTC-12 / UTC+14).'),
        triggers: z
          .array(trigger)
          .default([])
          .describe('Proxied requests that likely changed a listing.'),
        userAgent: z
          .string()
          .min(1)
          .default('iPP/0.1')
          .describe('Prefix of the User-Agent of outbound notifications.'),
      })
      .prefault({})
      .describe('Push: notifications out and in.'),
    refresh: z
      .strictObject({
        method: httpMethod.default('POST').describe('HTTP method of the refresh call.'),
        url: httpUrl.describe(
          'URL that makes the upstream re-import a listing; {listing} is replaced.',
        ),
        headers: z.record(headerName, z.string()).default({}).describe('Extra request headers.'),
        timeout: positiveDuration.prefault('10s').describe('How long the refresh call may take.'),
      })
      .optional()
      .describe('How to make the upstream re-import a listing now.'),
    hooks: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Accept X-ICALHOOKS-URL subscriptions.'),
        allowPrivateNetworks: z
          .boolean()
          .default(false)
          .describe('Allow hook URLs on private addresses (tests only).'),
        maxPerFeed: z.int().min(1).max(10000).default(100).describe('Subscriptions kept per feed.'),
      })
      .prefault({})
      .describe('iCal Hooks one-shot subscriptions.'),
    admin: z
      .strictObject({
        token: z
          .string()
          .min(1, { error: 'must not be empty (remove the key to serve admin to loopback only)' })
          .optional()
          .describe('Bearer token for /_icalpush/ admin routes.'),
      })
      .prefault({})
      .describe('Admin endpoints under /_icalpush/.'),
    timeouts: z
      .strictObject({
        connect: positiveDuration.prefault('5s').describe('TCP connect to the upstream.'),
        upstream: positiveDuration
          .prefault('30s')
          .describe(
            'Passthrough: wait for response headers and longest pause in a body; feed reads: their total deadline.',
          ),
        shutdown: positiveDuration
          .prefault('10s')
          .describe('On SIGTERM: how long shutdown may take, whatever is in flight.'),
      })
      .prefault({})
      .describe('Timeouts of the passthrough and of shutdown.'),
    log: z
      .strictObject({
        level: z.enum(logLevels).default('info').describe('Lowest level written.'),
      })
      .prefault({})
      .describe('Logging.'),
  })
  .superRefine(
    (value, ctx) => {
      // Runs even when other keys are invalid (`when`), so that every problem is reported in
      // one pass; the value may then be partly unvalidated, hence the shape checks.
      const config = value as unknown as Record<string, unknown>;
      if (typeof config !== 'object' || config === null) return;
      const feeds = Array.isArray(config.feeds) ? (config.feeds as unknown[]) : [];
      const patterns = feeds.flatMap((feed) => {
        const path = (feed as { path?: unknown } | null)?.path;
        if (typeof path !== 'string') return [];
        const compiled = compilePathPattern(path);
        return isPathPatternError(compiled) ? [] : [compiled];
      });
      const listings =
        typeof config.listings === 'object' && config.listings !== null ? config.listings : {};
      // A listing's own feed defaults to the first pattern filled in, which a {secret} makes
      // impossible: only the operator knows the secret.
      const firstPath = (feeds[0] as { path?: unknown } | null | undefined)?.path;
      const first = typeof firstPath === 'string' ? compilePathPattern(firstPath) : undefined;
      const firstHasSecret = first !== undefined && !isPathPatternError(first) && first.hasSecret;
      for (const [id, entry] of Object.entries(listings)) {
        const { feed, peers } = (entry ?? {}) as { feed?: unknown; peers?: unknown };
        if (firstHasSecret && feed === undefined && typeof entry === 'object' && entry !== null) {
          ctx.addIssue({
            code: 'custom',
            path: ['listings', id],
            message: 'needs an explicit feed: the first feeds pattern has {secret}',
          });
        }
        // Without one usable pattern there is nothing to match against; feeds reports why.
        if (typeof feed === 'string' && patterns.length > 0) {
          const path = feed.split('?')[0] ?? '';
          if (!patterns.some((p) => p.match(path)?.listing === id)) {
            ctx.addIssue({
              code: 'custom',
              path: ['listings', id, 'feed'],
              message: `must match a feeds pattern with {listing} = ${id}`,
            });
          }
        }
        if (!Array.isArray(peers)) continue;
        const seen = new Map<string, number>();
        peers.forEach((p: unknown, i) => {
          const url = (p as { url?: unknown } | null)?.url;
          if (typeof url !== 'string') return;
          const first = seen.get(url);
          if (first === undefined) seen.set(url, i);
          else {
            ctx.addIssue({
              code: 'custom',
              path: ['listings', id, 'peers', i, 'url'],
              message: `duplicates peers[${first}].url`,
            });
          }
        });
      }
    },
    { when: () => true },
  );

/** The configuration after validation: durations in milliseconds, defaults filled in. */
export type Config = z.output<typeof configSchema>;
/** The configuration as written in the file. */
export type ConfigInput = z.input<typeof configSchema>;
