// `npm run test:load -- [options]`: a burst of patient messages against a real Medplum server (a
// staging Project, or ../shared/realserver), with the deployed bots. Not part of `npm test`.
//
// It makes providers (some away on vacation), threads each with a response Task owned by one of
// them, then sends one patient message per thread, all within a minute, and watches what the
// out-of-office event path does under the Bot's FHIR quota; then it runs the sweep (as its cron
// would) until nothing is left, and counts: correct (away Tasks rerouted once, present ones kept),
// wrong, half-done (Task rerouted, header still listing the away owner), rerouted twice; with the
// latency of the event path and the Bot's run outcomes. It deletes everything it made in a finally.
//
// With --lifecycle (RESPONSE_TASKS=on for the run, then as it was): the threads have no Task; each
// patient message must open exactly one response Task, to the on-shift recipient or to the pool
// when the recipient is away, by the event path or by the sweep after it.
import type { MedplumClient } from '@medplum/core';
import type { AuditEvent, Bundle, BundleEntry, Communication, Extension, Resource, Task } from '@medplum/fhirtypes';
import { readFileSync } from 'node:fs';
import { parseCommandLine } from '../../src/admin/command-line';
import { connect, connectionEnv, dotEnvFile, loadDotEnv } from '../../src/admin/connect';
import { percentile } from '../../src/sla/sla-metrics';
import { QuotaPacer } from '../../src/sla/quota-pacer';
import { withSecret } from './project-secret';
import { scaleRun } from './scale';

const HELP = `Usage: npm run test:load -- [options]

  --messages N   patient messages in the burst (default 300)
  --away N       of which in threads whose owner is away (default 250)
  --env NAME     use medplum.NAME.config.json for the Bot ids
  --yes          run the sweep even though the Project has open threads this run did not make
                 (the sweep acts on every open thread)
  --keep         do not delete what the run made (to look at it in the App)
  --lifecycle    the response lifecycle instead: threads without a Task, one Task opened per message
  --stale        the stale bot instead: seeds --threads open threads (default 1000) with --history old
                 messages each (default 20; 1% of threads just due, 10% already reminded) and times an
                 incremental run against a full reconcile. Seeding writes many resources: on a test
                 server, raise the Project's userFhirQuota first
  --scale        both bots over a long-lived clinic (test/e2e/scale.ts): seeds --threads open threads
                 (default 20000), --long of them (default one in 200) with --long-messages messages
                 (default 500), the others with their few messages plus --history old ones (default 0);
                 away owners with waiting patients, due and long-silent threads, open reminders. Then
                 the sweep until it defers nothing, an hourly stale run ({"full": false}), the full
                 reconcile run after run until its pass completes, and the SLA report; times, counts
                 and checks each, writes the results to --out DIR (default .). The Bots' crons are
                 paused for the run. Seeding 20,000 threads writes about 120,000 resources: raise the
                 loading client's quota (not the Bots') on a test server first
  --count-redis  with --scale on a test server: count each run's requests and points on the
                 server's Redis (redis-cli MONITOR on 127.0.0.1, REDIS_PORT, password in REDISCLI_AUTH)

Needs MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET (a Project admin client), and the
bots set up and deployed (npm run setup, npm run deploy).`;

const DAY = 86_400_000;
const BATCH = 100;
const TZ: Extension[] = [{ url: 'http://hl7.org/fhir/StructureDefinition/timezone', valueCode: 'America/New_York' }];
const ALL_DAY: Extension[] = [
  {
    url: 'http://medplum.com/fhir/StructureDefinition/scheduling-parameters',
    extension: [
      { url: 'availability', valueTiming: { repeat: { dayOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], timeOfDay: ['00:00:00'], duration: 24, durationUnit: 'h' } } },
      { url: 'duration', valueDuration: { value: 30, unit: 'min' } },
    ],
  },
];

interface Thread {
  header: Communication & { id: string };
  task: Task & { id: string };
  owner: string;
  away: boolean;
  message?: Communication & { id: string };
}

/**
 * Runs the load test.
 * @param argv - Options.
 * @returns The exit code: 0 when every Task ends right.
 */
