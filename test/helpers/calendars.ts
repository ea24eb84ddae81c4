// Calendars the tests serve: all-day stays relative to now, written as the exporters write them (CRLF).

/** A stay: UID and its dates (YYYYMMDD, DTEND exclusive). */
export type Stay = { uid: string; start: string; end: string; summary?: string };

/** The date `offset` days from `from` (now by default) as an iCalendar DATE (YYYYMMDD). */
export function dayFromNow(offset: number, from = Date.now()): string {
  return new Date(from + offset * 86_400_000).toISOString().slice(0, 10).replaceAll('-', '');
}

/** A VCALENDAR of all-day stays, CRLF line ends, a fixed DTSTAMP. */
export function staysCalendar(stays: readonly Stay[]): string {
  const lines = [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//icalpush tests//stays//EN',
    ...stays.flatMap((stay) => [
      'BEGIN:VEVENT',
      `UID:${stay.uid}`,
      'DTSTAMP:20250101T120000Z',
      `DTSTART;VALUE=DATE:${stay.start}`,
      `DTEND;VALUE=DATE:${stay.end}`,
      `SUMMARY:${stay.summary ?? 'Reserved'}`,
      'END:VEVENT',
    ]),
    'END:VCALENDAR',
  ];
  return `${lines.join('\r\n')}\r\n`;
}
