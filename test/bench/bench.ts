// `npm run bench`: our bots against the naive algorithm of Medplum's docs, side by side, on the test
// harness with server paging, its request counter and the server's FHIR quota costs. Ratios are
// the headline (machines differ). `--help` for the options; `--write` saves test/bench/results.md.
import type { MedplumClient } from '@medplum/core';
import type { Bundle, Communication, Parameters, Schedule, Task } from '@medplum/fhirtypes';
import { writeFileSync } from 'node:fs';
import { parseCommandLine } from '../../src/admin/command-line';
import { handler as oooHandler } from '../../src/ooo-reroute';
import { handler as staleHandler } from '../../src/stale-thread-reminders';
import { botEvent, message, REMINDER_CODE, REMINDER_SEARCH, seedClinic, seedOwnedThread } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

/** Relative to the project root (npm runs scripts there); the bundled bench runs from node_modules/.cache. */
const RESULTS_FILE = 'test/bench/results.md';
/** A bot's requests are sequential; on a server each costs a round trip the in-process harness does not have. */
const ROUND_TRIP_MS = 20;
/** The harness charges the server's costs but never refuses: the bench compares costs, not throttling. */
const UNLIMITED = { perCaller: Infinity, perProject: Infinity };

interface Measure {
  requests: number;
  /** FHIR quota points the server would charge (read 1, search 20, history 10, write 100, each batch entry). */
  points: number;
  ms: number;
  peakHeapMb: number;
  reminders?: number;
  /** Points per unit of work: per thread scanned and per reminder created, or per event. */
  perUnit: Record<string, number>;
}

interface Row {
  scenario: string;
  ours: Measure;
  naive: Measure;
  expected?: number;
}

const HELP = `Usage: npm run bench -- [options]

  --sizes LIST   stale-thread project sizes, comma-separated (default 1000,10000)
  --events N     out-of-office events per path (default 20)
  --growth LIST  open threads for the stale run's growth table, incremental against full (default 1000,10000;
                 the in-memory server scans its whole store per search, so 50,000 takes tens of minutes)
  --history LIST messages per thread at 1,000 open threads for that table (default 2,20,100)
  --write        save the tables to test/bench/results.md (docs/testing.md links it)
  --help         this text`;

/**
 * Runs the benchmark and prints the table.
 * @param argv - Command-line arguments.
 * @returns The exit code.
 */
