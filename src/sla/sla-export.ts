// `npm run sla-export -- [options]`: one row per message-response Task and reminder, with SLA
// metrics from each Task's version history, as NDJSON or CSV, and a per-priority summary.
import { MedplumClient, normalizeErrorString } from '@medplum/core';
import type { Bundle, Communication, Task } from '@medplum/fhirtypes';
import { readFileSync, writeFileSync } from 'node:fs';
import { searchPages } from '../lib/fhir';
import { REMINDER_CODING } from '../stale-thread-reminders';
import { computeRow, DEFAULT_TARGETS, summarize } from './sla-metrics';
import type { PrioritySummary, SlaRow, Targets, ThreadMessage } from './sla-metrics';

const DEFAULT_CODES = [
  'https://medplum.com/task-codes|respond-to-message',
  `${REMINDER_CODING.system}|${REMINDER_CODING.code}`,
];
/** Histories fetched per batch request, threads per message search. */
const HISTORY_BATCH = 100;
const THREADS_PER_SEARCH = 100;

const HELP = `Usage: npm run sla-export -- [options]

Exports one row per message-response Task and reminder, with SLA metrics computed from each Task's
version history, and prints a per-priority summary.

Options:
  --since DATE        only Tasks authored at or after DATE (ISO 8601; default: all)
  --until DATE        only Tasks authored before DATE (ISO 8601; default: now)
  --format FORMAT     ndjson (default) or csv
  --out FILE          write the rows to FILE (default: standard output; the summary then goes to
                      standard error)
  --targets FILE      JSON service levels in hours per priority, e.g.
                      {"firstReply": {"routine": 24, "urgent": 4, "asap": 1, "stat": 0.25}};
                      "claim" and "complete" targets may be added. Default: the firstReply above.
  --codes LIST        comma-separated system|code of the Tasks to export (default:
                      ${DEFAULT_CODES.join(',')})
  --help              this text

Connects with MEDPLUM_BASE_URL (default https://api.medplum.com/), MEDPLUM_CLIENT_ID and
MEDPLUM_CLIENT_SECRET, as npm run deploy does.`;

/** What the export can be given instead of the process's own (tests, the README sample). */
export interface ExportIo {
  medplum?: MedplumClient;
  now?: Date;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
}

/**
 * Runs the export.
 * @param argv - Command-line options.
 * @param io - Injected client, clock and outputs.
 * @returns The exit code.
 */
export async function main(argv: string[], io: ExportIo = {}): Promise<number> {
  const stdout = io.stdout ?? ((text: string) => process.stdout.write(text));
  const stderr = io.stderr ?? ((text: string) => process.stderr.write(text));
  const options = parseOptions(argv);
  if ('error' in options) {
    stderr(`${options.error}\n\n${HELP}\n`);
    return 2;
  }
  if (options.help) {
    stdout(`${HELP}\n`);
    return 0;
  }
  const now = io.now ?? new Date();
  try {
    const medplum = io.medplum ?? (await login());
    const targets = options.targets ? (JSON.parse(readFileSync(options.targets, 'utf8')) as Targets) : DEFAULT_TARGETS;
    const rows = await exportRows(medplum, options, targets, now, (done, total) =>
      stderr(`\r${progressBar(done, total)} ${done}/${total} Tasks`)
    );
    stderr('\n');
    const text = options.format === 'csv' ? toCsv(rows) : rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');
    const summary = formatSummary(summarize(rows), rows.length);
    if (options.out) {
      writeFileSync(options.out, text);
      stdout(`${summary}\n${rows.length} rows written to ${options.out}\n`);
    } else {
      stdout(text);
      stderr(`${summary}\n`);
    }
    return 0;
  } catch (err) {
    stderr(`sla-export failed: ${normalizeErrorString(err)}\n`);
    return 1;
  }
}

interface Options {
  since?: string;
  until?: string;
  format: 'ndjson' | 'csv';
  out?: string;
  targets?: string;
  codes: string[];
  help?: boolean;
}

function parseOptions(argv: string[]): Options | { error: string } {
  const options: Options = { format: 'ndjson', codes: DEFAULT_CODES };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i];
    const value = argv[i + 1];
    const needsValue = ['--since', '--until', '--format', '--out', '--targets', '--codes'].includes(name);
    if (needsValue && (value === undefined || value.startsWith('--'))) {
      return { error: `${name} needs a value` };
    }
    if (name === '--help') {
      options.help = true;
    } else if ((name === '--since' || name === '--until') && Number.isNaN(Date.parse(value))) {
      return { error: `${name} is not a date: ${value}` };
    } else if (name === '--since' || name === '--until') {
      options[name === '--since' ? 'since' : 'until'] = new Date(value).toISOString();
    } else if (name === '--format' && value !== 'ndjson' && value !== 'csv') {
      return { error: `--format must be ndjson or csv` };
    } else if (name === '--format') {
      options.format = value as Options['format'];
    } else if (name === '--out' || name === '--targets') {
      options[name === '--out' ? 'out' : 'targets'] = value;
    } else if (name === '--codes') {
      options.codes = value.split(',');
    } else {
      return { error: `unknown option ${name}` };
    }
    i += needsValue ? 1 : 0;
  }
  return options;
}

