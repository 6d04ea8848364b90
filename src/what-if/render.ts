// The what-if page: one self-contained HTML page in the SLA report's style (Vega-Lite rendered to
// inline SVG when the page is made, a Content-Security-Policy that allows nothing from anywhere),
// current and proposed settings side by side; every chart with its definition and its numbers.
import type { TopLevelSpec } from 'vega-lite';
import { PRIORITIES } from '../lib/response-rules';
import { toSvg } from '../sla/sla-report';
import type { WhatIfResult } from './compare';
import type { Totals, WhatIfRow } from './rows';

const SIDES = ['current', 'proposed'];
const COLORS = { domain: SIDES, range: ['#8a94a6', '#1f5fbf'] };

interface Chart {
  title: string;
  definition: string;
  spec?: TopLevelSpec;
  table: { head: string[]; rows: (string | number)[][] };
}

/**
 * Renders the page.
 * @param result - The what-if.
 * @param generatedAt - When it was made.
 * @returns The HTML.
 */
export async function renderWhatIf(result: WhatIfResult, generatedAt: Date): Promise<string> {
  const charts = [
    weekly(result.rows, 'reminders_created', 'Reminders created, per week', 'Reminders the reminders bot would create, by the week it creates them: one per waiting episode whose silence passes its rule\'s threshold.'),
    escalations(result.rows),
    weekly(result.rows, 'reminders_open_at_end', 'Reminders still open at the end of the period', 'Reminders whose patient is still waiting when the period ends (no care-team reply yet), by the week they were created.'),
    weekly(result.rows, 'response_tasks_opened', 'Response Tasks opened, per week', 'Response Tasks the lifecycle would open when a patient writes (none when RESPONSE_TASKS is off), by the week it opens them.'),
    poolAndCover(result.rows),
    breach(result.rows),
  ];
  const figures = await Promise.all(charts.map(figure));
  const period = `${day(result.since)} to ${day(result.until)}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>What if: a rule change replayed on ${escape(period)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>What if we changed the rules?</h1>
<p class="period">${result.threads} threads replayed from ${escape(period)} (end exclusive; replay started ${escape(day(result.from))} so that open reminders exist at the start), through the bots' own decision code, with the current settings and with the proposed ones. Made ${escape(generatedAt.toISOString().slice(0, 16).replace('T', ' '))} UTC by <code>npm run what-if</code>. Nothing was written to the Project.</p>
</header>
<main>
<section aria-labelledby="change"><h2 id="change">The change</h2>
<ul>${(result.changes.length ? result.changes : ['no change: the proposed settings are the current ones']).map((c) => `<li><code>${escape(c)}</code></li>`).join('')}</ul></section>
${headline(result)}
${trust(result)}
${figures.join('\n')}
<section aria-labelledby="limits"><h2 id="limits">What the replay cannot know</h2>
<ul class="definition">${result.limits.map((l) => `<li>${escape(l)}</li>`).join('')}</ul></section>
</main>
</body>
</html>
`;
}

function headline(result: WhatIfResult): string {
  const names: [keyof Totals, string][] = [
    ['reminders_created', 'Reminders created'],
    ['escalations', 'Escalations'],
    ['escalations_to_stat', 'Escalations to stat'],
    ['reminders_open_at_end', 'Reminders open at the end'],
    ['response_tasks_opened', 'Response Tasks opened'],
    ['to_pool', 'Tasks sent to the pool'],
    ['to_cover', 'Tasks sent to a cover'],
  ];
  const { current, proposed } = result.totals;
  const rows = names.map(([key, name]) => [name, String(current[key]), String(proposed[key]), signed((proposed[key] as number) - (current[key] as number))]);
  rows.push([`Escalations on weekends (${result.weekendEscalations.zone})`, String(result.weekendEscalations.current), String(result.weekendEscalations.proposed), signed(result.weekendEscalations.proposed - result.weekendEscalations.current)]);
  rows.push(['First-reply breach rate', rate(current.breach_rate), rate(proposed.breach_rate), current.breach_rate === null || proposed.breach_rate === null ? '–' : `${signed(Math.round(100 * (proposed.breach_rate - current.breach_rate)))} points`]);
  return `<section aria-labelledby="totals"><h2 id="totals">Over the period</h2>
${table(['', 'current', 'proposed', 'difference'], rows)}</section>`;
}