export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(
    argv,
    {
      messages: { type: 'string' },
      away: { type: 'string' },
      env: { type: 'string' },
      yes: { type: 'boolean' },
      keep: { type: 'boolean' },
      lifecycle: { type: 'boolean' },
      stale: { type: 'boolean' },
      threads: { type: 'string' },
      history: { type: 'string' },
      scale: { type: 'boolean' },
      long: { type: 'string' },
      'long-messages': { type: 'string' },
      'count-redis': { type: 'boolean' },
      out: { type: 'string' },
    },
    HELP
  );
  if ('exit' in parsed) {
    return parsed.exit;
  }
  const { values } = parsed;
  const total = Number(values.messages ?? 300);
  const away = Number(values.away ?? 250);
  if (!Number.isInteger(total) || !Number.isInteger(away) || total < 1 || away < 0 || away > total) {
    console.error('--messages and --away are whole numbers, --away at most --messages');
    return 2;
  }
  loadDotEnv(dotEnvFile(values.env as string | undefined));
  const configFile = values.env ? `medplum.${values.env}.config.json` : 'medplum.config.json';
  const botId = (JSON.parse(readFileSync(configFile, 'utf8')).bots as { name: string; id: string }[]).find((b) => b.name === 'ooo-reroute')?.id;
  const server = connectionEnv();
  const medplum = await connect(server);
  const what = values.scale
    ? `both bots over ${values.threads ?? 20000} open threads at scale`
    : values.stale
      ? `the stale bot over ${values.threads ?? 1000} threads × ${values.history ?? 20} messages`
      : `${total} messages, ${away} to away owners${values.lifecycle ? ', response lifecycle' : ''}`;
  console.log(`Load test on ${server.MEDPLUM_BASE_URL}, Project ${medplum.getProject()?.id}: ${what}`);
  const pacer = new QuotaPacer(medplum, { onWait: (s) => console.log(`  (the load generator waits ${s} s for its own FHIR quota)`) });
  const created: Resource[] = [];
  try {
    const foreign = (await medplum.search('Communication', { 'part-of:missing': 'true', status: 'in-progress', _count: '0', _total: 'accurate' }, { cache: 'no-cache' })).total ?? 0;
    if (foreign && !values.yes) {
      console.error(`The Project has ${foreign} open thread(s) this run did not make, and the sweep acts on every open thread. Run again with --yes where that is fine.`);
      return 1;
    }
    if (values.scale) {
      const bots = JSON.parse(readFileSync(configFile, 'utf8')).bots as { name: string; id: string }[];
      const threads = Number(values.threads ?? 20000);
      const options = {
        threads,
        long: Number(values.long ?? Math.floor(threads / 200)),
        longMessages: Number(values['long-messages'] ?? 500),
        history: Number(values.history ?? 0),
        keep: !!values.keep,
        countRedis: !!values['count-redis'],
        outDir: (values.out as string | undefined) ?? '.',
        bots: { ooo: botId as string, stale: bots.find((b) => b.name === 'stale-thread-reminders')?.id as string },
        maxSweeps: 10,
        maxReconcileRuns: 60,
      };
      if (![options.threads, options.long, options.longMessages, options.history].every((n) => Number.isInteger(n) && n >= 0) || options.long > options.threads) {
        console.error('--threads, --long, --long-messages and --history are whole numbers, --long at most --threads');
        return 2;
      }
      return await scaleRun(medplum, pacer, options);
    }
    if (values.stale) {
      const staleBot = (JSON.parse(readFileSync(configFile, 'utf8')).bots as { name: string; id: string }[]).find((b) => b.name === 'stale-thread-reminders')?.id as string;
      return await staleHistory(medplum, pacer, created, staleBot, Number(values.threads ?? 1000), Number(values.history ?? 20));
    }
    if (values.lifecycle) {
      return await withSecret(medplum, 'RESPONSE_TASKS', 'on', () => lifecycleBurst(medplum, pacer, created, botId as string, total, away));
    }
    const threads = await seed(medplum, pacer, created, total, away);

    // The burst: one patient message per thread, in batches (each create fires the Subscription).
    const burstStart = Date.now();
    const patient = (threads[0].header.subject as { reference: string }).reference;
    const messages = await createAll<Communication>(
      medplum,
      pacer,
      created,
      threads.map((t) => ({ resourceType: 'Communication', status: 'in-progress', partOf: [{ reference: `Communication/${t.header.id}` }], sender: { reference: patient }, sent: new Date().toISOString(), payload: [{ contentString: 'load test' }] }))
    );
    threads.forEach((t, i) => (t.message = messages[i]));
    console.log(`burst: ${total} messages created in ${((Date.now() - burstStart) / 1000).toFixed(1)} s`);

    // Wait for the event path to settle (nothing changes for 10 s, at most 2 minutes).
    let last = '';
    let stable = 0;
    for (let i = 0; i < 60 && stable < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const now = JSON.stringify(await count(medplum, pacer, threads));
      stable = now === last ? stable + 1 : 0;
      last = now;
    }
    const afterEvents = await count(medplum, pacer, threads);
    report('after the event path', afterEvents);
    const runs = await botRuns(medplum, botId as string, burstStart);
    console.log(`  Bot runs since the burst: ${runs.ok} ok, ${runs.failed} failed; ${runs.deferred} reported work deferred for the sweep`);

    // The sweep, as its cron runs it, in a fresh quota minute for the Bot; again while it defers.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, burstStart + 61_000 - Date.now())));
    for (let i = 0; i < 5; i++) {
      const summary = await medplum.post<{ rerouted: number; repaired: number; stoppedEarly: boolean; deferred: { quota: number; deadline: number } }>(medplum.fhirUrl('Bot', botId as string, '$execute'), {});
      console.log(`sweep ${i + 1}: ${JSON.stringify(summary)}`);
      if (!summary.stoppedEarly && !summary.deferred.quota && !summary.deferred.deadline) {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 61_000));
    }
    const afterSweep = await count(medplum, pacer, threads);
    report('after the sweep', afterSweep);
    return afterSweep.wrong || afterSweep.halfDone || afterSweep.twice || afterSweep.pending ? 1 : 0;
  } finally {
    if (!values.keep && !values.scale) {
      let deleted = 0;
      for (const resource of created.reverse()) {
        await pacer.run(100, () => medplum.deleteResource(resource.resourceType, resource.id as string)).then(() => deleted++, () => undefined);
      }
      console.log(`deleted ${deleted} of ${created.length} resources the run made`);
    }
  }
}