export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(
    argv,
    { sizes: { type: 'string' }, events: { type: 'string' }, write: { type: 'boolean' }, growth: { type: 'string' }, history: { type: 'string' } },
    HELP
  );
  if ('exit' in parsed) {
    return parsed.exit;
  }
  const { values } = parsed;
  const sizes = String(values.sizes ?? '1000,10000').split(',').map(Number);
  const events = Number(values.events ?? '20');
  const growth = String(values.growth ?? '1000,10000').split(',').map(Number);
  const history = String(values.history ?? '2,20,100').split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 10) || !Number.isInteger(events) || events < 1) {
    console.error(`--sizes takes whole numbers of at least 10, --events a whole number\n\n${HELP}`);
    return 2;
  }
  const quiet = console.log;
  console.log = () => undefined; // the bots' per-decision logs would drown the table
  console.warn = () => undefined;
  const rows: Row[] = [];
  const growthRows: GrowthRow[] = [];
  try {
    for (const perThread of history) {
      growthRows.push(await staleGrowth(1000, perThread));
    }
    for (const threads of growth.filter((n) => n !== 1000)) {
      growthRows.push(await staleGrowth(threads, 2));
    }
    for (const size of sizes) {
      rows.push(await staleScenario(size));
    }
    rows.push(await oooScenario('OOO event, owner available', false, events));
    rows.push(await oooScenario('OOO event, owner away (reroute)', true, events));
    for (const step of ['open', 'follow-up', 'complete'] as const) {
      rows.push(await lifecycleScenario(step, events));
    }
  } finally {
    console.log = quiet;
  }
  const table = `${formatTable(rows)}\n\n${formatGrowth(growthRows)}`;
  console.log(table);
  if (values.write) {
    writeFileSync(
      RESULTS_FILE,
      `# Benchmark results\n\nMade by \`npm run bench -- --write\` on ${new Date().toISOString().slice(0, 10)} (Node ${process.version}, ${process.platform}).\n\n${table}\n`
    );
    console.log(`\nwritten to ${RESULTS_FILE}`);
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Stale-thread scan

async function staleScenario(threads: number): Promise<Row> {
  const seeded = async (label: string): Promise<{ server: ServerMock; expected: number }> => {
    const server = createServerMock({ quota: UNLIMITED }); // measure the points, do not throttle
    const expectations = await seedClinic(server, Date.now(), threads, (done) => progress(`seeding ${label}: ${done}/${threads} threads`));
    progress(`seeded ${label}: ${threads} threads, ${expectations.messages} messages\n`);
    server.resetCounts();
    return { server, expected: expectations.remindersToCreate };
  };
  const oursWorld = await seeded('ours');
  const ours = await measure(oursWorld.server, () =>
    staleHandler(oursWorld.server.medplum, botEvent({}, { BOT_TIMEOUT_SECONDS: '3600' }))
  );
  ours.reminders = (await oursWorld.server.searchAll<Task>('Task', `${REMINDER_SEARCH}&_count=100000`)).length;

  const naiveWorld = await seeded('naive');
  const alreadyOpen = (await naiveWorld.server.searchAll<Task>('Task', `${REMINDER_SEARCH}&_count=100000`)).length;
  const naive = await measure(naiveWorld.server, () => naiveStaleRun(naiveWorld.server.medplum));
  naive.reminders = (await naiveWorld.server.searchAll<Task>('Task', `${REMINDER_SEARCH}&_count=100000`)).length;
  ours.reminders -= alreadyOpen;
  naive.reminders -= alreadyOpen;
  for (const [m, server] of [
    [ours, oursWorld.server],
    [naive, naiveWorld.server],
  ] as const) {
    const read = server.points((r) => r.method === 'GET');
    m.perUnit = { 'per thread scanned': read / threads, 'per reminder created': (m.points - read) / Math.max(1, m.reminders ?? 0) };
  }
  return { scenario: `stale scan, ${threads.toLocaleString('en-US')} threads`, ours, naive, expected: oursWorld.expected };
}

/**
 * The docs' stale-thread algorithm, made correct on paging: one search (every page) for open thread
 * headers older than the threshold, one reminder search per thread, one create per thread without one.
 * It judges staleness by the header's date, as the docs do.
 * @param medplum - The client.
 */
async function naiveStaleRun(medplum: MedplumClient): Promise<void> {
  const cutoff = new Date(Date.now() - 72 * 3_600_000).toISOString();
  let bundle: Bundle = await medplum.search('Communication', {
    'part-of:missing': 'true',
    status: 'in-progress',
    _lastUpdated: `lt${cutoff}`,
  });
  const headers: Communication[] = [];
  for (;;) {
    headers.push(...(bundle.entry ?? []).map((e) => e.resource as Communication));
    const next = bundle.link?.find((l) => l.relation === 'next')?.url;
    if (!next) {
      break;
    }
    bundle = await medplum.get<Bundle>(next);
  }
  for (const header of headers) {
    const existing = await medplum.searchOne('Task', {
      focus: `Communication/${header.id}`,
      code: `${REMINDER_CODE.system}|${REMINDER_CODE.code}`,
      'status:not': 'completed',
    });
    if (!existing) {
      await medplum.createResource<Task>({
        resourceType: 'Task',
        status: 'requested',
        intent: 'order',
        priority: 'urgent',
        code: { coding: [REMINDER_CODE] },
        focus: { reference: `Communication/${header.id}` },
        for: header.subject,
        authoredOn: new Date().toISOString(),
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Stale run as history and open threads grow: incremental (the cron's runs) against full

interface GrowthRow {
  threads: number;
  perThread: number;
  incremental: Measure & { created: number };
  full: Measure & { created: number };
}

/**
 * One hourly run on a clinic where 1% of open threads just became due, 10% are already reminded and
 * the rest have the care team speaking last, every thread with `perThread` old messages.
 */
async function staleGrowth(threads: number, perThread: number): Promise<GrowthRow> {
  const run = async (mode: 'incremental' | 'full'): Promise<Measure & { created: number }> => {
    const server = createServerMock({ quota: UNLIMITED });
    const now = Date.now();
    const patient = { reference: 'Patient/p' };
    const provider = { reference: 'Practitioner/d' };
    for (let i = 0; i < threads; i++) {
      const header = await server.seed<Communication>({ resourceType: 'Communication', status: 'in-progress', subject: patient, sent: new Date(now - 90 * 86_400_000 - i).toISOString() });
      for (let k = 0; k < perThread; k++) {
        const sent = new Date(now - 60 * 86_400_000 + k * 3_600_000 - i).toISOString();
        await server.seed<Communication>({ ...message(header, k % 2 ? provider : patient), sent, meta: { lastUpdated: sent } });
      }
      const kind = i % 100;
      if (kind === 0 || kind >= 90) {
        // Due now (73 h), or silent for 5 days and reminded already.
        const silence = kind === 0 ? 73 : 120;
        const sent = new Date(now - silence * 3_600_000 - i).toISOString();
        await server.seed<Communication>({ ...message(header, patient), sent, meta: { lastUpdated: sent } });
        if (kind >= 90) {
          await server.seed<Task>({
            resourceType: 'Task',
            status: 'requested',
            intent: 'order',
            priority: 'urgent',
            code: { coding: [REMINDER_CODE] },
            focus: { reference: `Communication/${header.id}` },
            authoredOn: new Date(now - 3_600_000).toISOString(),
            extension: [{ url: 'urn:medplum-messaging-bots:silence-started', valueInstant: sent }],
          });
        }
      } else {
        const sent = new Date(now - 30 * 86_400_000 - i).toISOString();
        await server.seed<Communication>({ ...message(header, provider), sent, meta: { lastUpdated: sent } });
      }
      if ((i + 1) % 5000 === 0) {
        progress(`seeding ${mode}: ${i + 1}/${threads} threads × ${perThread} messages`);
      }
    }
    progress(`seeded ${mode}: ${threads} threads × ${perThread} messages\n`);
    // The hourly part alone ({"full": false}): a cron run without the bot's reconcile marker (a fresh
    // server) would reconcile too, to catch up.
    const input = { full: mode === 'full' };
    let created = 0;
    const measured = await measure(server, async () => {
      created = (await staleHandler(server.medplum, botEvent(input, { BOT_TIMEOUT_SECONDS: '100000', STALE_FULL_RECONCILE_HOUR: String((new Date().getUTCHours() + 12) % 24) }))).created;
    });
    return { ...measured, created };
  };
  return { threads, perThread, incremental: await run('incremental'), full: await run('full') };
}

function formatGrowth(rows: GrowthRow[]): string {
  const num = (n: number): string => n.toLocaleString('en-US', { maximumFractionDigits: 0 });
  return [
    'Stale run as history and open threads grow (1% newly due, 10% already reminded): incremental (the hourly runs) / full reconcile',
    '',
    '| open threads × messages each | requests incremental / full | FHIR quota points incremental / full | wall time in-process incremental / full | reminders created incremental / full |',
    '|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${num(r.threads)} × ${r.perThread} | ${num(r.incremental.requests)} / ${num(r.full.requests)} | ${num(r.incremental.points)} / ${num(r.full.points)} | ` +
        `${num(r.incremental.ms)} ms / ${num(r.full.ms)} ms | ${r.incremental.created} / ${r.full.created} |`
    ),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Out-of-office reroute

async function oooScenario(scenario: string, away: boolean, events: number): Promise<Row> {
  const run = async (variant: 'ours' | 'naive'): Promise<Measure> => {
    const server = createServerMock({ quota: UNLIMITED });
    const inputs: Communication[] = [];
    for (let i = 0; i < events; i++) {
      // On duty around the clock (so the available path holds whenever the bench runs), or on vacation.
      const { thread, patient } = await seedOwnedThread(server, { away, schedule: { availability: [{ from: '00:00:00', hours: 24 }] } });
      inputs.push({ ...message(thread, patient), id: `m${i}` });
    }
    const total = await measure(server, async () => {
      for (const input of inputs) {
        if (variant === 'ours') {
          await oooHandler(server.medplum, botEvent(input));
        } else {
          await naiveOooRun(server.medplum, input);
        }
      }
    });
    const perEvent = total.points / events;
    return {
      requests: total.requests / events,
      points: perEvent,
      ms: total.ms / events,
      peakHeapMb: total.peakHeapMb,
      perUnit: { [away ? 'per reroute' : 'per event']: perEvent, [`${away ? 'reroutes' : 'events'} in 50,000 points`]: Math.floor(50_000 / perEvent) },
    };
  };
  return { scenario: `${scenario}, per event`, ours: await run('ours'), naive: await run('naive') };
}

/**
 * The docs' OOO algorithm (made correct on the `$find` call and window so that it decides the same):
 * search the thread's Tasks, read each Task, search the owner's Schedule, `$find`, then one patch
 * per change (each Task, then the header).
 * @param medplum - The client.
 * @param input - The new message.
 */
async function naiveOooRun(medplum: MedplumClient, input: Communication): Promise<void> {
  const thread = input.partOf?.[0]?.reference as string;
  const tasks = await medplum.searchResources('Task', { focus: thread, status: 'requested,accepted,in-progress' });
  for (const found of tasks) {
    const task = await medplum.readResource('Task', found.id);
    const owner = task.owner?.reference;
    if (!owner) {
      continue;
    }
    const schedule = await medplum.searchOne('Schedule', { actor: owner });
    if (!schedule) {
      continue;
    }
    const now = Date.now();
    const start = new Date(Math.floor((now - 30 * 60_000) / 3_600_000) * 3_600_000).toISOString();
    const end = new Date(Math.ceil((now + 90 * 60_000) / 3_600_000) * 3_600_000).toISOString();
    const found2 = await medplum.get<Bundle | Parameters>(medplum.fhirUrl('Schedule', (schedule as Schedule).id as string, '$find') + `?start=${start}&end=${end}`);
    const bundle = (found2.resourceType === 'Parameters' ? found2.parameter?.[0]?.resource : found2) as Bundle;
    const free = (bundle?.entry ?? []).some((e) => {
      const slot = e.resource as { start: string; end: string };
      return Date.parse(slot.start) < now + 3_600_000 && Date.parse(slot.end) > now;
    });
    if (free) {
      continue;
    }
    await medplum.patchResource('Task', task.id, [
      { op: 'remove', path: '/owner' },
      { op: 'replace', path: '/status', value: 'requested' },
      { op: 'add', path: task.note ? '/note/-' : '/note', value: task.note ? { text: 'rerouted' } : [{ text: 'rerouted' }] },
    ]);
    const header = await medplum.readResource('Communication', thread.split('/')[1]);
    const recipient = (header.recipient ?? []).filter((r) => r.reference !== owner);
    await medplum.patchResource('Communication', header.id, [{ op: 'replace', path: '/recipient', value: recipient }]);
  }
}

// ---------------------------------------------------------------------------------------------
// Response-Task lifecycle (RESPONSE_TASKS=on)

const LIFECYCLE_LABEL = {
  open: 'lifecycle: a patient writes, a Task is opened and routed',
  'follow-up': 'lifecycle: a follow-up while the Task is open (nothing changes)',
  complete: 'lifecycle: the care team replies, the Task is completed',
};

async function lifecycleScenario(step: 'open' | 'follow-up' | 'complete', events: number): Promise<Row> {
  const run = async (variant: 'ours' | 'naive'): Promise<Measure> => {
    const server = createServerMock({ quota: UNLIMITED });
    const inputs: Communication[] = [];
    for (let i = 0; i < events; i++) {
      const { thread, patient, owner, task } = await seedOwnedThread(server, { schedule: { availability: [{ from: '00:00:00', hours: 24 }] } });
      if (step === 'open') {
        await server.update({ ...task, status: 'completed' }); // an earlier episode, answered
      }
      // Ten messages of history: what a thread that is never closed accumulates.
      for (let k = 0; k < 10; k++) {
        await server.seed({ ...message(thread, k % 2 ? { reference: `Practitioner/${owner.id}` } : patient), sent: new Date(Date.now() - (20 - k) * 60_000).toISOString() });
      }
      const sender = step === 'complete' ? { reference: `Practitioner/${owner.id}` } : patient;
      inputs.push(await server.seed({ ...message(thread, sender), sent: new Date().toISOString() }));
    }
    const total = await measure(server, async () => {
      for (const input of inputs) {
        if (variant === 'ours') {
          await oooHandler(server.medplum, botEvent(input, { RESPONSE_TASKS: 'on' }));
        } else {
          await naiveLifecycleRun(server.medplum, input);
        }
      }
    });
    return { requests: total.requests / events, points: total.points / events, ms: total.ms / events, peakHeapMb: total.peakHeapMb, perUnit: { 'per event': total.points / events } };
  };
  return { scenario: `${LIFECYCLE_LABEL[step]}, per event`, ours: await run('ours'), naive: await run('naive') };
}

/**
 * The naive lifecycle bot: per message, search the thread's open response Tasks; a patient message
 * with none creates one (unrouted, unconditional); a care-team message completes each.
 * @param medplum - The client.
 * @param input - The new message.
 */
async function naiveLifecycleRun(medplum: MedplumClient, input: Communication): Promise<void> {
  const thread = input.partOf?.[0]?.reference as string;
  const open = await medplum.searchResources('Task', { focus: thread, code: 'https://medplum.com/task-codes|respond-to-message', status: 'requested,accepted,in-progress' });
  if (input.sender?.reference?.startsWith('Patient/')) {
    if (!open.length) {
      await medplum.createResource<Task>({ resourceType: 'Task', status: 'requested', intent: 'order', focus: { reference: thread }, code: { coding: [{ system: 'https://medplum.com/task-codes', code: 'respond-to-message' }] } });
    }
    return;
  }
  for (const task of open) {
    await medplum.patchResource('Task', task.id, [{ op: 'replace', path: '/status', value: 'completed' }]);
  }
}

// ---------------------------------------------------------------------------------------------

async function measure(server: ServerMock, fn: () => Promise<unknown>): Promise<Measure> {
  (globalThis as { gc?: () => void }).gc?.();
  const base = process.memoryUsage().heapUsed;
  let peak = base;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().heapUsed);
  }, 5);
  server.resetCounts();
  const start = performance.now();
  await fn();
  const ms = performance.now() - start;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().heapUsed);
  return { requests: server.count(), points: server.points(), ms, peakHeapMb: (peak - base) / 1_048_576, perUnit: {} };
}

/** On a terminal, one redrawn line; elsewhere (CI, a log file) only the lines that end a phase. */
function progress(text: string): void {
  if (process.stderr.isTTY) {
    process.stderr.write(`\r${text}`);
  } else if (text.endsWith('\n')) {
    process.stderr.write(text);
  }
}

function formatTable(rows: Row[]): string {
  const num = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const lines = [
    '| scenario | requests ours / naive (ratio) | FHIR quota points ours / naive (ratio) | points per unit, ours / naive | wall time in-process ours / naive (ratio) | modeled with 20 ms per round trip, ours / naive (ratio) | reminders ours / naive / expected | peak heap ours / naive |',
    '|---|---|---|---|---|---|---|---|',
  ];
  const rtt = (m: Measure): number => m.ms + m.requests * ROUND_TRIP_MS;
  // "3.0x fewer" when ours costs less, "1.7x more" when it costs more (routing and exactly-once cost reads).
  const fewer = (naive: number, ours: number): string => (naive >= ours ? `${num(naive / ours, 1)}x fewer` : `${num(ours / naive, 1)}x more`);
  for (const { scenario, ours, naive, expected } of rows) {
    const digits = ours.requests % 1 || naive.requests % 1 ? 1 : 0;
    const units = Object.keys(ours.perUnit)
      .map((unit) => {
        const digits = Number.isInteger(ours.perUnit[unit]) && Number.isInteger(naive.perUnit[unit]) ? 0 : 1;
        return `${unit}: ${num(ours.perUnit[unit], digits)} / ${num(naive.perUnit[unit], digits)}`;
      })
      .join('; ');
    lines.push(
      `| ${scenario} | ${num(ours.requests, digits)} / ${num(naive.requests, digits)} (${fewer(naive.requests, ours.requests)}) | ` +
        `${num(ours.points, 0)} / ${num(naive.points, 0)} (${fewer(naive.points, ours.points)}) | ${units} | ` +
        `${num(ours.ms, 1)} ms / ${num(naive.ms, 1)} ms (${num(naive.ms / ours.ms, 1)}x) | ` +
        `${num(rtt(ours), 0)} ms / ${num(rtt(naive), 0)} ms (${num(rtt(naive) / rtt(ours), 1)}x) | ` +
        `${expected === undefined ? 'n/a' : `${num(ours.reminders ?? 0)} / ${num(naive.reminders ?? 0)} / ${num(expected)}`} | ` +
        `${num(ours.peakHeapMb, 1)} MB / ${num(naive.peakHeapMb, 1)} MB |`
    );
  }
  return lines.join('\n');
}