function trust(result: WhatIfResult): string {
  const differences = result.trust.agreements.flatMap((a) => a.differences);
  return `<section aria-labelledby="trust"><h2 id="trust">How far to trust this</h2>
<p class="definition">The current settings replayed over the period, compared with what the bots actually did in it (their reminders and escalations from their own Tasks, reroutes from their notes).</p>
<p class="definition">${escape(result.runsNote)}.</p>
<ul class="trust">${result.trust.lines.map((l) => `<li>${escape(l)}</li>`).join('')}</ul>
${differences.length ? `<details><summary>Differences</summary><ul>${differences.map((d) => `<li>${escape(d)}</li>`).join('')}</ul></details>` : ''}</section>`;
}

async function figure(chart: Chart, index: number): Promise<string> {
  const id = `chart-${index}`;
  const picture = chart.spec && chart.table.rows.length ? await toSvg(chart.spec, `${chart.title}. ${chart.definition}`) : '<p class="empty">Nothing in this period, with either settings.</p>';
  return `<section class="chart" aria-labelledby="${id}">
<h2 id="${id}">${escape(chart.title)}</h2>
${picture}
<p class="definition">${escape(chart.definition)}</p>
<details><summary>The numbers</summary>${table(chart.table.head, chart.table.rows)}</details>
</section>`;
}

type Field = 'reminders_created' | 'reminders_open_at_end' | 'response_tasks_opened';

function weekly(rows: WhatIfRow[], field: Field, title: string, definition: string): Chart {
  const weeks = [...new Set(rows.map((r) => r.week))].sort();
  const sum = (week: string, side: string): number => rows.filter((r) => r.week === week && r.settings === side).reduce((n, r) => n + r[field], 0);
  const values = weeks.flatMap((week) => SIDES.map((settings) => ({ week, settings, count: sum(week, settings) })));
  return {
    title,
    definition,
    spec: values.some((v) => v.count) ? bars(values, 'count') : undefined,
    table: { head: ['week of', 'current', 'proposed'], rows: weeks.map((w) => [w, sum(w, 'current'), sum(w, 'proposed')]) },
  };
}

function escalations(rows: WhatIfRow[]): Chart {
  const priorities = PRIORITIES.filter((p) => p !== 'routine');
  const weeks = [...new Set(rows.map((r) => r.week))].sort();
  const of = (week: string, side: string, priority: string): number => rows.filter((r) => r.week === week && r.settings === side && r.priority === priority).reduce((n, r) => n + r.escalations, 0);
  const values = weeks.flatMap((week) => SIDES.flatMap((settings) => priorities.map((reached) => ({ week, settings, reached, count: of(week, settings, reached) }))));
  return {
    title: 'Escalations per week, by how far they went',
    definition: 'Each step up the priority ladder of an unanswered reminder, by the priority it reached (asap, then stat), by the week it happens. Left bar of each week: current settings; right: proposed.',
    spec: values.some((v) => v.count)
      ? {
          width: 640,
          height: 220,
          data: { values },
          mark: 'bar',
          encoding: {
            x: { field: 'week', type: 'ordinal', title: 'week of' },
            xOffset: { field: 'settings', sort: SIDES },
            y: { field: 'count', type: 'quantitative', title: 'escalations', axis: { tickMinStep: 1, format: 'd' } },
            color: { field: 'reached', type: 'nominal', title: 'reached', sort: priorities, scale: { domain: priorities, range: ['#f2b134', '#e0663b', '#b3261e'] } },
            opacity: { field: 'settings', type: 'nominal', title: 'settings', sort: SIDES, scale: { domain: SIDES, range: [0.55, 1] } },
          },
        }
      : undefined,
    table: {
      head: ['week of', ...priorities.flatMap((p) => [`current: to ${p}`, `proposed: to ${p}`])],
      rows: weeks.map((w) => [w, ...priorities.flatMap((p) => [of(w, 'current', p), of(w, 'proposed', p)])]),
    },
  };
}