/**
 * The lifecycle burst: threads without Tasks, one patient message each, then the sweep; every thread
 * must end with exactly one response Task, owned by its on-shift recipient or in the pool.
 * @returns The exit code.
 */
async function lifecycleBurst(medplum: MedplumClient, pacer: QuotaPacer, created: Resource[], botId: string, total: number, away: number): Promise<number> {
  const seeded = await seed(medplum, pacer, created, total, away, false);
  const burstStart = Date.now();
  const patient = (seeded[0].header.subject as { reference: string }).reference;
  await createAll<Communication>(
    medplum,
    pacer,
    created,
    seeded.map((t) => ({ resourceType: 'Communication', status: 'in-progress', partOf: [{ reference: `Communication/${t.header.id}` }], sender: { reference: patient }, sent: new Date().toISOString(), payload: [{ contentString: 'load test' }] }))
  );
  console.log(`burst: ${total} messages in ${total} new threads created in ${((Date.now() - burstStart) / 1000).toFixed(1)} s`);
  const tally = async (): Promise<{ one: number; none: number; duplicated: number; wrongOwner: number; tasks: Task[] }> => {
    const tasks: Task[] = [];
    for (let i = 0; i < seeded.length; i += BATCH) {
      const focus = seeded.slice(i, i + BATCH).map((t) => `Communication/${t.header.id}`).join(',');
      for await (const page of medplum.searchResourcePages('Task', { focus, code: 'https://medplum.com/task-codes|respond-to-message', _count: '1000' }, { cache: 'no-cache' })) {
        tasks.push(...page);
      }
    }
    created.push(...tasks.filter((t) => !created.some((c) => c.id === t.id)));
    const byThread = new Map<string, Task[]>();
    tasks.forEach((t) => byThread.set(t.focus?.reference as string, [...(byThread.get(t.focus?.reference as string) ?? []), t]));
    const result = { one: 0, none: 0, duplicated: 0, wrongOwner: 0, tasks };
    for (const t of seeded) {
      const mine = byThread.get(`Communication/${t.header.id}`) ?? [];
      result[mine.length === 1 ? 'one' : mine.length ? 'duplicated' : 'none']++;
      if (mine.length === 1 && (mine[0].owner?.reference ?? 'pool') !== (t.away ? 'pool' : t.owner)) {
        result.wrongOwner++;
      }
    }
    return result;
  };
  let last = '';
  for (let i = 0, stable = 0; i < 60 && stable < 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const now = JSON.stringify((({ tasks: _, ...counts }) => counts)(await tally()));
    stable = now === last ? stable + 1 : 0;
    last = now;
  }
  const afterEvents = await tally();
  const latencies = afterEvents.tasks.map((t) => (Date.parse(t.authoredOn ?? '') - burstStart) / 1000).filter((x) => x >= 0);
  const runs = await botRuns(medplum, botId, burstStart);
  console.log(
    `after the event path: ${afterEvents.one} threads with one Task, ${afterEvents.none} with none, ${afterEvents.duplicated} duplicated, ${afterEvents.wrongOwner} routed wrong; ` +
      `Bot runs ${runs.ok} ok, ${runs.failed} failed, ${runs.deferred} deferred; Task opened after the burst began: p50 ${percentile(latencies, 50)?.toFixed(1)} s, p90 ${percentile(latencies, 90)?.toFixed(1)} s`
  );
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, burstStart + 61_000 - Date.now())));
  for (let i = 0; i < 5; i++) {
    const sweepStart = Date.now();
    const summary = await medplum.post<{ opened: number; stoppedEarly: boolean; deferred: { quota: number; deadline: number } }>(medplum.fhirUrl('Bot', botId, '$execute'), {});
    console.log(`sweep ${i + 1} (${((Date.now() - sweepStart) / 1000).toFixed(1)} s): ${JSON.stringify(summary)}`);
    // A sweep stopped early (its first read refused by the quota the events spent) is run again next minute.
    if (!summary.stoppedEarly && !summary.deferred.quota && !summary.deferred.deadline) {
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 61_000));
  }
  const afterSweep = await tally();
  console.log(`after the sweep: ${afterSweep.one} threads with one Task, ${afterSweep.none} with none, ${afterSweep.duplicated} duplicated, ${afterSweep.wrongOwner} routed wrong (${afterSweep.tasks.length} Tasks)`);
  return afterSweep.none || afterSweep.duplicated || afterSweep.wrongOwner ? 1 : 0;
}

