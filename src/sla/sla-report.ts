// The SLA report: one self-contained HTML page from the export's rows (one computation, two
// outputs). Charts are Vega-Lite specs rendered to inline SVG here, when the report is made: the page
// needs no script, style sheet, font or image from anywhere, so it opens offline and can be mailed.
// Every chart has its definition under it and its numbers in a table for screen readers.
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import type { MedplumClient } from '@medplum/core';
import type { Bundle, ProjectSetting, Task } from '@medplum/fhirtypes';
import { OPEN_TASK_STATUSES, readPages } from '../lib/fhir';
import { parseCoding } from '../lib/response-lifecycle';
import { PRIORITIES as PRIORITY_LADDER } from '../lib/response-rules';
import { percentile } from './sla-metrics';
import type { SlaRow } from './sla-metrics';

const DAY_MS = 86_400_000;
/** Priorities in rising order, as Vega-Lite sorts take them (a mutable list). */
const PRIORITIES: string[] = [...PRIORITY_LADDER];

/** What a report is made from. */
export interface ReportInput {
  /** Rows by the wall clock. */
  rows: SlaRow[];
  /** The same rows by the business clock, when business hours were given. */
  businessRows?: SlaRow[];
  since?: string;
  until: string;
  generatedAt: Date;
  /** Where a thread opens in the Medplum App, e.g. https://app.medplum.com/. */
  appUrl: string;
  /**
   * `system|code` of the default response Tasks (kept for callers). Every exported row that is not a
   * reminder counts as a response Task: the export holds only the codes it was asked for (`--codes`,
   * the clinic's RESPONSE_TASK_CODE), so the report counts what the export counts.
   */
  responseCode: string;
  reminderCode: string;
  /**
   * The reminders open at the end of the period, whenever they were authored (readOpenReminders).
   * Without it, the reminders among the rows that are open now are shown.
   */
  openReminders?: OpenReminder[];
}

/** A reminder open at the end of the period. */
export interface OpenReminder {
  id: string;
  authored_on: string;
}

/** One chart: its title, its definition in a sentence, its spec, and its data as a table. */
interface Chart {
  title: string;
  definition: string;
  spec?: TopLevelSpec;
  table: { head: string[]; rows: (string | number)[][] };
}

/**
 * Renders the report.
 * @param input - Rows and period.
 * @returns The HTML page.
 */
export async function renderReport(input: ReportInput): Promise<string> {
  const isResponse = (r: SlaRow): boolean => r.code !== input.reminderCode;
  const responses = input.rows.filter(isResponse);
  const open =
    input.openReminders ??
    input.rows
      .filter((x) => x.code === input.reminderCode && OPEN_TASK_STATUSES.includes(x.status as Task['status']) && x.authored_on)
      .map((x) => ({ id: x.id, authored_on: x.authored_on as string }));
  const charts = [
    breachByWeek(responses),
    replyDistribution(responses, 'wall'),
    ...(input.businessRows ? [replyDistribution(input.businessRows.filter(isResponse), 'business')] : []),
    reroutesAndEscalations(input.rows),
    openReminders(open, input.until),
  ];
  const figures = await Promise.all(charts.map(figure));
  const period = `${input.since ? day(input.since) : 'the beginning'} to ${day(input.until)}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Patient messaging: response times, ${escape(period)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>Patient messaging: are we answering on time?</h1>
<p class="period">Response Tasks authored from ${escape(period)} (end exclusive). Made ${escape(input.generatedAt.toISOString().slice(0, 16).replace('T', ' '))} UTC by <code>npm run sla-report</code>.</p>
</header>
<main>
${headline(input, responses)}
${figures.join('\n')}
${slowest(responses, input.appUrl)}
</main>
</body>
</html>
`;
}

async function figure(chart: Chart, index: number): Promise<string> {
  const id = `chart-${index}`;
  const picture = chart.spec && chart.table.rows.length ? await toSvg(chart.spec, `${chart.title}. ${chart.definition}`) : '<p class="empty">No data in this period.</p>';
  return `<section class="chart" aria-labelledby="${id}">
<h2 id="${id}">${escape(chart.title)}</h2>
${picture}
<p class="definition">${escape(chart.definition)}</p>
<details><summary>The numbers</summary>${table(chart.table.head, chart.table.rows)}</details>
</section>`;
}

