// The operator console in a real browser: headless Chromium loads each page of the mesh (console-mesh.ts)
// as an operator's browser does: the admin token is the password of the URL's credentials, which Chromium
// sends once the console's 401 asks for Basic (as it prompts a person for them). The DOM Chromium dumps
// after the deferred script ran is asserted (headings, rows, plots, the script's refresh checkbox and filter,
// no secret), and its screenshots are decoded and must show a page, light or dark as the scheme asks.
// Without Chromium the test is skipped and says so.
//
// The PNGs (and the dumped DOMs) land in a fresh temp folder (printed); with ICALPUSH_UPDATE_SCREENSHOTS=1
// the light screenshots of the overview and of `rome` become docs/console-overview.png and docs/console-listing.png.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { access, constants, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import { parseHTML } from 'linkedom';
import { meshSecrets, meshToken, startConsoleMesh } from '../helpers/console-mesh.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const width = 1280;
const height = 1600;
const deadlineMs = 30_000;
const skipMessage = 'Chromium not installed (apt-get install chromium): browser rendering not checked';

async function executable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `$CHROMIUM`, /usr/bin/chromium, or chromium / chromium-browser on PATH. */
async function findChromium(): Promise<string | undefined> {
  const env = process.env.CHROMIUM;
  if (env) return await executable(env) ? env : undefined;
  if (await executable('/usr/bin/chromium')) return '/usr/bin/chromium';
  for (const name of ['chromium', 'chromium-browser']) {
    for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
      if (await executable(join(dir, name))) return join(dir, name);
    }
  }
  return undefined;
}

type Scheme = 'light' | 'dark';

/** Runs headless Chromium on `url` with `extra` switches; killed (its whole process group) after 30 s. */
async function runChromium(chromium: string, url: string, scheme: Scheme, extra: string[]): Promise<string> {
  const profile = await mkdtemp(join(tmpdir(), 'icalpush-chromium-'));
  try {
    const child = spawn(chromium, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--hide-scrollbars',
      `--user-data-dir=${profile}`, `--window-size=${width},${height}`, '--virtual-time-budget=2000',
      '--no-first-run', '--no-default-browser-check',
      // prefers-color-scheme for the page (0 dark, 1 light); --force-dark-mode only themes Chromium's own UI.
      `--blink-settings=preferredColorScheme=${scheme === 'dark' ? 0 : 1}`,
      ...extra, url,
    ], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      err = (err + String(chunk)).slice(-4000);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, deadlineMs);
    const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
    const failed = once(child, 'error').then(([e]) => {
      throw e;
    });
    try {
      const [code, signal] = await Promise.race([closed, failed]);
      assert.ok(!timedOut, `Chromium did not finish ${url} within ${deadlineMs / 1000} s`);
      assert.equal(code, 0, `Chromium exited with ${code ?? signal} on ${url}:\n${err}`);
    } finally {
      clearTimeout(timer);
    }
    return Buffer.concat(out).toString('utf8');
  } finally {
    await rm(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
}

type Image = { width: number; height: number; channels: 3 | 4; pixels: Buffer };

const pngSignature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** The value a row's filter type adds back: from the left (a), above (b) and above-left (c) bytes. */
function predictor(filter: number | undefined, a: number, b: number, c: number, y: number): number {
  switch (filter) {
    case 0: return 0;
    case 1: return a;
    case 2: return b;
    case 3: return (a + b) >> 1;
    case 4: return paeth(a, b, c);
    default: throw new Error(`PNG filter type ${filter} on row ${y}`);
  }
}

/** Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes). */
function decodePng(png: Buffer): Image {
  assert.ok(png.subarray(0, 8).equals(pngSignature), 'a PNG signature');
  let offset = 8;
  let header: { width: number; height: number; depth: number; color: number; interlace: number } | undefined;
  const data: Buffer[] = [];
  while (offset + 8 <= png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const body = png.subarray(offset + 8, offset + 8 + length);
    offset += 12 + length;
    if (type === 'IHDR') {
      header = { width: body.readUInt32BE(0), height: body.readUInt32BE(4), depth: body.readUInt8(8),
        color: body.readUInt8(9), interlace: body.readUInt8(12) };
    } else if (type === 'IDAT') {
      data.push(body);
    } else if (type === 'IEND') {
      break;
    }
  }
  assert.ok(header, 'an IHDR chunk');
  assert.equal(header.depth, 8, 'bit depth 8');
  assert.ok(header.color === 2 || header.color === 6, `colour type RGB or RGBA, not ${header.color}`);
  assert.equal(header.interlace, 0, 'not interlaced');
  const channels = header.color === 6 ? 4 : 3;
  const stride = header.width * channels;
  const raw = inflateSync(Buffer.concat(data));
  assert.equal(raw.length, header.height * (stride + 1), 'the image data has every row');
  const pixels = Buffer.alloc(header.height * stride);
  for (let y = 0; y < header.height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = y * stride;
    const prior = row - stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[row + x - channels] ?? 0 : 0;
      const b = y > 0 ? pixels[prior + x] ?? 0 : 0;
      const c = y > 0 && x >= channels ? pixels[prior + x - channels] ?? 0 : 0;
      const v = line[x] ?? 0;
      pixels[row + x] = (v + predictor(filter, a, b, c, y)) & 0xff;
    }
  }
  return { width: header.width, height: header.height, channels, pixels };
}