/**
 * Long histories: open threads with many old messages; times one incremental run and one full
 * reconcile of the stale bot, as `$execute` runs them.
 * @returns The exit code: 0 when both runs create the same reminders.
 */
async function staleHistory(medplum: MedplumClient, pacer: QuotaPacer, created: Resource[], botId: string, threads: number, history: number): Promise<number> {
  const now = Date.now();
  const iso = (ms: number): string => new Date(now - ms).toISOString();
  const [patient] = await createAll(medplum, pacer, created, [{ resourceType: 'Patient' as const }]);
  const [provider] = await createAll(medplum, pacer, created, [{ resourceType: 'Practitioner' as const }]);
  const p = { reference: `Patient/${patient.id}` };
  const d = { reference: `Practitioner/${provider.id}` };
  const headers = await createAll(medplum, pacer, created, Array.from({ length: threads }, () => ({ resourceType: 'Communication' as const, status: 'in-progress' as const, subject: p })));
  const messages: Communication[] = [];
  const reminders: Task[] = [];
  headers.forEach((h, i) => {
    const partOf = [{ reference: `Communication/${h.id}` }];
    for (let k = 0; k < history; k++) {
      messages.push({ resourceType: 'Communication', status: 'completed', partOf, sender: k % 2 ? d : p, sent: iso(60 * DAY - k * 3_600_000 - i) });
    }
    const kind = i % 100;
    const silence = kind === 0 ? 73 * 3_600_000 : kind >= 90 ? 5 * DAY : 30 * DAY;
    messages.push({ resourceType: 'Communication', status: 'completed', partOf, sender: kind === 0 || kind >= 90 ? p : d, sent: iso(silence + i) });
    if (kind >= 90) {
      reminders.push({
        resourceType: 'Task',
        status: 'requested',
        intent: 'order',
        priority: 'urgent',
        code: { coding: [{ system: 'https://medplum.com/task-codes', code: 'respond-to-old-message' }] },
        focus: { reference: `Communication/${h.id}` },
        authoredOn: iso(3_600_000),
        extension: [{ url: 'urn:medplum-messaging-bots:silence-started', valueInstant: iso(silence + i) }],
      });
    }
  });
  const seedStart = Date.now();
  await createAll(medplum, pacer, created, messages);
  await createAll(medplum, pacer, created, reminders);
  console.log(`seeded ${threads} open threads, ${messages.length} messages, ${reminders.length} open reminders in ${((Date.now() - seedStart) / 1000).toFixed(0)} s`);
  const results: Record<string, { created: number; threadsRead: number }> = {};
  for (const full of [false, true]) {
    await new Promise((resolve) => setTimeout(resolve, 61_000)); // a fresh quota minute for the Bot
    const start = Date.now();
    const summary = await medplum.post<{ created: number; threadsRead: number; stoppedEarly: boolean }>(medplum.fhirUrl('Bot', botId, '$execute'), { full });
    console.log(`${full ? 'full reconcile' : 'incremental run'}: ${((Date.now() - start) / 1000).toFixed(1)} s, ${JSON.stringify(summary)}`);
    results[full ? 'full' : 'incremental'] = summary;
    const made = await medplum.searchResources('Task', { code: 'https://medplum.com/task-codes|respond-to-old-message', _count: '1000', 'authored-on': `ge${new Date(start).toISOString()}` }, { cache: 'no-cache' });
    created.push(...made.filter((t) => !created.some((c) => c.id === t.id)));
  }
  return results.incremental.created === Math.ceil(threads / 100) && results.full.created === 0 ? 0 : 1;
}