/**
 * Renders a Vega-Lite spec to SVG, in Node, with no browser.
 * @param spec - The spec.
 * @param label - What the chart shows, for screen readers.
 * @returns The SVG element.
 */
export async function toSvg(spec: TopLevelSpec, label: string): Promise<string> {
  const compiled = vl.compile({ ...spec, config: { font: 'system-ui, sans-serif', axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11 }, ...spec.config } }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg.replace('<svg ', `<svg role="img" aria-label="${escape(label)}" `);
}

function headline(input: ReportInput, responses: SlaRow[]): string {
  const replies = responses.map((r) => r.hours_to_first_reply).filter((h): h is number => h !== null);
  const decided = (rows: SlaRow[]): SlaRow[] => rows.filter((r) => r.target_firstReply_status === 'met' || r.target_firstReply_status === 'breached');
  const rate = (rows: SlaRow[]): string => {
    const d = decided(rows);
    return d.length ? `${Math.round((100 * d.filter((r) => r.target_firstReply_status === 'breached').length) / d.length)}%` : '–';
  };
  const tiles: [string, string, string][] = [
    ['Response Tasks', String(responses.length), 'authored in the period'],
    ['Median first reply', hours(percentile(replies, 50)), 'from the patient\'s message to the first reply by a person of the care team'],
    ['90th percentile', hours(percentile(replies, 90)), 'nine in ten got their first reply within this'],
    ['Breach rate', rate(responses), 'first replies later than the target, of those met or missed'],
    ['Reroutes', String(input.rows.reduce((n, r) => n + r.reroute_count, 0)), 'Tasks moved off an absent owner by the out-of-office bot'],
    ['Escalations', String(input.rows.reduce((n, r) => n + r.escalation_count, 0)), 'priority steps up on unanswered reminders'],
  ];
  const perPriority = PRIORITIES.filter((p) => responses.some((r) => r.priority === p)).map((p) => [p, responses.filter((r) => r.priority === p).length, rate(responses.filter((r) => r.priority === p))]);
  return `<section class="headline" aria-label="Headline figures">
${tiles.map(([name, value, hint]) => `<div class="tile"><div class="value">${escape(value)}</div><div class="name">${escape(name)}</div><div class="hint">${escape(hint)}</div></div>`).join('\n')}
</section>
<section aria-labelledby="by-priority"><h2 id="by-priority">Breach rate per priority</h2>${table(['priority', 'response Tasks', 'breach rate'], perPriority)}</section>`;
}

function breachByWeek(rows: SlaRow[]): Chart {
  const byKey = new Map<string, { week: string; priority: string; met: number; breached: number }>();
  for (const r of rows.filter((x) => x.target_firstReply_status === 'met' || x.target_firstReply_status === 'breached')) {
    const week = weekOf(r.started_at ?? r.authored_on);
    const key = `${week}|${r.priority}`;
    const entry = byKey.get(key) ?? { week, priority: r.priority, met: 0, breached: 0 };
    entry[r.target_firstReply_status === 'met' ? 'met' : 'breached']++;
    byKey.set(key, entry);
  }
  const values = [...byKey.values()].sort((a, b) => a.week.localeCompare(b.week) || PRIORITIES.indexOf(a.priority) - PRIORITIES.indexOf(b.priority)).map((e) => ({ ...e, rate: Math.round((100 * e.breached) / (e.met + e.breached)) }));
  return {
    title: 'Breach rate per priority, per week',
    definition: 'Of the response Tasks whose first-reply target was met or missed, the share that missed it, by the week the patient wrote (weeks start on Monday, UTC).',
    spec: {
      width: 640,
      height: 220,
      data: { values },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'week', type: 'ordinal', title: 'week of' },
        y: { field: 'rate', type: 'quantitative', title: 'breach rate (%)', scale: { domain: [0, 100] } },
        color: { field: 'priority', type: 'nominal', sort: PRIORITIES, scale: { domain: PRIORITIES.filter((p) => values.some((v) => v.priority === p)) } },
      },
    },
    table: { head: ['week of', 'priority', 'met', 'missed', 'breach rate (%)'], rows: values.map((v) => [v.week, v.priority, v.met, v.breached, v.rate]) },
  };
}

