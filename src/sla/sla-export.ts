// `npm run sla-export -- [options]`: one row per message-response Task and reminder, with SLA
// metrics from each Task's version history, as NDJSON or CSV, and a per-priority summary.
//
// It spends the caller's FHIR quota (history 10 points a Task, searches 20), pacing itself by the
// server's RateLimit header: it waits for the announced reset rather than fail, and says so.
import { getReferenceString } from '@medplum/core';
import type { MedplumClient } from '@medplum/core';
import type { Bundle, BundleEntry, Communication, Task } from '@medplum/fhirtypes';
import Table from 'cli-table3';
import { stringify } from 'csv-stringify/sync';
import { accessSync, constants, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { connect, connectionEnv, loadDotEnv } from '../admin/connect';
import { businessClock, parseBusinessHours, WALL_CLOCK } from '../lib/business-hours';
import type { Clock } from '../lib/business-hours';
import { CLOCK_SKEW_MS } from '../lib/conversation-reads';
import { readPages } from '../lib/fhir';
import { QUOTA_COST } from '../lib/quota';
import { REMINDER_CODING } from '../stale-thread-reminders';
import { terminalProgress } from './progress';
import type { Progress } from './progress';
import { QuotaPacer } from './quota-pacer';
import { computeRow, DEFAULT_TARGETS, parseTargets, slaColumns, summarize } from './sla-metrics';
import { readOpenReminders, renderReport, withResponseTaskCode } from './sla-report';
import type { PrioritySummary, SlaRow, Targets, ThreadMessage } from './sla-metrics';

const DEFAULT_CODES = [
  'https://medplum.com/task-codes|respond-to-message',
  `${REMINDER_CODING.system}|${REMINDER_CODING.code}`,
];
/** Histories fetched per batch request, threads per message search. */
const HISTORY_BATCH = 100;
const THREADS_PER_SEARCH = 100;
/** Versions per history page (the server's default and what it returns without `_count`). */
const HISTORY_PAGE = 100;
/** What a row reads of a message: who sent it and when, never its text. */
const MESSAGE_ELEMENTS = 'partOf,sender,sent,status';

const HELP = `Usage: npm run sla-export -- [options]

Exports one row per message-response Task and reminder, with SLA metrics computed from each Task's
version history, and prints a per-priority summary.

Options:
  --since DATE          only Tasks authored at or after DATE (inclusive)
  --until DATE          only Tasks authored before DATE (exclusive; default: now)
                        DATE is ISO 8601: 2026-11-01 (midnight UTC) or a date-time with its offset,
                        2026-11-01T08:00:00-05:00 or 2026-11-01T13:00:00Z; a date-time without
                        an offset is refused, as it would be ambiguous
  --format FORMAT       ndjson (default) or csv
  --out FILE            write the rows to FILE (default: standard output; the summary then goes to
                        standard error)
  --targets FILE        JSON service levels in hours per priority, e.g.
                        {"firstReply": {"routine": 24, "urgent": 4, "asap": 1, "stat": 0.25}};
                        "claim" and "complete" targets may be added. Default: the firstReply above.
  --business-hours FILE JSON opening hours (the BUSINESS_HOURS format, see the README): every
                        hours_to_* column and target then counts open hours only
  --codes LIST          comma-separated system|code of the Tasks to export (default:
                        ${DEFAULT_CODES.join(',')})
  --html FILE           also write the SLA report: one self-contained HTML page with charts (no
                        network needed to open it; it can be mailed). Without --out, no rows are written
  --app-url URL         where the report's thread links open (default: the Medplum App of
                        MEDPLUM_BASE_URL, https://app.medplum.com/ for the hosted service)
  --help                this text

Connects with MEDPLUM_BASE_URL (default https://api.medplum.com/), MEDPLUM_CLIENT_ID and
MEDPLUM_CLIENT_SECRET, from the environment or .env. It reads Task histories (10 quota points each)
and thread messages (20 per search page): 10,000 Tasks need about two minutes of a user's default
50,000 points a minute. It waits for the quota to reset when it must, and says so.`;

/** What the export can be given instead of the process's own (tests, the README sample). */
export interface ExportIo {
  medplum?: MedplumClient;
  now?: Date;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /** Reports progress and waits; default a bar on a terminal, a line per phase otherwise. */
  progress?: Progress;
  /** Waits (tests move a fake clock instead of sleeping). */
  sleep?: (ms: number) => Promise<void>;
  /** The environment (tests); by default the process's, with .env loaded. */
  env?: NodeJS.ProcessEnv;
}

/** Checked options. */
export interface ExportOptions {
  since?: string;
  until?: string;
  format: 'ndjson' | 'csv';
  out?: string;
  targets: Targets;
  clock: Clock;
  codes: string[];
  html?: string;
  appUrl?: string;
}

/**
 * Runs the export.
 * @param argv - Command-line options.
 * @param io - Injected client, clock and outputs.
 * @returns The exit code: 0 done, 1 failed, 2 bad options.
 */
export async function main(argv: string[], io: ExportIo = {}): Promise<number> {
  const stdout = io.stdout ?? ((text: string) => process.stdout.write(text));
  const stderr = io.stderr ?? ((text: string) => process.stderr.write(text));
  const now = io.now ?? new Date();
  const parsed = parseOptions(argv, now);
  if ('help' in parsed) {
    stdout(`${HELP}\n`);
    return 0;
  }
  if ('error' in parsed) {
    stderr(`sla-export: ${parsed.error}\nRun with --help for the options.\n`);
    return 2;
  }
  const options = parsed.options;
  const progress = io.progress ?? terminalProgress(process.stderr);
  try {
    if (!io.medplum && !io.env) {
      loadDotEnv();
    }
    const medplum = io.medplum ?? (await connect(connectionEnv(io.env)));
    const pacer = new QuotaPacer(medplum, { sleep: io.sleep, onWait: (s) => progress.waiting(s) });
    // The report's part (sla-report.ts): without --codes, the clinic's RESPONSE_TASK_CODE is exported too.
    if (!argv.some((a) => a === '--codes' || a.startsWith('--codes='))) {
      const withClinic = await withResponseTaskCode(medplum, options.codes);
      options.codes = withClinic.codes;
      if (withClinic.added) {
        stderr(`sla-export: RESPONSE_TASK_CODE ${withClinic.added} exported too (the clinic's response Tasks)\n`);
      }
    }
    const rowsBy = await exportRows(medplum, pacer, options, now, progress, (refs) =>
      stderr(`sla-export: could not read the history of ${refs.length} Task(s), exported from their current version: ${refs.join(', ')}\n`)
    );
    progress.done();
    const rows = rowsBy(options.clock);
    const text =
      options.format === 'csv'
        ? stringify(rows, { header: true, columns: slaColumns(options.targets) })
        : rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');
    const summary = formatSummary(summarize(rows), rows.length, options.clock.kind);
    if (options.html) {
      const html = await renderReport({
        rows: options.clock.kind === 'wall' ? rows : rowsBy(WALL_CLOCK),
        businessRows: options.clock.kind === 'business' ? rows : undefined,
        since: options.since,
        until: options.until as string,
        generatedAt: now,
        appUrl: options.appUrl ?? appUrlOf(medplum.getBaseUrl()),
        responseCode: DEFAULT_CODES[0],
        reminderCode: DEFAULT_CODES[1],
        openReminders: await readOpenReminders(medplum, DEFAULT_CODES[1], options.until as string, (cost, request) => pacer.run(cost, request)),
      });
      writeFileSync(options.html, html);
      stdout(`${summary}\nreport written to ${options.html} (${Math.round(html.length / 1024)} kB)\n`);
      if (!options.out) {
        return 0;
      }
    }
    if (options.out) {
      writeFileSync(options.out, text);
      stdout(`${summary}\n${rows.length} rows written to ${options.out}\n`);
    } else {
      stdout(text);
      stderr(`${summary}\n`);
    }
    return 0;
  } catch (err) {
    progress.done();
    stderr(`sla-export failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/**
 * Parses and checks every option before any request: dates, files, the output path.
 * @param argv - Command-line options.
 * @param now - Now (the default `--until`).
 * @returns The options, `{ help }`, or what is wrong.
 */
export function parseOptions(argv: string[], now: Date): { options: ExportOptions } | { help: true } | { error: string } {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        since: { type: 'string' },
        until: { type: 'string' },
        format: { type: 'string', default: 'ndjson' },
        out: { type: 'string' },
        targets: { type: 'string' },
        'business-hours': { type: 'string' },
        codes: { type: 'string' },
        html: { type: 'string' },
        'app-url': { type: 'string' },
        help: { type: 'boolean' },
      },
    }).values;
  } catch (err) {
    return { error: (err as Error).message };
  }
  if (values.help) {
    return { help: true };
  }
  if (values.format !== 'ndjson' && values.format !== 'csv') {
    return { error: `--format must be ndjson or csv, not "${values.format}"` };
  }
  const dates: Partial<Record<'since' | 'until', string>> = {};
  for (const name of ['since', 'until'] as const) {
    const value = values[name] as string | undefined;
    if (value !== undefined) {
      const instant = parseIsoDate(value);
      if (!instant) {
        return { error: `--${name} ${JSON.stringify(value)} is not an ISO 8601 date (2026-11-01) or date-time with an offset (2026-11-01T08:00:00Z)` };
      }
      dates[name] = instant;
    }
  }
  const until = dates.until ?? now.toISOString();
  if (dates.since && dates.since >= until) {
    return { error: `--since ${values.since} is not before --until ${values.until ?? `(now, ${until})`}` };
  }
  const codes = ((values.codes as string | undefined) ?? DEFAULT_CODES.join(',')).split(',').map((c) => c.trim()).filter(Boolean);
  if (!codes.length || codes.some((c) => !/^[^|]+\|[^|]+$/.test(c))) {
    return { error: `--codes must be a comma-separated list of system|code` };
  }
  const targets = values.targets ? readJsonFile(values.targets as string, '--targets', parseTargets) : { targets: DEFAULT_TARGETS };
  if ('error' in targets) {
    return targets;
  }
  const hours = values['business-hours'] ? readJsonFile(values['business-hours'] as string, '--business-hours', parseBusinessHours) : undefined;
  if (hours && 'error' in hours) {
    return hours;
  }
  const out = values.out as string | undefined;
  const html = values.html as string | undefined;
  for (const [flag, path] of [['--out', out], ['--html', html]] as const) {
    const problem = path ? unwritable(path) : undefined;
    if (problem) {
      return { error: `${flag} ${path}: ${problem}` };
    }
  }
  const appUrl = values['app-url'] as string | undefined;
  if (appUrl !== undefined && !/^https?:\/\/\S+$/.test(appUrl)) {
    return { error: `--app-url must be an http(s) URL` };
  }
  return {
    options: {
      since: dates.since,
      until,
      format: values.format,
      out,
      targets: targets.targets,
      clock: hours ? businessClock(hours.hours) : WALL_CLOCK,
      codes,
      html,
      appUrl,
    },
  };
}

/**
 * A strict ISO 8601 date (midnight UTC) or date-time with an offset.
 * @param value - The text.
 * @returns The instant, ISO in UTC; undefined when not strict ISO 8601.
 */
export function parseIsoDate(value: string): string | undefined {
  // Stryker disable next-line Regex: equivalent, what the anchors reject new Date rejects as well (tested)
  const date = /^(\d{4})-(\d\d)-(\d\d)$/.exec(value);
  // Stryker disable next-line Regex: equivalent, as above
  const dateTime = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,3})?)?(Z|[+-]\d\d:\d\d)$/.test(value);
  if (!date && !dateTime) {
    return undefined;
  }
  const instant = new Date(date ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(instant.getTime())) {
    return undefined;
  }
  // Reject dates that Date rolls over (2026-02-30 becomes March 2).
  if (date && instant.toISOString().slice(0, 10) !== value) {
    return undefined;
  }
  return instant.toISOString();
}

function readJsonFile<R extends object>(path: string, option: string, parse: (value: unknown) => R | { error: string }): R | { error: string } {
  let value: unknown;
  try {
    // Stryker disable next-line StringLiteral: equivalent, JSON.parse reads a Buffer as UTF-8 too
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    return { error: `${option} ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not JSON (${(err as Error).message})`}` };
  }
  const parsed = parse(value);
  return 'error' in parsed ? { error: `${option} ${path}: ${parsed.error}` } : parsed;
}

function unwritable(path: string): string | undefined {
  const dir = dirname(resolve(path));
  if (!existsSync(dir)) {
    return `folder ${dir} does not exist`;
  }
  if (existsSync(path) && statSync(path).isDirectory()) {
    return 'is a folder';
  }
  // Stryker disable all: untestable here, the tests run as root, who may write anywhere
  try {
    accessSync(existsSync(path) ? path : dir, constants.W_OK);
    return undefined;
  } catch {
    return 'not writable';
  }
  // Stryker restore all
}

/**
 * Reads the Tasks, their full histories (in batches: the server has no type-level Task history) and
 * their threads' messages, and computes one row per Task.
 * @param medplum - The client.
 * @param pacer - Keeps requests within the quota.
 * @param options - Date range, codes, targets, clock.
 * @param now - Export time.
 * @param progress - Progress and waits.
 * @param onUnreadable - Told the Tasks whose history could not be read (each exported from its current version).
 * @returns The rows by a clock, oldest authored first.
 */
async function exportRows(
  medplum: MedplumClient,
  pacer: QuotaPacer,
  options: ExportOptions,
  now: Date,
  progress: Progress,
  onUnreadable: (refs: string[]) => void
): Promise<(clock: Clock) => SlaRow[]> {
  const query: string[][] = [['code', options.codes.join(',')]];
  if (options.since) {
    query.push(['authored-on', `ge${options.since}`]);
  }
  query.push(['authored-on', `lt${options.until ?? now.toISOString()}`]);
  progress.phase('Tasks', 0);
  const tasks: Task[] = [];
  const pages = readPages(medplum, 'Task', query);
  for (;;) {
    const page = await pacer.run(QUOTA_COST.search, () => pages.next());
    if (page.done) {
      break;
    }
    tasks.push(...(page.value.entry ?? []).map((e) => e.resource as Task));
    progress.tick(tasks.length);
  }

  progress.phase('histories', tasks.length);
  const histories = new Map<string, Task[]>();
  const unreadable: string[] = [];
  for (let i = 0; i < tasks.length; ) {
    // A batch no larger than the quota left this minute: one that could never fit would only wait.
    const left = pacer.left();
    // Stryker disable next-line EqualityOperator: equivalent, at exactly one history's points left either way finishes
    if (left && left.points < QUOTA_COST.history) {
      await pacer.wait(left.secondsUntilReset);
      continue;
    }
    const size = Math.min(HISTORY_BATCH, Math.floor((left?.points ?? Infinity) / QUOTA_COST.history));
    const chunk = tasks.slice(i, i + size);
    const pagesOf = await readHistories(medplum, pacer, chunk.map((t) => t.id as string));
    for (const task of chunk) {
      // No version readable (deleted or refused meanwhile): the version the search gave still makes a row.
      const versions = pagesOf.get(task.id as string) as Task[];
      histories.set(task.id as string, versions.length ? versions : [task]);
      if (!versions.length) {
        unreadable.push(getReferenceString(task) as string);
      }
    }
    i += chunk.length;
    progress.tick(i);
  }

  const threads = threadStarts(tasks);
  progress.phase('threads', threads.length);
  const messages = new Map<string, ThreadMessage[]>();
  for (let i = 0; i < threads.length; i += THREADS_PER_SEARCH) {
    const chunk = threads.slice(i, i + THREADS_PER_SEARCH);
    for (const m of await readChunkMessages(medplum, pacer, chunk)) {
      const thread = m.partOf?.find((p) => chunk.some((c) => c.thread === p.reference))?.reference;
      if (!thread) {
        continue; // an opening message named by a Task of another thread
      }
      messages.set(thread, [...(messages.get(thread) ?? []), { id: m.id as string, time: m.sent ?? m.meta?.lastUpdated ?? '', sender: m.sender, status: m.status }]);
    }
    progress.tick(Math.min(i + THREADS_PER_SEARCH, threads.length));
  }

  if (unreadable.length) {
    onUnreadable(unreadable);
  }
  // The same facts counted by either clock: the report shows wall-clock and business-hour figures.
  return (clock: Clock) =>
    tasks
      .map((t) => computeRow(histories.get(t.id as string) as Task[], messages.get(t.focus?.reference ?? '') ?? [], options.targets, now, clock))
      .sort((a, b) => (a.authored_on as string).localeCompare(b.authored_on as string)); // searched by authored-on: always set
}

/** A thread of exported Tasks: when its earliest Task started, and the messages that opened them. */
interface ThreadStart {
  thread: string;
  /** The earliest authoredOn of its Tasks (epoch ms). */
  since: number;
  /** Opening messages the Tasks name (a row's clock may start there). */
  openings: string[];
}

/**
 * The threads of the Tasks, earliest start first (so a chunk of them starts close together).
 * @param tasks - The exported Tasks.
 * @returns One entry per thread.
 */
function threadStarts(tasks: Task[]): ThreadStart[] {
  const byThread = new Map<string, ThreadStart>();
  for (const task of tasks) {
    const thread = task.focus?.reference;
    if (!thread?.startsWith('Communication/')) {
      continue;
    }
    const start = byThread.get(thread) ?? { thread, since: Infinity, openings: [] };
    const authored = Date.parse(task.authoredOn ?? task.meta?.lastUpdated ?? '');
    start.since = Math.min(start.since, Number.isNaN(authored) ? -Infinity : authored);
    const opening = task.input?.find((i) => i.valueReference?.reference?.startsWith('Communication/'))?.valueReference?.reference;
    if (opening) {
      start.openings.push(opening);
    }
    byThread.set(thread, start);
  }
  return [...byThread.values()].sort((a, b) => a.since - b.since);
}

/**
 * The messages a chunk of threads' rows need: every message whose time is at or after the chunk's
 * earliest Task start (or its earliest opening message, read first by id when a Task names one),
 * searched by `_lastUpdated` (a message's time is at most its lastUpdated) and paged by cursor.
 * @param medplum - The client.
 * @param pacer - Quota pacing (each page is one search).
 * @param chunk - Up to a hundred threads.
 * @returns The messages, who sent them and when.
 */
async function readChunkMessages(medplum: MedplumClient, pacer: QuotaPacer, chunk: ThreadStart[]): Promise<Communication[]> {
  const found = new Map<string, Communication>();
  const read = async (query: string[][]): Promise<void> => {
    const pages = readPages(medplum, 'Communication', [...query, ['_elements', MESSAGE_ELEMENTS]]);
    for (;;) {
      const page = await pacer.run(QUOTA_COST.search, () => pages.next());
      if (page.done) {
        return;
      }
      page.value.entry?.forEach((e) => e.resource?.id && found.set(e.resource.id, e.resource as Communication));
    }
  };
  const openings = [...new Set(chunk.flatMap((c) => c.openings))];
  if (openings.length) {
    await read([['_id', openings.map((o) => o.split('/')[1]).join(',')]]);
  }
  const times = [...chunk.map((c) => c.since), ...[...found.values()].map((m) => Date.parse(m.sent ?? m.meta?.lastUpdated ?? ''))].filter((t) => !Number.isNaN(t));
  const since = Math.min(...times) - CLOCK_SKEW_MS;
  await read([['part-of', chunk.map((c) => c.thread).join(',')], ...(Number.isFinite(since) ? [['_lastUpdated', `ge${new Date(since).toISOString()}`]] : [])]);
  return [...found.values()];
}

/**
 * Where the Medplum App of a server is: app.medplum.com for the hosted API, else the server's own
 * origin (a self-hosted App often lives elsewhere: --app-url).
 * @param baseUrl - The server's base URL.
 * @returns The App's URL.
 */
export function appUrlOf(baseUrl: string): string {
  const url = new URL(baseUrl);
  return url.hostname === 'api.medplum.com' ? 'https://app.medplum.com/' : `${url.origin}/`;
}

/**
 * Every version of each Task: a batch of first pages, then, for a Task with more versions than one
 * page, its next pages (the `next` link when the server gives one, else by `_offset` up to `total`).
 * Entries refused for quota inside the batch are asked again after the reset.
 * @param medplum - The client.
 * @param pacer - Quota pacing.
 * @param ids - Task ids.
 * @returns Versions per Task id.
 */
async function readHistories(medplum: MedplumClient, pacer: QuotaPacer, ids: string[]): Promise<Map<string, Task[]>> {
  const versions = new Map<string, Task[]>();
  let pending = ids;
  while (pending.length) {
    const entries: BundleEntry[] = pending.map((id) => ({ request: { method: 'GET', url: `Task/${id}/_history` } }));
    // Stryker disable next-line ArithmeticOperator: equivalent, the batch is sized to the quota left, so this cost never makes the pacer wait
    const response = await pacer.run(QUOTA_COST.history * entries.length, () => medplum.executeBatch({ resourceType: 'Bundle', type: 'batch', entry: entries }));
    const refused: string[] = [];
    for (const [i, id] of pending.entries()) {
      const entry = response.entry?.[i];
      // Stryker disable next-line MethodExpression: equivalent, Medplum's entry status is exactly "429"
      if (entry?.response?.status?.startsWith('429')) {
        refused.push(id);
        continue;
      }
      const first = entry?.resource as Bundle<Task> | undefined;
      versions.set(id, await restOfHistory(medplum, pacer, id, first));
    }
    // Stryker disable all: equivalent here, pacer.run waits too when the header says the quota is spent; this wait is for a server that sends no header
    if (refused.length) {
      await pacer.wait(pacer.left()?.secondsUntilReset ?? 60);
    }
    // Stryker restore all
    pending = refused;
  }
  return versions;
}

async function restOfHistory(medplum: MedplumClient, pacer: QuotaPacer, id: string, first: Bundle<Task> | undefined): Promise<Task[]> {
  const all: Task[] = (first?.entry ?? []).map((e) => e.resource).filter((v): v is Task => !!v);
  let page = first;
  while (page) {
    const next = page.link?.find((l) => l.relation === 'next')?.url;
    if (!next && !(page.total !== undefined && all.length < page.total && page.entry?.length)) {
      break;
    }
    const url = next ?? `${medplum.fhirUrl('Task', id, '_history')}?_offset=${all.length}&_count=${HISTORY_PAGE}`;
    page = await pacer.run(QUOTA_COST.history, () => medplum.get<Bundle<Task>>(url, { cache: 'no-cache' }));
    all.push(...(page.entry ?? []).map((e) => e.resource).filter((v): v is Task => !!v));
  }
  return all;
}

/**
 * The summary table: per priority, count, p50/p90 hours to claim, first reply and completion,
 * first-reply breach rate and reroutes.
 * @param lines - Per-priority summaries.
 * @param rows - How many rows were exported.
 * @param clock - Which hours the figures count.
 * @returns The text.
 */
export function formatSummary(lines: PrioritySummary[], rows: number, clock: 'wall' | 'business' = 'wall'): string {
  const h = (v: number | null): string => (v === null ? '-' : v.toFixed(2));
  const table = new Table({
    head: ['priority', 'tasks', 'claim p50/p90 h', 'first reply p50/p90 h', 'complete p50/p90 h', 'breach rate', 'reroutes'],
    chars: Object.fromEntries(
      ['top', 'top-mid', 'top-left', 'top-right', 'bottom', 'bottom-mid', 'bottom-left', 'bottom-right', 'left', 'left-mid', 'mid', 'mid-mid', 'right', 'right-mid', 'middle'].map((k) => [k, ''])
    ),
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 2 },
  });
  for (const l of lines) {
    table.push([
      l.priority,
      String(l.count),
      `${h(l.claim.p50)} / ${h(l.claim.p90)}`,
      `${h(l.firstReply.p50)} / ${h(l.firstReply.p90)}`,
      `${h(l.complete.p50)} / ${h(l.complete.p90)}`,
      l.breachRate === null ? '-' : `${Math.round(l.breachRate * 100)}%`,
      String(l.reroutes),
    ]);
  }
  const hours = clock === 'business' ? 'business hours' : 'wall-clock hours';
  const body = table.toString().split('\n').map((line) => line.trimEnd()).join('\n');
  return `SLA summary (${rows} Tasks, ${hours}):\n${body}`;
}
