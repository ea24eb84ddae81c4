// Regression: a peer URL with `user:password@`, a query secret without `=` and a token as a path
// segment were shown verbatim in /_icalpush/status, log lines and `icalpush check`. SPEC "Admin":
// userinfo, every query value, header values and `{secret}` path segments never appear there.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { summarizeConfig } from '../../src/config/summary.ts';
import { startApp } from '../helpers/app.ts';
import { closedPort, startServer } from '../helpers/servers.ts';

const calendar = [
  'BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//test//EN',
  'BEGIN:VEVENT', 'UID:stay-1', 'DTSTAMP:20250101T000000Z', 'DTSTART;VALUE=DATE:20300101',
  'DTEND;VALUE=DATE:20300105', 'SUMMARY:Reserved', 'END:VEVENT',
  'END:VCALENDAR', '',
].join('\r\n');

// Each of these would show through one of the ways a URL carries its secret.
const secrets = ['pa55word', '3f2a9c7e1b8d4a6f0e5d', 'abc123secret', 's3cr3tvalue', 'segsecret42'];

test('no secret of a URL appears in logs, status or the check summary', async (t) => {
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(calendar);
  });
  // Nothing listens there: notifications fail and are logged, retried and listed as pending.
  const peerUrl = `http://user:pa55word@127.0.0.1:${await closedPort()}/cal/3f2a9c7e1b8d4a6f0e5d.ics?abc123secret`;
  const started = await startApp(t, upstream.url, {
    feeds: [{ path: '/calendar/{listing}.ics' }, { path: '/ical/{listing}/{secret}.ics' }],
    listings: {
      x: { feed: '/calendar/x.ics?t=s3cr3tvalue', peers: [{ url: peerUrl }] },
      // `segsecret42` looks like a word: only the {secret} of the pattern says it is one.
      y: { feed: '/ical/y/segsecret42.ics' },
    },
    push: { watch: 0 },
  });
  const { url } = started;

  const get = await request(`${url}/calendar/x.ics?t=s3cr3tvalue`);
  assert.equal(get.statusCode, 200);
  await get.body.dump();
  // With a hook on a private address: refused, and the refusal is logged with the feed.
  const secretGet = await request(`${url}/ical/y/segsecret42.ics`, { headers: { 'x-icalhooks-url': 'http://127.0.0.1:1/hook' } });
  assert.equal(secretGet.statusCode, 200);
  await secretGet.body.dump();
  await started.waitForLog((l) => l.msg === 'hook refused');
  const head = await request(`${url}/ical/y/segsecret42.ics`, { method: 'HEAD' });
  await head.body.dump();
  const changed = await request(`${url}/_icalpush/listings/x/changed`, { method: 'POST' });
  assert.equal(changed.statusCode, 202);
  await changed.body.dump();
  await started.waitForLog((l) => l.msg === 'push notification will be retried');

  const statusRes = await request(`${url}/_icalpush/status`);
  assert.equal(statusRes.statusCode, 200);
  const status = await statusRes.body.text();
  const summary = summarizeConfig(started.config, 'proxy.yaml');

  // The places were really looked at: the feeds, the peer and its notification are in each.
  assert.match(status, /\/ical\/y\/\[REDACTED\]\.ics/);
  assert.match(status, /\/calendar\/x\.ics\?t=\[REDACTED\]/);
  assert.match(status, /"pending":\[\{"listing":"x"[^}]*"url":"http:\/\/\[REDACTED\]@127\.0\.0\.1:\d+\/cal\/\[REDACTED\]\.ics\?\[REDACTED\]"/);
  assert.match(started.logText(), /"url":"\/ical\/y\/\[REDACTED\]\.ics"/);
  assert.match(started.logText(), /"msg":"feed changed"/);
  assert.match(started.logText(), /"hook":\{"feed":"\/ical\/y\/\[REDACTED\]\.ics"/);
  assert.match(summary, /http:\/\/\[REDACTED\]@127\.0\.0\.1:\d+\/cal\/\[REDACTED\]\.ics\?\[REDACTED\]/);
  for (const secret of secrets) {
    assert.ok(!started.logText().includes(secret), `logs show ${secret}:\n${started.logText()}`);
    assert.ok(!status.includes(secret), `status shows ${secret}:\n${status}`);
    assert.ok(!summary.includes(secret), `summary shows ${secret}:\n${summary}`);
  }
});