/**
 * The five numbers of a box plot, with the percentile the headline and the export's summary use
 * (nearest rank): the median drawn is the median written.
 * @param values - Hours.
 * @returns Minimum, quartiles, median and maximum.
 */
export function boxStats(values: number[]): { min: number; q1: number; median: number; q3: number; max: number } {
  return {
    min: Math.min(...values),
    q1: percentile(values, 25) as number,
    median: percentile(values, 50) as number,
    q3: percentile(values, 75) as number,
    max: Math.max(...values),
  };
}

function replyDistribution(rows: SlaRow[], clock: 'wall' | 'business'): Chart {
  const values = rows.filter((r) => r.hours_to_first_reply !== null).map((r) => ({ priority: r.priority, hours: r.hours_to_first_reply as number }));
  const present = PRIORITIES.filter((p) => values.some((v) => v.priority === p));
  const boxes = present.map((priority) => ({ priority, ...boxStats(values.filter((v) => v.priority === priority).map((v) => v.hours)) }));
  const stats = present.map((p) => {
    const h = values.filter((v) => v.priority === p).map((v) => v.hours);
    return [p, h.length, hours(percentile(h, 50)), hours(percentile(h, 90)), hours(Math.max(...h))];
  });
  const y = { field: 'priority', type: 'nominal' as const, sort: PRIORITIES, title: null };
  const title = `hours to first reply${clock === 'business' ? ' (open hours)' : ''}`;
  return {
    title: `Time to first reply, per priority${clock === 'business' ? ' (business hours)' : ''}`,
    definition:
      clock === 'business'
        ? 'The same, counting only the clinic\'s open hours: a message on Friday evening answered on Monday morning waited a few business hours.'
        : 'Hours from the patient\'s message to the first message by a person of the care team (automated replies never count); the line spans shortest to longest, the box the middle half, the mark in it is the median (the same nearest-rank percentiles as the figures above).',
    spec: {
      width: 640,
      height: 200,
      data: { values: boxes },
      layer: [
        { mark: 'rule', encoding: { y, x: { field: 'min', type: 'quantitative', title }, x2: { field: 'max' } } },
        { mark: { type: 'bar', size: 14 }, encoding: { y, x: { field: 'q1', type: 'quantitative' }, x2: { field: 'q3' }, color: { field: 'priority', type: 'nominal', sort: PRIORITIES, legend: null } } },
        { mark: { type: 'tick', color: 'white', size: 14, thickness: 2 }, encoding: { y, x: { field: 'median', type: 'quantitative' } } },
      ],
    },
    table: { head: ['priority', 'replied', 'median', '90th percentile', 'longest'], rows: stats },
  };
}

function reroutesAndEscalations(rows: SlaRow[]): Chart {
  const byWeek = new Map<string, { reroutes: number; escalations: number }>();
  for (const r of rows) {
    const week = weekOf(r.started_at ?? r.authored_on);
    const entry = byWeek.get(week) ?? { reroutes: 0, escalations: 0 };
    entry.reroutes += r.reroute_count;
    entry.escalations += r.escalation_count;
    byWeek.set(week, entry);
  }
  const weeks = [...byWeek.keys()].sort();
  const values = weeks.flatMap((week) => [
    { week, kind: 'reroutes', count: byWeek.get(week)?.reroutes ?? 0 },
    { week, kind: 'escalations', count: byWeek.get(week)?.escalations ?? 0 },
  ]);
  return {
    title: 'Reroutes and escalations, per week',
    definition: 'Reroutes: response Tasks the out-of-office bot moved off an owner who was away or off shift. Escalations: priority steps up on reminders left unanswered. By the week the Task was opened.',
    spec: values.some((v) => v.count)
      ? {
          width: 640,
          height: 200,
          data: { values },
          mark: 'bar',
          encoding: {
            x: { field: 'week', type: 'ordinal', title: 'week of' },
            xOffset: { field: 'kind' },
            y: { field: 'count', type: 'quantitative', title: 'count', axis: { tickMinStep: 1, format: 'd' } },
            color: { field: 'kind', type: 'nominal', title: null },
          },
        }
      : undefined,
    table: { head: ['week of', 'reroutes', 'escalations'], rows: weeks.map((w) => [w, byWeek.get(w)?.reroutes ?? 0, byWeek.get(w)?.escalations ?? 0]) },
  };
}

