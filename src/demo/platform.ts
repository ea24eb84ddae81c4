// A simulated legacy booking platform for the demo and the push tests: one listing with an .ics
// export (stamped with the fetch time, like Airbnb), a booking endpoint, and an import of its peers'
// feeds that runs on a slow schedule or when its "sync now" endpoint is called. It knows nothing of
// iPP: everything push-related is done by the icalpush in front of it.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';

/** A stay or block: check-in date and check-out date (exclusive), YYYY-MM-DD. */
export type Stay = { start: string; end: string };

/** Something the platform did, for the demo's timeline. */
export type PlatformEvent =
  | { kind: 'booked'; at: number; stay: Stay }
  | { kind: 'cancelled'; at: number; stay: Stay }
  | { kind: 'imported'; at: number; from: string; blocks: number; why: 'sync-now' | 'schedule' };

/** A running simulated platform. */
export type Platform = {
  readonly name: string;
  readonly url: string;
  readonly listing: string;
  /** The peers' feed URLs it imports from (set once the sidecars listen). */
  importFrom: { name: string; url: string }[];
  readonly events: PlatformEvent[];
  /** Nights blocked by imports, by peer name. */
  imported(): Record<string, Stay[]>;
  /** Own bookings. */
  bookings(): Stay[];
  /** Imports every peer feed now (the "sync now" action). */
  syncNow(why: 'sync-now' | 'schedule'): Promise<void>;
  close(): Promise<void>;
};

/** Options for startPlatform. */
export type PlatformOptions = {
  name: string;
  listing: string;
  /** Stays booked before the demo starts. */
  bookings?: Stay[];
  /** The slow import schedule (ms); 0 = only on "sync now". */
  importEveryMs?: number;
  /** Added before the export answers (a slow legacy export). */
  exportDelayMs?: number;
};

const stamp = () => new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
const compact = (date: string) => date.replaceAll('-', '');

/** Starts a platform on 127.0.0.1:0. */
export async function startPlatform(options: PlatformOptions): Promise<Platform> {
  const { name, listing } = options;
  const own: (Stay & { uid: string })[] = (options.bookings ?? []).map((stay, i) => ({ ...stay, uid: `seed-${i}` }));
  const imported = new Map<string, Stay[]>();
  const events: PlatformEvent[] = [];
  let next = 0;

  function exportFeed(): string {
    const now = stamp();
    const lines = ['BEGIN:VCALENDAR', 'VERSION:2.0', `PRODID:-//${name}//Calendar 1.0//EN`, 'CALSCALE:GREGORIAN'];
    const event = (uid: string, stay: Stay, summary: string) => lines.push(
      'BEGIN:VEVENT',
      `DTSTAMP:${now}`,
      `DTSTART;VALUE=DATE:${compact(stay.start)}`,
      `DTEND;VALUE=DATE:${compact(stay.end)}`,
      `UID:${uid}@${name}.example`,
      `SUMMARY:${summary}`,
      'END:VEVENT',
    );
    for (const stay of own) event(stay.uid, stay, 'Reserved');
    // Imported blocks come back under this platform's own UIDs and summary, as real platforms do.
    for (const [peer, stays] of imported) {
      for (const stay of stays) event(`blocked-${peer}-${stay.start}-${stay.end}`, stay, 'Not available');
    }
    lines.push('END:VCALENDAR');
    return `${lines.join('\r\n')}\r\n`;
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    let text = '';
    for await (const chunk of req) text += String(chunk);
    return text;
  }

  const server: Server = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method === 'GET' && path === `/calendar/${listing}.ics`) {
      if (options.exportDelayMs) await new Promise((r) => setTimeout(r, options.exportDelayMs));
      const body = exportFeed();
      res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (req.method === 'POST' && path === `/bookings/${listing}`) {
      const stay = JSON.parse(await readBody(req)) as Stay;
      own.push({ ...stay, uid: `booking-${next++}` });
      events.push({ kind: 'booked', at: Date.now(), stay });
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true }));
      return;
    }
    if (req.method === 'DELETE' && path.startsWith(`/bookings/${listing}/`)) {
      const start = path.slice(`/bookings/${listing}/`.length);
      const at = own.findIndex((s) => s.start === start);
      if (at === -1) {
        res.writeHead(404).end();
        return;
      }
      const [stay] = own.splice(at, 1);
      if (stay) events.push({ kind: 'cancelled', at: Date.now(), stay: { start: stay.start, end: stay.end } });
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'POST' && path === `/admin/sync/${listing}`) {
      await readBody(req);
      await platform.syncNow('sync-now');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const timer = options.importEveryMs
    ? setInterval(() => void platform.syncNow('schedule').catch(() => {}), options.importEveryMs)
    : undefined;
  timer?.unref();

  let syncing: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  async function importAll(why: 'sync-now' | 'schedule'): Promise<void> {
    for (const peer of platform.importFrom) {
      try {
        const res = await request(peer.url, { headersTimeout: 5_000, bodyTimeout: 5_000 });
        const text = await res.body.text();
        if (res.statusCode !== 200) continue;
        // A legacy importer: every VEVENT becomes a block, whatever its summary or UID.
        const stays = [...text.matchAll(/DTSTART;VALUE=DATE:(\d{8})\r?\nDTEND;VALUE=DATE:(\d{8})/g)]
          .map((m) => ({ start: iso(m[1] ?? ''), end: iso(m[2] ?? '') }))
          // It skips what it exports itself, like real importers de-duplicating their own blocks.
          .filter((stay) => !own.some((o) => o.start === stay.start && o.end === stay.end));
        imported.set(peer.name, stays);
        events.push({ kind: 'imported', at: Date.now(), from: peer.name, blocks: stays.length, why });
      } catch {
        // The next scheduled import tries again, as legacy importers do.
      }
    }
  }

  const platform: Platform = {
    name,
    listing,
    url: `http://127.0.0.1:${port}`,
    importFrom: [],
    events,
    imported: () => Object.fromEntries(imported),
    bookings: () => own.map(({ start, end }) => ({ start, end })),
    syncNow(why) {
      // One import at a time, as an importer's job queue runs: a sync asked for during one runs once
      // more after it (two racing imports could store an older answer over a newer one).
      if (!syncing) {
        syncing = importAll(why).finally(() => {
          syncing = undefined;
        });
        return syncing;
      }
      queued ??= syncing.then(() => {
        queued = undefined;
        return platform.syncNow(why);
      });
      return queued;
    },
    async close() {
      if (timer) clearInterval(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return platform;
}

function iso(compactDate: string): string {
  return `${compactDate.slice(0, 4)}-${compactDate.slice(4, 6)}-${compactDate.slice(6, 8)}`;
}