function poolAndCover(rows: WhatIfRow[]): Chart {
  const weeks = [...new Set(rows.map((r) => r.week))].sort();
  const of = (week: string, side: string, field: 'to_pool' | 'to_cover'): number => rows.filter((r) => r.week === week && r.settings === side).reduce((n, r) => n + r[field], 0);
  const values = weeks.flatMap((week) => SIDES.map((settings) => ({ week, settings, count: of(week, settings, 'to_pool') + of(week, settings, 'to_cover') })));
  return {
    title: 'Tasks sent to the pool or a cover, per week',
    definition: 'Response Tasks the lifecycle opened without an available person on the thread (to a cover, else the pool), and Tasks the out-of-office bot moved off an owner who was away or off shift when the patient wrote.',
    spec: values.some((v) => v.count) ? bars(values, 'count') : undefined,
    table: {
      head: ['week of', 'current: pool', 'current: cover', 'proposed: pool', 'proposed: cover'],
      rows: weeks.map((w) => [w, of(w, 'current', 'to_pool'), of(w, 'current', 'to_cover'), of(w, 'proposed', 'to_pool'), of(w, 'proposed', 'to_cover')]),
    },
  };
}

function breach(rows: WhatIfRow[]): Chart {
  const weeks = [...new Set(rows.filter((r) => r.first_reply_decided).map((r) => r.week))].sort();
  const of = (week: string, side: string): { decided: number; breached: number } =>
    rows.filter((r) => r.week === week && r.settings === side).reduce((a, r) => ({ decided: a.decided + r.first_reply_decided, breached: a.breached + r.first_reply_breached }), { decided: 0, breached: 0 });
  const pct = (x: { decided: number; breached: number }): number => (x.decided ? Math.round((100 * x.breached) / x.decided) : 0);
  const values = weeks.flatMap((week) => SIDES.map((settings) => ({ week, settings, rate: pct(of(week, settings)) })));
  return {
    title: 'First-reply breach rate, per week',
    definition: 'Of the response Tasks whose first-reply target (the SLA export\'s default: routine 24 h, urgent 4 h, asap 1 h, stat 15 min) was met or missed, the share that missed it, by the week the patient wrote. Replies are the ones that happened, so only which Tasks exist can change it.',
    spec: values.length
      ? {
          width: 640,
          height: 200,
          data: { values },
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'week', type: 'ordinal', title: 'week of' },
            y: { field: 'rate', type: 'quantitative', title: 'breach rate (%)', scale: { domain: [0, 100] } },
            color: { field: 'settings', type: 'nominal', sort: SIDES, scale: COLORS },
            strokeDash: { field: 'settings', type: 'nominal', sort: SIDES, legend: null },
          },
        }
      : undefined,
    table: {
      head: ['week of', 'current: decided', 'current: missed', 'proposed: decided', 'proposed: missed'],
      rows: weeks.map((w) => [w, of(w, 'current').decided, of(w, 'current').breached, of(w, 'proposed').decided, of(w, 'proposed').breached]),
    },
  };
}

function bars(values: { week: string; settings: string; count: number }[], field: string): TopLevelSpec {
  return {
    width: 640,
    height: 200,
    data: { values },
    mark: 'bar',
    encoding: {
      x: { field: 'week', type: 'ordinal', title: 'week of' },
      xOffset: { field: 'settings', sort: SIDES },
      y: { field, type: 'quantitative', title: 'count', axis: { tickMinStep: 1, format: 'd' } },
      color: { field: 'settings', type: 'nominal', title: 'settings', sort: SIDES, scale: COLORS },
    },
  };
}

function table(head: string[], rows: (string | number)[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th scope="col">${escape(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((v) => `<td>${escape(String(v))}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

function signed(n: number): string {
  return n > 0 ? `+${n}` : String(n);
}

function rate(r: number | null): string {
  return r === null ? '–' : `${Math.round(100 * r)}%`;
}

function day(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
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
.period, .definition, .empty { color: var(--muted); }
.definition { font-size: 13px; margin: 6px 0; }
.trust li { margin: 2px 0; }
.chart svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 8px 0 4px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px 4px 0; text-align: left; }
details summary { cursor: pointer; color: var(--muted); font-size: 13px; }
code { font-size: 12px; word-break: break-all; }
@media print { details { display: none; } }
`;