function openReminders(open: OpenReminder[], until: string): Chart {
  const end = Date.parse(until);
  const buckets = ['under 1 day', '1 to 3 days', '3 to 7 days', 'over 7 days'];
  const bucket = (ageDays: number): string => buckets[ageDays < 1 ? 0 : ageDays < 3 ? 1 : ageDays < 7 ? 2 : 3];
  const counts = new Map(buckets.map((b) => [b, 0]));
  for (const r of open) {
    const b = bucket((end - Date.parse(r.authored_on)) / DAY_MS);
    counts.set(b, (counts.get(b) ?? 0) + 1);
  }
  const values = buckets.map((b) => ({ age: b, reminders: counts.get(b) ?? 0 }));
  return {
    title: 'Open reminders by age, at the end of the period',
    definition:
      'Reminders for threads where the patient was still waiting, open at the end of the period whenever they were created (one created before the period counts too), by how long before the end they were created.',
    spec: values.some((v) => v.reminders)
      ? {
          width: 640,
          height: 160,
          data: { values },
          mark: 'bar',
          encoding: {
            y: { field: 'age', type: 'ordinal', sort: buckets, title: null },
            x: { field: 'reminders', type: 'quantitative', title: 'open reminders', axis: { tickMinStep: 1, format: 'd' } },
          },
        }
      : undefined,
    table: { head: ['age', 'open reminders'], rows: values.map((v) => [v.age, v.reminders]) },
  };
}

/** Runs one request within the quota (the export's pacer), given its cost in points. */
export type Paced = <T>(cost: number, request: () => Promise<T>) => Promise<T>;

const CLOSED_TASK_STATUSES = ['completed', 'cancelled', 'failed', 'rejected', 'entered-in-error'];

/**
 * The reminders open at the end of a period, whenever they were authored. A reminder open now and
 * authored before the end was open at the end (reminders are not reopened); one closed now but
 * changed since the end is read in its history, and counts when its version at the end was open.
 * @param medplum - The client.
 * @param reminderCode - `system|code` of the reminders.
 * @param until - The end of the period (exclusive).
 * @param paced - Runs each request within the quota (default: at once).
 * @returns The open reminders.
 */
export async function readOpenReminders(medplum: MedplumClient, reminderCode: string, until: string, paced: Paced = (_cost, request) => request()): Promise<OpenReminder[]> {
  const open: OpenReminder[] = [];
  const authored = (t: Task): string => t.authoredOn ?? t.meta?.lastUpdated ?? until;
  const read = async (query: string[][]): Promise<Task[]> => {
    const tasks: Task[] = [];
    const pages = readPages(medplum, 'Task', query);
    for (;;) {
      const page = await paced(20, () => pages.next());
      if (page.done) {
        return tasks;
      }
      tasks.push(...(page.value.entry ?? []).map((e) => e.resource as Task));
    }
  };
  const base = [
    ['code', reminderCode],
    ['authored-on', `lt${until}`],
  ];
  for (const task of await read([...base, ['status', OPEN_TASK_STATUSES.join(',')]])) {
    open.push({ id: task.id as string, authored_on: authored(task) });
  }
  const closedSince = await read([...base, ['status', CLOSED_TASK_STATUSES.join(',')], ['_lastUpdated', `ge${until}`]]);
  for (let i = 0; i < closedSince.length; i += 100) {
    const chunk = closedSince.slice(i, i + 100);
    const result = await paced(10 * chunk.length, () =>
      medplum.executeBatch({ resourceType: 'Bundle', type: 'batch', entry: chunk.map((t) => ({ request: { method: 'GET', url: `Task/${t.id}/_history` } })) })
    );
    chunk.forEach((task, j) => {
      const versions = ((result.entry?.[j]?.resource as Bundle<Task> | undefined)?.entry ?? []).map((e) => e.resource as Task);
      const atEnd = versions.filter((v) => (v.meta?.lastUpdated ?? '') < until).sort((a, b) => (b.meta?.lastUpdated ?? '').localeCompare(a.meta?.lastUpdated ?? ''))[0];
      if (atEnd && OPEN_TASK_STATUSES.includes(atEnd.status)) {
        open.push({ id: task.id as string, authored_on: authored(task) });
      }
    });
  }
  return open;
}