async function seed(medplum: MedplumClient, pacer: QuotaPacer, created: Resource[], total: number, away: number, withTasks = true): Promise<Thread[]> {
  const perAway = 10;
  const perPresent = 5;
  const awayOwners = Math.ceil(away / perAway);
  const presentOwners = Math.ceil((total - away) / perPresent);
  const owners = await createAll(medplum, pacer, created, Array.from({ length: awayOwners + presentOwners }, () => ({ resourceType: 'Practitioner' as const, extension: TZ })));
  const schedules = await createAll(
    medplum,
    pacer,
    created,
    owners.map((o) => ({ resourceType: 'Schedule' as const, active: true, actor: [{ reference: `Practitioner/${o.id}` }], extension: ALL_DAY }))
  );
  const now = Date.now();
  await createAll(
    medplum,
    pacer,
    created,
    schedules.slice(0, awayOwners).map((s) => ({ resourceType: 'Slot' as const, schedule: { reference: `Schedule/${s.id}` }, status: 'busy-unavailable' as const, start: new Date(now - DAY).toISOString(), end: new Date(now + DAY).toISOString() }))
  );
  const [patient] = await createAll(medplum, pacer, created, [{ resourceType: 'Patient' as const }]);
  const plan = Array.from({ length: total }, (_, i) => {
    const isAway = i < away;
    const owner = isAway ? owners[Math.floor(i / perAway)] : owners[awayOwners + Math.floor((i - away) / perPresent)];
    return { owner: `Practitioner/${owner.id}`, away: isAway };
  });
  const headers = await createAll(
    medplum,
    pacer,
    created,
    plan.map((p) => ({ resourceType: 'Communication' as const, status: 'in-progress' as const, subject: { reference: `Patient/${patient.id}` }, recipient: [{ reference: `Patient/${patient.id}` }, { reference: p.owner }] }))
  );
  const tasks = withTasks
    ? await createAll(
        medplum,
        pacer,
        created,
        plan.map((p, i) => ({ resourceType: 'Task' as const, status: 'in-progress' as const, intent: 'order' as const, focus: { reference: `Communication/${headers[i].id}` }, owner: { reference: p.owner } }))
      )
    : [];
  console.log(`seeded ${owners.length} providers (${awayOwners} away), ${total} threads${withTasks ? ' with a Task each' : ', no Tasks'}`);
  return plan.map((p, i) => ({ ...p, header: headers[i], task: tasks[i] }));
}

