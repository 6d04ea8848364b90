// `npm run what-if` options: parsed strictly (an unknown flag or a missing value is exit code 2
// before any request), every file and date checked before connecting.
import { readFileSync } from 'node:fs';
import { parseCommandLine } from '../admin/command-line';
import { parseIsoDate } from '../sla/sla-export';
import { parseChanges } from './settings';
import type { Changes, Secrets } from './settings';

const DAY_MS = 86_400_000;
/** Where the page goes by default: reports/ is git-ignored (the page holds the clinic's thread ids). */
export const DEFAULT_PAGE = 'reports/what-if-report.html';

export const USAGE = `Usage: npm run what-if -- --since DATE --proposed FILE [options]

Previews a change of the bots' settings on the clinic's own history: replays the period through the
bots' own decision code (each message when it came, the scheduled runs when they ran), once with the current settings and once with the proposed ones,
and compares, per week and priority: reminders created, escalations and how far they went, reminders
still open at the end, response Tasks opened, Tasks sent to the pool or a cover, first-reply breach
rate. It also replays the current settings against what the bots actually did in the period, and says
how well they agree. Nothing is written to the Project.

Options:
  --since DATE         start of the period (inclusive)
  --until DATE         end of the period (exclusive; default: now)
                       DATE is ISO 8601: 2026-11-01 (midnight UTC) or a date-time with its offset
  --proposed FILE      the settings to try: a JSON object of secret names to values, as
                       \`npm run settings -- set NAME=VALUE\` takes them, e.g.
                       {"STALE_AFTER_HOURS": "36", "BUSINESS_HOURS": {"timeZone": "America/New_York", ...}};
                       null removes a secret (the bot's default then). Checked by the bots' validators
  --current FILE       the current settings in the same form, instead of reading the Project's secrets
                       (which needs a Project admin client): for a read-only client
  --warmup-days N      days replayed before --since so that reminders already open then exist in the
                       replay (default 14; figures count from --since only)
  --runs WHEN          history (default): the sweep and the reminders run when the bots' run history
                       says they ran (read from their AuditEvents; every hour when it cannot be read);
                       hourly: at every exact hour, as if the bots never missed or moved a run
  --format FORMAT      html (default): one self-contained page; csv or json: the rows
  --out FILE           where to write (default: reports/what-if-report.html for html, standard output otherwise)
  --env NAME           another environment: .env.NAME (its server and credentials) instead of .env
  --help               this text

Connects with MEDPLUM_BASE_URL (default https://api.medplum.com/), MEDPLUM_CLIENT_ID and
MEDPLUM_CLIENT_SECRET, from the environment or .env (.env.NAME with --env NAME). A client that can
only read is enough. It reads messages (who sent them and when, never their text), Tasks, thread
headers, Schedules and Slots: 20 quota points a search page, paced by the quota like sla-export.`;

/** Checked options. */
export interface WhatIfOptions {
  since: number;
  until: number;
  /** The replay starts here. */
  from: number;
  changes: Changes;
  /** Current settings given by file (else read from the Project). */
  current?: Secrets;
  format: 'html' | 'csv' | 'json';
  /** When the scheduled runs are replayed: when the bots ran (their history), or every exact hour. */
  runs: 'history' | 'hourly';
  out?: string;
  env?: string;
}

/**
 * Parses the command line.
 * @param argv - The arguments after `--`.
 * @param now - Now (the default --until).
 * @param print - Where --help and mistakes go.
 * @param print.out - Standard output.
 * @param print.err - Standard error.
 * @param readFile - Reads a file (tests).
 * @returns The options, or the exit code to return at once.
 */
export function parseWhatIfArgs(
  argv: string[],
  now: Date,
  print: { out: (text: string) => void; err: (text: string) => void },
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')
): { options: WhatIfOptions } | { exit: number } {
  const parsed = parseCommandLine(
    argv,
    {
      since: { type: 'string' },
      until: { type: 'string' },
      proposed: { type: 'string' },
      current: { type: 'string' },
      'warmup-days': { type: 'string' },
      format: { type: 'string' },
      runs: { type: 'string' },
      out: { type: 'string' },
      env: { type: 'string' },
    },
    USAGE,
    { out: print.out, err: (t) => print.err(`what-if: ${t}`) }
  );
  if ('exit' in parsed) {
    return parsed;
  }
  const v = parsed.values as Record<string, string | undefined>;
  const fail = (message: string): { exit: number } => {
    print.err(`what-if: ${message}\nRun with --help for the options.`);
    return { exit: 2 };
  };
  if (!v.since) {
    return fail('--since is required');
  }
  if (!v.proposed) {
    return fail('--proposed is required');
  }
  const since = parseIsoDate(v.since);
  const until = v.until === undefined ? now.toISOString() : parseIsoDate(v.until);
  if (!since || !until) {
    return fail(`--${since ? 'until' : 'since'} is not an ISO 8601 date (2026-11-01) or date-time with an offset (2026-11-01T08:00:00Z)`);
  }
  if (since >= until) {
    return fail(`--since ${v.since} is not before --until ${v.until ?? `(now, ${until})`}`);
  }
  const warmup = Number(v['warmup-days'] ?? '14');
  if (!Number.isInteger(warmup) || warmup < 0 || warmup > 90) {
    return fail('--warmup-days must be a whole number of days from 0 to 90');
  }
  const format = v.format ?? 'html';
  if (format !== 'html' && format !== 'csv' && format !== 'json') {
    return fail(`--format must be html, csv or json, not "${format}"`);
  }
  const runs = v.runs ?? 'history';
  if (runs !== 'history' && runs !== 'hourly') {
    return fail(`--runs must be history or hourly, not "${runs}"`);
  }
  if (v.env !== undefined && !/^[A-Za-z0-9_-]+$/.test(v.env)) {
    return fail('--env takes a name like staging (letters, digits, - and _)');
  }
  const proposed = settingsFile(v.proposed, '--proposed', readFile);
  if ('error' in proposed) {
    return fail(proposed.error);
  }
  let current: Secrets | undefined;
  if (v.current) {
    const read = settingsFile(v.current, '--current', readFile);
    if ('error' in read) {
      return fail(read.error);
    }
    current = Object.fromEntries(Object.entries(read.changes).filter((e): e is [string, string] => e[1] !== null));
  }
  const start = Date.parse(since);
  return {
    options: {
      since: start,
      until: Date.parse(until),
      from: start - warmup * DAY_MS,
      changes: proposed.changes,
      current,
      format,
      runs,
      out: v.out ?? (format === 'html' ? DEFAULT_PAGE : undefined),
      env: v.env,
    },
  };
}

function settingsFile(path: string, option: string, readFile: (path: string) => string): { changes: Changes } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(readFile(path));
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    return { error: `${option} ${path}: ${missing ? 'no such file' : `not JSON (${(err as Error).message})`}` };
  }
  const parsed = parseChanges(value);
  return 'errors' in parsed ? { error: `${option} ${path}: ${parsed.errors.join('; ')}` } : parsed;
}