const hex = (n: number) => `#${n.toString(16).padStart(6, '0')}`;

function pixel(image: Image, x: number, y: number): string {
  const i = (y * image.width + x) * image.channels;
  return hex(((image.pixels[i] ?? 0) << 16) | ((image.pixels[i + 1] ?? 0) << 8) | (image.pixels[i + 2] ?? 0));
}

/** The most common colour and the share of pixels that differ from it. */
function dominant(image: Image): { colour: string; otherShare: number } {
  const counts = new Map<number, number>();
  for (let i = 0; i < image.pixels.length; i += image.channels) {
    const rgb = ((image.pixels[i] ?? 0) << 16) | ((image.pixels[i + 1] ?? 0) << 8) | (image.pixels[i + 2] ?? 0);
    counts.set(rgb, (counts.get(rgb) ?? 0) + 1);
  }
  let best = 0;
  let bestCount = 0;
  for (const [rgb, count] of counts) {
    if (count > bestCount) [best, bestCount] = [rgb, count];
  }
  return { colour: hex(best), otherShare: 1 - bestCount / (image.width * image.height) };
}

/** The console's page background per scheme (console.css `--bg`). */
const background: Record<Scheme, string> = { light: '#ffffff', dark: '#0d1117' };

type Doc = ReturnType<typeof parseHTML>['document'];
const texts = (doc: Doc, selector: string) => [...doc.querySelectorAll(selector)].map((e) => (e.textContent ?? '').trim());