async function createAll<T extends Resource>(medplum: MedplumClient, pacer: QuotaPacer, created: Resource[], resources: T[]): Promise<(T & { id: string })[]> {
  const out: (T & { id: string })[] = [];
  for (let i = 0; i < resources.length; i += BATCH) {
    const entry: BundleEntry[] = resources.slice(i, i + BATCH).map((resource) => ({ request: { method: 'POST', url: resource.resourceType }, resource }));
    const response = await pacer.run(100 * entry.length, () => medplum.executeBatch({ resourceType: 'Bundle', type: 'batch', entry }));
    for (const e of response.entry ?? []) {
      if (!e.response?.status?.startsWith('201')) {
        throw new Error(`a create failed: ${e.response?.status} ${JSON.stringify(e.response?.outcome?.issue?.[0]?.details)}`);
      }
      created.push(e.resource as Resource);
      out.push(e.resource as T & { id: string });
    }
  }
  return out;
}

interface Counts {
  correct: number;
  wrong: number;
  halfDone: number;
  twice: number;
  /** Away Tasks not rerouted yet. */
  pending: number;
  latencies: number[];
}

async function count(medplum: MedplumClient, pacer: QuotaPacer, threads: Thread[]): Promise<Counts> {
  const counts: Counts = { correct: 0, wrong: 0, halfDone: 0, twice: 0, pending: 0, latencies: [] };
  const tasks = await readAll<Task>(medplum, pacer, threads.map((t) => `Task/${t.task.id}`));
  const headers = await readAll<Communication>(medplum, pacer, threads.map((t) => `Communication/${t.header.id}`));
  threads.forEach((t, i) => {
    const task = tasks[i];
    const listed = headers[i].recipient?.some((r) => r.reference === t.owner);
    const notes = task.note?.filter((n) => n.authorString === 'ooo-reroute').length ?? 0;
    if (!t.away) {
      counts[task.owner?.reference === t.owner && !notes && listed ? 'correct' : 'wrong']++;
    } else if (task.owner) {
      counts[task.owner.reference === t.owner ? 'pending' : 'wrong']++;
    } else if (notes > 1) {
      counts.twice++;
    } else if (listed) {
      counts.halfDone++;
    } else {
      counts.correct++;
      const sent = Date.parse(t.message?.meta?.lastUpdated ?? '');
      const moved = Date.parse(task.lastModified ?? '');
      if (sent && moved) {
        counts.latencies.push((moved - sent) / 1000);
      }
    }
  });
  return counts;
}

async function readAll<T extends Resource>(medplum: MedplumClient, pacer: QuotaPacer, refs: string[]): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < refs.length; i += BATCH) {
    const entry: BundleEntry[] = refs.slice(i, i + BATCH).map((url) => ({ request: { method: 'GET', url } }));
    const response: Bundle = await pacer.run(entry.length, () => medplum.executeBatch({ resourceType: 'Bundle', type: 'batch', entry }));
    out.push(...(response.entry ?? []).map((e) => e.resource as T));
  }
  return out;
}

async function botRuns(medplum: MedplumClient, botId: string, since: number): Promise<{ ok: number; failed: number; deferred: number }> {
  const events: AuditEvent[] = [];
  for await (const page of medplum.searchResourcePages('AuditEvent', { entity: `Bot/${botId}`, date: `ge${new Date(since).toISOString()}`, _count: '1000' })) {
    events.push(...page);
  }
  return {
    ok: events.filter((e) => e.outcome === '0').length,
    failed: events.filter((e) => e.outcome !== '0').length,
    deferred: events.filter((e) => /"quota":[1-9]/.test(e.outcomeDesc ?? '')).length,
  };
}

function report(when: string, c: Counts): void {
  const p = (n: number): string => (c.latencies.length ? `${percentile(c.latencies, n)?.toFixed(1)} s` : '-');
  console.log(
    `${when}: correct ${c.correct}, wrong ${c.wrong}, half-done ${c.halfDone}, rerouted twice ${c.twice}, away Tasks not yet rerouted ${c.pending}; ` +
      `latency message -> reroute p50 ${p(50)}, p90 ${p(90)}, p99 ${p(99)} (${c.latencies.length} Tasks)`
  );
}
