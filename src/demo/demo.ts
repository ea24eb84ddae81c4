// `npm run demo`: three simulated legacy platforms on loopback, each importing the others' feeds
// once an hour and each behind its own icalpush (the real createApp). A guest books a stay on one;
// the timeline shows the booking, the iPP HEADs, the re-imports on the two others and how long each
// took, against what hourly polling would give, and that nothing echoed back.
import { nightsOfRuns } from '../push/decide/night-runs.ts';
import { Writable } from 'node:stream';
import { request } from 'undici';
import { type App, createApp } from '../app.ts';
import { createLogger } from '../log.ts';
import { openStore } from '../store/open-store.ts';
import { freePort, meshSidecarConfig } from './mesh.ts';
import { type Platform, startPlatform } from './platform.ts';

/** One line of the timeline: ms since the booking, who, what. */
export type TimelineEntry = { ms: number; who: string; what: string };

/** What the demo found; `ok` is true when both other platforms imported the stay and nothing echoed. */
export type DemoResult = {
  ok: boolean;
  timeline: TimelineEntry[];
  /** ms from the booking's answer to each other platform having imported the stay. */
  propagationMs: Record<string, number | undefined>;
  /** iPP HEADs that reached the booked platform's sidecar after the booking (an echo). */
  echoes: number;
};

const pollingIntervalMs = 60 * 60 * 1000;
const listing = 'beach-house';

function addDays(date: Date, days: number): string {
  return new Date(date.getTime() + days * 86_400_000).toISOString().slice(0, 10);
}

/** Runs the demo; writes the timeline to `out` when given. */
export async function runDemo(out?: (line: string) => void): Promise<DemoResult> {
  const names = ['alpha', 'beta', 'gamma'];
  const platforms: Platform[] = [];
  const apps: App[] = [];
  const timeline: TimelineEntry[] = [];
  let t0 = Number.POSITIVE_INFINITY;
  const note = (who: string, what: string) => {
    if (Number.isFinite(t0)) timeline.push({ ms: Date.now() - t0, who, what });
  };
  let echoes = 0;
  try {
    for (const name of names) platforms.push(await startPlatform({ name, listing, importEveryMs: pollingIntervalMs }));
    const ports = await Promise.all(names.map(() => freePort()));
    const sidecarUrl = (i: number) => `http://127.0.0.1:${ports[i]}/calendar/${listing}.ics`;
    for (const [i, platform] of platforms.entries()) {
      platform.importFrom = names.flatMap((name, j) => (j === i ? [] : [{ name, url: sidecarUrl(j) }]));
      const config = meshSidecarConfig({ port: ports[i] as number, platform, listing });
      const who = `${platform.name}'s icalpush`;
      // The sidecar's own log lines, read as events for the timeline.
      const destination = new Writable({
        write(chunk, _encoding, done) {
          for (const line of String(chunk).split('\n').filter(Boolean)) {
            const entry = JSON.parse(line) as Record<string, unknown>;
            const req = entry.req as { method?: string; route?: string; remote?: string } | undefined;
            if (entry.msg === 'request' && req?.method === 'HEAD' && req.route === 'feed' && Number.isFinite(t0)) {
              note(who, 'iPP HEAD received: a peer says the listing changed');
              if (i === 0) echoes += 1;
            } else if (entry.msg === 'listing change classified') {
              const nights = entry.nights as { added: string[]; removed: string[] } | undefined;
              const busy = nightsOfRuns(nights?.added ?? []).length;
              if (entry.kind === 'primary') {
                note(who, `own feed changed: ${busy} nights newly busy, no peer explains them → `
                  + `primary → HEAD to ${(entry.notified as string[] | undefined)?.join(' and ') ?? 'no one'}`);
              } else if (entry.kind === 'imported') {
                note(who, `own feed changed: ${busy} nights a peer already shows → imported, `
                  + 'nobody notified (no echo)');
              }
            } else if (entry.msg === 'inbound notification: refresh') {
              note(who, `read its peers: ${String(entry.reason)} → refresh (sync now) ${String(entry.refresh)}`);
            }
          }
          done();
        },
      });
      const app = createApp(config, { store: await openStore('memory'), logger: createLogger({ level: 'info', destination }) });
      await app.listen();
      apps.push(app);
    }
    // Pollers have read every feed once, so each sidecar has a snapshot to compare with.
    for (const platform of platforms) await platform.syncNow('schedule');
    for (const [i] of platforms.entries()) await (await request(sidecarUrl(i))).body.dump();

    const today = new Date();
    const stay = { start: addDays(today, 10), end: addDays(today, 13) };
    const [alpha] = platforms;
    if (!alpha) throw new Error('no platform');
    out?.(`icalpush demo: three platforms (${names.join(', ')}) share the listing "${listing}". Each imports the `
      + 'others\' .ics feeds once an hour and sits behind its own icalpush.\n');
    t0 = Date.now();
    const booked = await request(`http://127.0.0.1:${ports[0]}/bookings/${listing}`, {
      method: 'POST',
      body: JSON.stringify(stay),
      headers: { 'content-type': 'application/json' },
    });
    await booked.body.dump();
    note('alpha', `guest books ${stay.start} → ${stay.end} (${booked.statusCode})`);

    const propagationMs: Record<string, number | undefined> = {};
    const others = platforms.slice(1);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && others.some((p) => propagationMs[p.name] === undefined)) {
      for (const platform of others) {
        if (propagationMs[platform.name] !== undefined) continue;
        const has = Object.values(platform.imported()).some((stays) => stays.some((s) => s.start === stay.start));
        if (has) {
          propagationMs[platform.name] = Date.now() - t0;
          note(platform.name, `imported the stay: ${stay.start} → ${stay.end} now blocked`);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // Long enough for any echo (a HEAD back to alpha) to show up: re-reads run 0 and 2 s after a refresh.
    await new Promise((resolve) => setTimeout(resolve, 2_500));

    timeline.sort((a, b) => a.ms - b.ms);
    const ok = others.every((p) => propagationMs[p.name] !== undefined) && echoes === 0;
    if (out) {
      for (const entry of timeline) out(`${String(entry.ms).padStart(6)} ms  ${entry.who.padEnd(18)} ${entry.what}`);
      out('');
      for (const platform of others) {
        const ms = propagationMs[platform.name];
        out(`${platform.name}: blocked ${ms === undefined ? 'NOT within 10 s' : `after ${ms} ms`}; with hourly polling: `
          + '30 min on average, up to 60 min — the window in which the same nights get sold twice.');
      }
      out(echoes === 0
        ? 'No echo: the re-imports were recognised as imported, and alpha received no HEAD back.'
        : `Echo: alpha received ${echoes} HEAD(s) back.`);
    }
    return { ok, timeline, propagationMs, echoes };
  } finally {
    for (const app of apps) await app.close();
    for (const platform of platforms) await platform.close();
  }
}