async function login(): Promise<MedplumClient> {
  const { MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET } = process.env;
  if (!MEDPLUM_CLIENT_ID || !MEDPLUM_CLIENT_SECRET) {
    throw new Error('MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET are needed');
  }
  const medplum = new MedplumClient({ baseUrl: MEDPLUM_BASE_URL || 'https://api.medplum.com/', fetch });
  await medplum.startClientLogin(MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET);
  return medplum;
}

/**
 * Reads the Tasks, their histories (in batches: the server has no type-level Task history) and
 * their threads' messages, and computes one row per Task.
 * @param medplum - The client.
 * @param options - Date range and codes.
 * @param targets - Service levels.
 * @param now - Export time.
 * @param progress - Called as histories arrive.
 * @returns The rows, oldest authored first.
 */
async function exportRows(
  medplum: MedplumClient,
  options: Options,
  targets: Targets,
  now: Date,
  progress: (done: number, total: number) => void
): Promise<SlaRow[]> {
  const query: string[][] = [['code', options.codes.join(',')], ['_sort', '_lastUpdated']];
  if (options.since) {
    query.push(['authored-on', `ge${options.since}`]);
  }
  query.push(['authored-on', `lt${options.until ?? now.toISOString()}`]);
  const tasks: Task[] = [];
  for await (const page of searchPages(medplum, 'Task', query)) {
    tasks.push(...(page.entry ?? []).map((e) => e.resource as Task));
  }

  const histories = new Map<string, Task[]>();
  progress(0, tasks.length);
  for (let i = 0; i < tasks.length; i += HISTORY_BATCH) {
    const chunk = tasks.slice(i, i + HISTORY_BATCH);
    const response = await medplum.executeBatch({
      resourceType: 'Bundle',
      type: 'batch',
      entry: chunk.map((t) => ({ request: { method: 'GET', url: `Task/${t.id}/_history` } })),
    });
    chunk.forEach((task, j) => {
      const history = response.entry?.[j]?.resource as Bundle<Task> | undefined;
      const versions = (history?.entry ?? []).map((e) => e.resource).filter((v): v is Task => !!v);
      histories.set(task.id as string, versions.length ? versions : [task]);
    });
    progress(Math.min(i + HISTORY_BATCH, tasks.length), tasks.length);
  }

  const threads = [...new Set(tasks.map((t) => t.focus?.reference).filter((r): r is string => !!r?.startsWith('Communication/')))];
  const messages = new Map<string, ThreadMessage[]>();
  for (let i = 0; i < threads.length; i += THREADS_PER_SEARCH) {
    const chunk = threads.slice(i, i + THREADS_PER_SEARCH);
    for await (const page of searchPages(medplum, 'Communication', { 'part-of': chunk.join(','), _elements: 'partOf,sender,sent,status' })) {
      for (const entry of page.entry ?? []) {
        const m = entry.resource as Communication;
        const thread = m.partOf?.find((p) => chunk.includes(p.reference as string))?.reference as string;
        messages.set(thread, [
          ...(messages.get(thread) ?? []),
          { id: m.id as string, time: m.sent ?? m.meta?.lastUpdated ?? '', sender: m.sender, status: m.status },
        ]);
      }
    }
  }

  return tasks
    .map((t) => computeRow(histories.get(t.id as string) ?? [t], messages.get(t.focus?.reference ?? '') ?? [], targets, now))
    .sort((a, b) => (a.authored_on ?? '').localeCompare(b.authored_on ?? ''));
}

function progressBar(done: number, total: number): string {
  const width = 30;
  const filled = total ? Math.round((done / total) * width) : width;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

function toCsv(rows: SlaRow[]): string {
  if (!rows.length) {
    return '';
  }
  const columns = Object.keys(rows[0]);
  const cell = (value: unknown): string => {
    const text = value === null || value === undefined ? '' : String(value);
    return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return [columns.join(','), ...rows.map((r) => columns.map((c) => cell(r[c as keyof SlaRow])).join(','))].join('\n') + '\n';
}

/**
 * The summary table: per priority, count, p50/p90 hours to claim, first reply and completion,
 * first-reply breach rate and reroutes.
 * @param lines - Per-priority summaries.
 * @param rows - How many rows were exported.
 * @returns The text.
 */
export function formatSummary(lines: PrioritySummary[], rows: number): string {
  const h = (v: number | null): string => (v === null ? '-' : v.toFixed(2));
  const table = [
    ['priority', 'tasks', 'claim p50/p90 h', 'first reply p50/p90 h', 'complete p50/p90 h', 'breach rate', 'reroutes'],
    ...lines.map((l) => [
      l.priority,
      String(l.count),
      `${h(l.claim.p50)} / ${h(l.claim.p90)}`,
      `${h(l.firstReply.p50)} / ${h(l.firstReply.p90)}`,
      `${h(l.complete.p50)} / ${h(l.complete.p90)}`,
      l.breachRate === null ? '-' : `${Math.round(l.breachRate * 100)}%`,
      String(l.reroutes),
    ]),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  return [`SLA summary (${rows} Tasks):`, ...table.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd())].join('\n');
}