/**
 * The codes to export when none were given: the defaults, and the clinic's RESPONSE_TASK_CODE when
 * the client may read the Project's secrets (a Project admin), so the export and the report count
 * the response Tasks the bot opens.
 * @param medplum - The client.
 * @param codes - The default codes.
 * @returns The codes, and the one added (if any).
 */
export async function withResponseTaskCode(medplum: MedplumClient, codes: string[]): Promise<{ codes: string[]; added?: string }> {
  const projectId = medplum.getProject()?.id;
  const secrets = projectId
    ? await medplum
        .get<{ project: { secret?: ProjectSetting[] } }>(`admin/projects/${projectId}`, { cache: 'no-cache' })
        .then((r) => r.project.secret ?? [], () => [] as ProjectSetting[])
    : [];
  const value = secrets.find((s) => s.name === 'RESPONSE_TASK_CODE')?.valueString;
  const coding = value === undefined ? undefined : parseCoding(value);
  if (!coding || 'error' in coding) {
    return { codes };
  }
  const code = `${coding.coding.system}|${coding.coding.code}`;
  return codes.includes(code) ? { codes } : { codes: [...codes, code], added: code };
}

function slowest(rows: SlaRow[], appUrl: string): string {
  const waited = (r: SlaRow): number => r.hours_to_first_reply ?? Number(r.target_firstReply_elapsed_hours ?? 0);
  const top = [...rows].filter((r) => r.thread_id).sort((a, b) => waited(b) - waited(a)).slice(0, 10);
  const base = appUrl.endsWith('/') ? appUrl : `${appUrl}/`;
  const body = top.map((r) => [
    `<a href="${escape(`${base}Communication/${r.thread_id}`)}">${escape(r.thread_id as string)}</a>`,
    escape(r.priority),
    r.hours_to_first_reply === null ? `${hours(waited(r))} and waiting` : hours(r.hours_to_first_reply),
    escape(r.target_firstReply_status ? String(r.target_firstReply_status) : '–'),
  ]);
  return `<section aria-labelledby="slowest"><h2 id="slowest">The slowest threads</h2>
<p class="definition">The ten response Tasks that waited longest for a first reply (still waiting: the time so far). Thread ids only; each opens in the Medplum App.</p>
${table(['thread', 'priority', 'first reply after', 'target'], body, false)}</section>`;
}

function table(head: string[], rows: (string | number)[][], escapeCells = true): string {
  const cell = (v: string | number): string => (escapeCells ? escape(String(v)) : String(v));
  return `<table><thead><tr>${head.map((h) => `<th scope="col">${escape(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((v) => `<td>${cell(v)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

/**
 * The Monday (UTC) of an instant's week.
 * @param iso - An ISO instant.
 * @returns YYYY-MM-DD.
 */
export function weekOf(iso: string | null): string {
  const t = Date.parse(iso ?? '');
  if (Number.isNaN(t)) {
    return 'unknown';
  }
  const date = new Date(t);
  const monday = t - ((date.getUTCDay() + 6) % 7) * DAY_MS;
  return new Date(monday).toISOString().slice(0, 10);
}

function hours(h: number | null): string {
  if (h === null || !Number.isFinite(h)) {
    return '–';
  }
  return h < 1 ? `${Math.round(h * 60)} min` : h < 48 ? `${h.toFixed(1)} h` : `${(h / 24).toFixed(1)} days`;
}

function day(iso: string): string {
  return iso.slice(0, 10);
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

const CSS = `
:root { color-scheme: light; --ink: #1d2433; --muted: #5b6475; --line: #d9dee8; --tile: #f4f6fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #fff; }
header, main { max-width: 760px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 28px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
.period, .definition, .hint, .empty { color: var(--muted); }
.definition { font-size: 13px; margin: 6px 0; }
.headline { display: grid; grid-template-columns: repeat(3, 1fr); gap: 10px; margin-top: 18px; }
.tile { background: var(--tile); border-radius: 8px; padding: 12px; }
.tile .value { font-size: 24px; font-weight: 650; }
.tile .name { font-weight: 600; }
.tile .hint { font-size: 12px; }
.chart svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 8px 0 4px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px 4px 0; text-align: left; }
details summary { cursor: pointer; color: var(--muted); font-size: 13px; }
a { color: #1f5fbf; }
@media print { details { display: none; } }
`;
