// The help text of `icalpush replay`, apart from the command, so that --help loads no decision model.

/** What `icalpush replay --help` prints after the options. */
export const replayHelp = `
Each FILE is one read of the listing's own feed at its capture time: its --at
value, else the time in its name: the last YYYY-MM-DD in the base name,
optionally followed by THHMM, THHMMSS, THH:MM or THH:MM:SS and Z (UTC only);
a date alone is 12:00Z of that date. Times must not go backwards.
  booking-com_t0_2026-08-22T2012Z.ics   read at 2026-08-22T20:12:00Z
  airbnb_2025-10-23.ics                 read at 2025-10-23T12:00:00Z
A peer counts as read at the time in its name, else at each step's time.

One line per step: time, file, kind (rule), +nights added -nights removed, why.
As in the sidecar, a read that loses more than half of the future busy nights,
or every event, is held (kind held) until a read still shows the drop after
--hold-span; a file missing or not a complete calendar is reported (kind
unreadable) and skipped: the previous read stays the baseline.

Exit status: 0 every file read; 1 some file missing or not a complete calendar
(one line each on stderr, the other steps still replayed; a peer that cannot
be read stops the replay); 2 a usage error.

Example:
  icalpush replay --timezone Europe/Rome --peer airbnb_2026-11-30T2200Z.ics \\
    booking-com_t0_2026-11-30T2255Z.ics booking-com_t1_2026-11-30T2305Z.ics
`;