test('console in headless Chromium: the pages render, their script runs, light and dark, no secret', async (t) => {
  const chromium = await findChromium();
  if (!chromium) {
    process.stderr.write(`${skipMessage}\n`);
    t.skip(skipMessage);
    return;
  }
  const mesh = await startConsoleMesh(t);
  const base = `http://ops:${encodeURIComponent(meshToken)}@${new URL(mesh.app.url).host}/_icalpush`;
  const shots = await mkdtemp(join(tmpdir(), 'icalpush-console-'));
  t.diagnostic(`screenshots in ${shots}`);
  process.stderr.write(`console screenshots in ${shots}\n`);

  const pages = {
    overview: { path: '/', h1: 'Overview', dark: true },
    listings: { path: '/console/listings', h1: 'Listings', dark: false },
    rome: { path: '/console/listings/rome', h1: 'rome', dark: true },
    house: { path: '/console/listings/house', h1: 'house', dark: false },
  };
  const doms: Record<string, Doc> = {};
  /** The background pixel of each screenshot, by `${name}-${scheme}`. */
  const backgrounds: Record<string, string> = {};

  /** Screenshots `name` in `scheme`; checks it is a 1280-wide PNG showing something on the scheme's background. */
  const screenshot = async (name: string, path: string, scheme: Scheme) => {
    const file = join(shots, `${name}-${scheme}.png`);
    await runChromium(chromium, `${base}${path}`, scheme, [`--screenshot=${file}`]);
    const image = decodePng(await readFile(file));
    assert.equal(image.width, width, `${file} is ${width} wide`);
    assert.equal(image.height, height, `${file} is ${height} high`);
    const { colour, otherShare } = dominant(image);
    assert.ok(otherShare > 0.01, `${file} is blank: ${((1 - otherShare) * 100).toFixed(2)}% is ${colour}`);
    assert.equal(colour, background[scheme], `${file}: the most common colour is the ${scheme} background`);
    // The left margin near the bottom of the page is bare background.
    backgrounds[`${name}-${scheme}`] = pixel(image, 4, height - 4);
    assert.equal(backgrounds[`${name}-${scheme}`], background[scheme], `${file}: the ${scheme} background`);
    return file;
  };

  for (const [name, page] of Object.entries(pages)) {
    await t.test(`${name}: the DOM after the script ran, and a screenshot`, async () => {
      const [dumped] = await Promise.all([
        runChromium(chromium, `${base}${page.path}`, 'light', ['--dump-dom']),
        screenshot(name, page.path, 'light'),
      ]);
      await writeFile(join(shots, `${name}.html`), dumped);
      const { document } = parseHTML(dumped);
      doms[name] = document;
      assert.deepEqual(texts(document, 'main h1'), [page.h1], 'the page, not the sign-in prompt');
      // console.js ran: it adds the refresh checkbox to the top bar.
      const refresh = document.querySelectorAll('.top label.refresh input[type=checkbox]');
      assert.equal(refresh.length, 1, 'console.js added its refresh checkbox');
      for (const secret of meshSecrets) assert.ok(!dumped.includes(secret), `${name} shows ${secret}`);
    });
  }

  await t.test('the overview: four plots', () => {
    const document = doms.overview;
    assert.ok(document);
    const plots = [...document.querySelectorAll('figure.plot svg')];
    assert.equal(plots.length, 4);
    for (const svg of plots) assert.ok(svg.querySelector('.line, path, polyline'), 'a plot draws something');
  });

  await t.test('the listings table: its rows, and the filter console.js shows', () => {
    const document = doms.listings;
    assert.ok(document);
    assert.deepEqual(texts(document, '#listings-table tbody tr th'), ['rome', 'lisbon', 'house']);
    const filter = document.querySelector('label.filter');
    assert.ok(filter, 'the filter label');
    assert.equal(filter.hasAttribute('hidden'), false, 'console.js un-hid the filter');
  });

  await t.test('the listing pages: the timeline, peers of rome, the held drop of house', () => {
    const rome = doms.rome;
    const house = doms.house;
    assert.ok(rome && house);
    assert.ok(rome.querySelectorAll('.timeline .decision').length >= 2);
    assert.deepEqual(texts(rome, '#peers-h + table tbody th'), ['airbnb', 'vrbo']);
    assert.match(house.querySelector('.timeline .decision .rule')?.textContent ?? '', /drop-held/);
  });

  await t.test('dark scheme: the overview and a listing on the dark background', async () => {
    const dark = Object.entries(pages).filter(([, p]) => p.dark);
    await Promise.all(dark.map(([name, p]) => screenshot(name, p.path, 'dark')));
    for (const [name] of dark) {
      assert.ok(backgrounds[`${name}-light`] && backgrounds[`${name}-dark`]);
      assert.notEqual(backgrounds[`${name}-dark`], backgrounds[`${name}-light`], `${name}: dark and light differ`);
    }
  });

  if (process.env.ICALPUSH_UPDATE_SCREENSHOTS === '1') {
    await mkdir(join(repoRoot, 'docs'), { recursive: true });
    await copyFile(join(shots, 'rome-light.png'), join(repoRoot, 'docs', 'console-listing.png'));
    await copyFile(join(shots, 'overview-light.png'), join(repoRoot, 'docs', 'console-overview.png'));
    t.diagnostic('updated docs/console-listing.png and docs/console-overview.png');
  }
});
