// `npm run test:load -- --scale`: both bots over a long-lived clinic on a real Medplum server.
//
// It seeds --threads open threads (default 20,000), --long of them (default one in 200) with
// --long-messages messages each (default 500), and for the rest the few messages their kind needs:
// per hundred threads, one whose owner is away (a busy-unavailable Slot) while the patient waits,
// one whose away owner was answered, four waiting on an owner on duty, four answered with the Task
// still open, one just due for a reminder (its silence crosses 72 h within the hourly window), one
// silent for ten days (only a full reconcile reaches it), five already reminded, and 83 where the
// care team spoke last. Seeding runs batch Bundles of a few hundred creates, three at a time, paced
// by the RateLimit header (a test Project raises the loading client's quota, not the Bots').
//
// Then it runs, each by `Bot/{id}/$execute` in a fresh quota minute of its Bot, as the crons would:
// the sweep (the cron's input, a Bot resource, with `* * * * *` so that runs a minute apart are
// successive ticks, as */15 runs are 15 minutes apart) until it leaves nothing deferred; the hourly
// stale run (`{"full": false}`); the full reconcile (`{"full": true}`) run after run until the pass
// says it is complete; then `npm run sla-report` in process. For each: time, requests and points
// (with --count-redis, read off the server's Redis: the rate-limit counter of the caller's
// membership and its per-request membership read), and correctness: every away owner's waiting
// Task rerouted once and its owner off the header, every other Task kept; every due thread
// reminded once, for the right episode, and nothing else reminded.
//
// The two Bots' crons are paused for the run (their cronString removed, put back at the end) so that
// only the runs it makes act. At the end it deletes what it made and the reminders the bot made for
// its threads, and puts the stale bot's reconcile marker back as it was (or deletes it when the run
// made it), unless --keep.
import type { MedplumClient, WithId } from '@medplum/core';
import type { Basic, Bundle, BundleEntry, Communication, Extension, Resource, Task } from '@medplum/fhirtypes';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { connect, connectionEnv } from '../../src/admin/connect';
import { readPages } from '../../src/lib/fhir';
import { main as slaExport } from '../../src/sla/sla-export';
import type { QuotaPacer } from '../../src/sla/quota-pacer';
import type { SlaRow } from '../../src/sla/sla-metrics';
import { resetSeconds } from '../../src/sla/quota-pacer';
import { EPISODE_SYSTEM, MARKER_IDENTIFIER, REMINDER_CODING, SILENCE_STARTED_URL } from '../../src/stale-thread-reminders';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Entries per batch Bundle while seeding and cleaning up, and batches in flight. */
const BATCH = 250;
const IN_FLIGHT = 3;
const RESPONSE_CODING = { system: 'https://medplum.com/task-codes', code: 'respond-to-message' };
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

/** What a seeded thread is for. */
export type Kind = 'away-waiting' | 'away-answered' | 'present-waiting' | 'present-answered' | 'due' | 'stale-old' | 'reminded' | 'idle';

/** Options of a scale run. */
export interface ScaleOptions {
  threads: number;
  long: number;
  longMessages: number;
  /** Extra old messages in every thread that is not long (default 0). */
  history: number;
  keep: boolean;
  countRedis: boolean;
  /** Where the results (JSON) and the SLA report (HTML) go. */
  outDir: string;
  bots: { ooo: string; stale: string };
  maxSweeps: number;
  maxReconcileRuns: number;
}

/**
 * The kind of thread i: per hundred, in a order shifted by 13 every 200 threads so that the long
 * threads (one every 200, see isLong) fall on every kind.
 * @param i - The thread's index.
 * @returns Its kind.
 */
export function kindOf(i: number): Kind {
  const k = (i + 13 * Math.floor(i / 200)) % 100;
  if (k === 0) {
    return 'away-waiting';
  }
  if (k === 1) {
    return 'away-answered';
  }
  if (k <= 5) {
    return 'present-waiting';
  }
  if (k <= 9) {
    return 'present-answered';
  }
  if (k === 10) {
    return 'due';
  }
  if (k === 11) {
    return 'stale-old';
  }
  return k <= 16 ? 'reminded' : 'idle';
}

/**
 * The indices of the long threads, spread evenly.
 * @param threads - Threads.
 * @param long - Long threads.
 * @returns Their indices.
 */
export function longIndices(threads: number, long: number): Set<number> {
  return new Set(Array.from({ length: long }, (_, j) => Math.floor(((j + 0.5) * threads) / long)));
}

/** A message to seed: who writes (the patient or the thread's provider) and how long ago. */
export interface MessageSpec {
  role: 'patient' | 'care';
  age: number;
}

/** A thread's plan: its messages (oldest first) and which of them matter to the checks. */
export interface ThreadSpec {
  kind: Kind;
  messages: MessageSpec[];
  /** The care team's last message before the patient's wait, an index into messages (undefined: none). */
  lastCare?: number;
  /** The first patient message the care team has not answered, an index into messages. */
  firstUnanswered?: number;
}

/**
 * The messages of thread i.
 * @param i - Index.
 * @param kind - Its kind.
 * @param long - For a long thread, the messages it holds; undefined for the others.
 * @param history - Older messages before a thread's few that its kind needs (not long threads).
 * @returns The plan.
 */
export function threadSpec(i: number, kind: Kind, long: number | undefined, history = 0): ThreadSpec {
  const jitter = (i % 3600) * 1000; // up to an hour, so that no two threads share their instants
  const spread = ((i * 7919) % 59) * DAY; // idle threads: the care team's last reply 1 h to 60 days ago
  const tails: Record<Kind, MessageSpec[]> = {
    'away-waiting': [{ role: 'care', age: DAY + jitter }, { role: 'patient', age: 2 * HOUR + jitter }, { role: 'patient', age: HOUR + jitter }],
    'present-waiting': [{ role: 'care', age: DAY + jitter }, { role: 'patient', age: 2 * HOUR + jitter }, { role: 'patient', age: HOUR + jitter }],
    'away-answered': [{ role: 'patient', age: 3 * HOUR + jitter }, { role: 'care', age: 2 * HOUR + jitter }],
    'present-answered': [{ role: 'patient', age: 3 * HOUR + jitter }, { role: 'care', age: 2 * HOUR + jitter }],
    // The first unanswered message 73-74 h ago: inside the hourly window (72 h, plus 24 h of look-back).
    due: [{ role: 'care', age: 80 * HOUR + jitter }, { role: 'patient', age: 73 * HOUR + jitter }, { role: 'patient', age: 50 * HOUR + jitter }],
    // Ten days: outside every hourly window; only a full reconcile finds it.
    'stale-old': [{ role: 'care', age: 12 * DAY + jitter }, { role: 'patient', age: 10 * DAY + jitter }, { role: 'patient', age: 9 * DAY + jitter }],
    reminded: [{ role: 'care', age: 7 * DAY + jitter }, { role: 'patient', age: 5 * DAY + jitter }],
    idle: [{ role: 'patient', age: 2 * HOUR + spread + jitter }, { role: 'care', age: HOUR + spread + jitter }],
  };
  const tail = tails[kind];
  const before = long === undefined ? history : Math.max(0, long - tail.length);
  // Older messages, alternating, evenly spread over the 60 days before the tail's first.
  const start = tail[0].age;
  const older: MessageSpec[] = Array.from({ length: before }, (_, k) => ({
    role: k % 2 ? 'care' : 'patient',
    age: start + 60 * DAY - (k * 60 * DAY) / Math.max(1, before),
  }));
  const messages = [...older, ...tail];
  const waiting = ['away-waiting', 'present-waiting', 'due', 'stale-old', 'reminded'].includes(kind);
  const firstUnanswered = waiting ? messages.findIndex((m, k) => k >= older.length && m.role === 'patient') : undefined;
  const lastCare = waiting ? (firstUnanswered as number) - 1 : undefined;
  return { kind, messages, lastCare: lastCare !== undefined && lastCare >= 0 && messages[lastCare].role === 'care' ? lastCare : undefined, firstUnanswered };
}

/** One seeded thread. */
interface Seeded {
  index: number;
  kind: Kind;
  header: string;
  owner: string;
  task?: string;
  messageIds: string[];
  spec: ThreadSpec;
}

/** What a measured run cost. */
interface Cost {
  ms: number;
  requests?: number;
  points?: number;
}

/** Counts requests and points of given memberships on the server's Redis (MONITOR), while started. */
class RedisCounter {
  private child?: ChildProcessWithoutNullStreams;
  private counts = new Map<string, { requests: number; points: number }>();

  constructor(private readonly port: string) {}

  /**
   * Starts watching.
   * @param memberships - ProjectMembership ids.
   */
  async start(memberships: string[]): Promise<void> {
    this.counts = new Map(memberships.map((m) => [m, { requests: 0, points: 0 }]));
    const child = spawn('redis-cli', ['-h', '127.0.0.1', '-p', this.port, 'MONITOR'], { env: process.env });
    this.child = child;
    const points = /"incrby" "medplum:rl:fhir:membership::([0-9a-f-]{36})" "(\d+)"/;
    const request = /"get" "ProjectMembership\/([0-9a-f-]{36})"/;
    const ready = new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.stderr.on('data', (d: Buffer) => {
        if (/NOAUTH|ERR|denied/i.test(d.toString())) {
          reject(new Error(`redis-cli MONITOR: ${d.toString().trim()} (set REDISCLI_AUTH to the server's Redis password)`));
        }
      });
      // Each line is parsed for two patterns and dropped; nothing else is kept.
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (line === 'OK') {
          resolve();
          return;
        }
        const p = points.exec(line);
        if (p) {
          const c = this.counts.get(p[1]);
          if (c) {
            c.points += Number(p[2]);
          }
          return;
        }
        const r = request.exec(line);
        const c = r && this.counts.get(r[1]);
        if (c) {
          c.requests++;
        }
      });
    });
    await ready;
  }

  /**
   * Stops watching.
   * @returns Requests and points per membership.
   */
  async stop(): Promise<Map<string, { requests: number; points: number }>> {
    await sleep(500); // let the last commands through
    this.child?.kill();
    this.child = undefined;
    return this.counts;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const iso = (t: number): string => new Date(t).toISOString();
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/**
 * Runs batches of entries, a few in flight, each paced by the caller's quota; entries the quota
 * refused inside a batch are sent again after the reset.
 * @param medplum - The client.
 * @param pacer - The pacer.
 * @param entries - The entries.
 * @param cost - Points per entry.
 * @returns The responses' entries, in order.
 */
async function batchAll(medplum: MedplumClient, pacer: QuotaPacer, entries: BundleEntry[], cost: number): Promise<BundleEntry[]> {
  const out: BundleEntry[] = new Array(entries.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < entries.length) {
      const from = next;
      next += BATCH;
      let todo = entries.slice(from, from + BATCH).map((entry, k) => ({ entry, at: from + k }));
      for (let attempt = 0; todo.length; attempt++) {
        const response: Bundle = await pacer.run(cost * todo.length, () => medplum.executeBatch({ resourceType: 'Bundle', type: 'batch', entry: todo.map((t) => t.entry) }));
        const refused: typeof todo = [];
        (response.entry ?? []).forEach((e, k) => {
          if (e.response?.status?.startsWith('429') && attempt < 10) {
            refused.push(todo[k]);
          } else {
            out[todo[k].at] = e;
          }
        });
        todo = refused;
        if (todo.length) {
          await pacer.wait(resetSeconds(medplum, undefined));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return out;
}

/**
 * Creates resources in batches; every create must succeed.
 * @returns The created resources, in order.
 */
async function createAll<T extends Resource>(medplum: MedplumClient, pacer: QuotaPacer, created: string[], resources: T[]): Promise<WithId<T>[]> {
  const responses = await batchAll(
    medplum,
    pacer,
    resources.map((resource) => ({ request: { method: 'POST', url: resource.resourceType }, resource })),
    100
  );
  return responses.map((e, k) => {
    if (!e?.response?.status?.startsWith('201') || !e.resource?.id) {
      throw new Error(`a create of ${resources[k].resourceType} failed: ${e?.response?.status} ${JSON.stringify(e?.response?.outcome?.issue?.[0]?.details)}`);
    }
    created.push(`${e.resource.resourceType}/${e.resource.id}`);
    return e.resource as WithId<T>;
  });
}

/**
 * Reads resources by reference, in batches.
 * @returns The resources (undefined where a read failed).
 */
async function readAll<T extends Resource>(medplum: MedplumClient, pacer: QuotaPacer, refs: string[]): Promise<(T | undefined)[]> {
  const responses = await batchAll(
    medplum,
    pacer,
    refs.map((url) => ({ request: { method: 'GET', url } })),
    1
  );
  return responses.map((e) => (e?.response?.status?.startsWith('200') ? (e.resource as T) : undefined));
}

/**
 * Seeds the clinic.
 * @returns The threads.
 */
async function seedClinic(medplum: MedplumClient, pacer: QuotaPacer, created: string[], o: ScaleOptions): Promise<{ threads: Seeded[]; away: Set<string> }> {
  const now = Date.now();
  const long = longIndices(o.threads, o.long);
  const patients = await createAll(medplum, pacer, created, Array.from({ length: Math.max(1, Math.ceil(o.threads / 50)) }, () => ({ resourceType: 'Patient' as const })));
  const providerCount = Math.max(10, Math.ceil(o.threads / 200));
  const awayCount = Math.ceil(providerCount / 5);
  const providers = await createAll(medplum, pacer, created, Array.from({ length: providerCount }, () => ({ resourceType: 'Practitioner' as const, extension: TZ })));
  const schedules = await createAll(
    medplum,
    pacer,
    created,
    providers.map((p) => ({ resourceType: 'Schedule' as const, active: true, actor: [{ reference: `Practitioner/${p.id}` }], extension: ALL_DAY }))
  );
  // Away for the whole run: from yesterday to two days from now.
  await createAll(
    medplum,
    pacer,
    created,
    schedules.slice(0, awayCount).map((s) => ({ resourceType: 'Slot' as const, schedule: { reference: `Schedule/${s.id}` }, status: 'busy-unavailable' as const, start: iso(now - DAY), end: iso(now + 2 * DAY) }))
  );
  const away = providers.slice(0, awayCount).map((p) => `Practitioner/${p.id}`);
  const present = providers.slice(awayCount).map((p) => `Practitioner/${p.id}`);
  const counters = { away: 0, present: 0 };
  const plans = Array.from({ length: o.threads }, (_, i) => {
    const kind = kindOf(i);
    const spec = threadSpec(i, kind, long.has(i) ? o.longMessages : undefined, o.history);
    const owner = kind.startsWith('away') ? away[counters.away++ % away.length] : kind.startsWith('present') ? present[counters.present++ % present.length] : `Practitioner/${providers[i % providers.length].id}`;
    const patient = `Patient/${patients[i % patients.length].id}`;
    return { i, kind, spec, owner, patient };
  });
  const t0 = Date.now();
  const headers = await createAll(
    medplum,
    pacer,
    created,
    plans.map((p) => ({
      resourceType: 'Communication' as const,
      status: 'in-progress' as const,
      subject: { reference: p.patient },
      recipient: [{ reference: p.patient }, { reference: p.owner }],
      sent: iso(now - p.spec.messages[0].age - 60_000),
    }))
  );
  console.log(`  ${o.threads} thread headers in ${seconds(Date.now() - t0)}`);
  // Messages, `completed` as delivered messages are (the Subscription, on in-progress ones, stays quiet).
  const t1 = Date.now();
  const messages = plans.flatMap((p, k) =>
    p.spec.messages.map(
      (m): Communication => ({
        resourceType: 'Communication',
        status: 'completed',
        partOf: [{ reference: `Communication/${headers[k].id}` }],
        subject: { reference: p.patient },
        sender: { reference: m.role === 'patient' ? p.patient : p.owner },
        sent: iso(now - m.age),
        payload: [{ contentString: 'scale test' }],
      })
    )
  );
  const made = await createAll(medplum, pacer, created, messages);
  console.log(`  ${made.length} messages in ${seconds(Date.now() - t1)} (${Math.round((made.length * 1000) / (Date.now() - t1))} a second)`);
  let cursor = 0;
  const threads: Seeded[] = plans.map((p, k) => {
    const ids = made.slice(cursor, cursor + p.spec.messages.length).map((m) => m.id);
    cursor += p.spec.messages.length;
    return { index: p.i, kind: p.kind, header: `Communication/${headers[k].id}`, owner: p.owner, messageIds: ids, spec: p.spec };
  });
  const withTask = threads.filter((t) => t.kind.startsWith('away') || t.kind.startsWith('present'));
  const tasks = await createAll(
    medplum,
    pacer,
    created,
    withTask.map((t) => {
      const patientAt = t.spec.firstUnanswered ?? t.spec.messages.map((m) => m.role).lastIndexOf('patient');
      return {
        resourceType: 'Task' as const,
        status: 'in-progress' as const,
        intent: 'order' as const,
        priority: 'routine' as const,
        code: { coding: [RESPONSE_CODING] },
        focus: { reference: t.header },
        for: { reference: plans[t.index].patient },
        owner: { reference: t.owner },
        authoredOn: iso(now - t.spec.messages[patientAt].age),
      };
    })
  );
  withTask.forEach((t, k) => (t.task = `Task/${tasks[k].id}`));
  const reminded = threads.filter((t) => t.kind === 'reminded');
  await createAll(
    medplum,
    pacer,
    created,
    reminded.map((t) => ({
      resourceType: 'Task' as const,
      status: 'requested' as const,
      intent: 'order' as const,
      priority: 'urgent' as const,
      code: { coding: [REMINDER_CODING], text: 'Respond to old message' },
      identifier: [{ system: EPISODE_SYSTEM, value: expectedEpisode(t) }],
      extension: [{ url: SILENCE_STARTED_URL, valueInstant: iso(now - t.spec.messages[t.spec.firstUnanswered as number].age) }],
      focus: { reference: t.header },
      for: { reference: plans[t.index].patient },
      authoredOn: iso(now - HOUR),
      lastModified: iso(now - HOUR),
    }))
  );
  return { threads, away: new Set(away) };
}

/**
 * The episode a thread's reminder must name: `<thread id>:after:<care team's last message id | start>`.
 * @param t - The thread.
 * @returns The identifier value.
 */
function expectedEpisode(t: Seeded): string {
  return `${t.header.split('/')[1]}:after:${t.spec.lastCare === undefined ? 'start' : t.messageIds[t.spec.lastCare]}`;
}

/** Sweep correctness over the threads with a Task. */
interface SweepCheck {
  rerouted: number;
  kept: number;
  pending: number;
  wrong: number;
  halfDone: number;
  twice: number;
}

async function checkSweep(medplum: MedplumClient, pacer: QuotaPacer, threads: Seeded[]): Promise<SweepCheck> {
  const withTask = threads.filter((t) => t.task);
  const tasks = await readAll<Task>(medplum, pacer, withTask.map((t) => t.task as string));
  const headers = await readAll<Communication>(medplum, pacer, withTask.map((t) => t.header));
  const c: SweepCheck = { rerouted: 0, kept: 0, pending: 0, wrong: 0, halfDone: 0, twice: 0 };
  withTask.forEach((t, k) => {
    const task = tasks[k];
    const listed = headers[k]?.recipient?.some((r) => r.reference === t.owner);
    const notes = task?.note?.filter((n) => n.authorString === 'ooo-reroute').length ?? 0;
    if (!task) {
      c.wrong++;
    } else if (t.kind !== 'away-waiting') {
      c[task.owner?.reference === t.owner && !notes && listed ? 'kept' : 'wrong']++;
    } else if (task.owner) {
      c[task.owner.reference === t.owner ? 'pending' : 'wrong']++;
    } else if (notes > 1) {
      c.twice++;
    } else if (listed) {
      c.halfDone++;
    } else {
      c.rerouted++;
    }
  });
  return c;
}

/** Reminder correctness: per thread, how many reminders exist against how many should. */
interface ReminderCheck {
  /** Threads reminded as they should be (one reminder, the right episode). */
  right: number;
  /** Due threads without a reminder yet. */
  missing: number;
  /** Threads with more than one reminder. */
  twice: number;
  /** Threads reminded that should not be, or for another episode. */
  wrong: number;
  /** Reminders the bot made (not seeded). */
  made: number;
}

async function checkReminders(medplum: MedplumClient, threads: Seeded[], expect: Set<Kind>, seeded: Set<string>): Promise<ReminderCheck & { byThread: Map<string, WithId<Task>[]> }> {
  const byThread = new Map<string, WithId<Task>[]>();
  for await (const page of readPages(medplum, 'Task', { code: `${REMINDER_CODING.system}|${REMINDER_CODING.code}`, _count: '1000' }, { warn: (m) => console.log(`  ${m}`) })) {
    for (const e of page.entry ?? []) {
      const task = e.resource as WithId<Task>;
      const ref = task.focus?.reference ?? '';
      byThread.set(ref, [...(byThread.get(ref) ?? []), task]);
    }
  }
  const c: ReminderCheck = { right: 0, missing: 0, twice: 0, wrong: 0, made: 0 };
  for (const t of threads) {
    const mine = byThread.get(t.header) ?? [];
    c.made += mine.filter((r) => !seeded.has(`Task/${r.id}`)).length;
    const should = expect.has(t.kind) || t.kind === 'reminded';
    if (mine.length > 1) {
      c.twice++;
    } else if (!should) {
      c[mine.length ? 'wrong' : 'right']++;
    } else if (!mine.length) {
      c.missing++;
    } else {
      c[mine[0].identifier?.some((id) => id.system === EPISODE_SYSTEM && id.value === expectedEpisode(t)) ? 'right' : 'wrong']++;
    }
  }
  return { ...c, byThread };
}

/**
 * Runs the scale test.
 * @param medplum - A Project admin client (its quota raised for seeding).
 * @param pacer - Its pacer.
 * @param o - Options.
 * @returns The exit code: 0 when every check is right.
 */
export async function scaleRun(medplum: MedplumClient, pacer: QuotaPacer, o: ScaleOptions): Promise<number> {
  const created: string[] = [];
  const results: Record<string, unknown> = { threads: o.threads, long: o.long, longMessages: o.longMessages, startedAt: iso(Date.now()) };
  const counter = o.countRedis ? new RedisCounter(process.env.REDIS_PORT ?? '6379') : undefined;
  const membership = async (bot: string): Promise<string> =>
    ((await medplum.searchOne('ProjectMembership', { profile: `Bot/${bot}` }, { cache: 'no-cache' })) as WithId<Resource>).id;
  const mids = { ooo: await membership(o.bots.ooo), stale: await membership(o.bots.stale), me: medplum.getProjectMembership()?.id as string };
  const markerQuery = { identifier: `${MARKER_IDENTIFIER.system}|${MARKER_IDENTIFIER.value}` };
  const markerBefore = (await medplum.searchOne('Basic', markerQuery, { cache: 'no-cache' })) as WithId<Basic> | undefined;
  const paused = await pauseCrons(medplum, [o.bots.ooo, o.bots.stale]);
  const lastRun: Record<string, number> = {};
  let exit = 0;

  /** One `$execute`, in a fresh quota minute of its Bot, timed and counted. */
  const execute = async <T>(bot: 'ooo' | 'stale', input: unknown): Promise<{ summary?: T; error?: string; cost: Cost }> => {
    await sleep(Math.max(0, (lastRun[bot] ?? 0) + 61_000 - Date.now()));
    await counter?.start([mids[bot]]);
    const start = Date.now();
    lastRun[bot] = start;
    let summary: T | undefined;
    let error: string | undefined;
    try {
      summary = await medplum.post<T>(medplum.fhirUrl('Bot', o.bots[bot], '$execute'), input);
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    const ms = Date.now() - start;
    const counts = (await counter?.stop())?.get(mids[bot]);
    return { summary, error, cost: { ms, ...counts } };
  };

  try {
    const seedStart = Date.now();
    console.log(`seeding ${o.threads} open threads (${o.long} × ${o.longMessages} messages) ...`);
    const { threads } = await seedClinic(medplum, pacer, created, o);
    const seeded = new Set(created);
    const seedMs = Date.now() - seedStart;
    const count = (k: Kind): number => threads.filter((t) => t.kind === k).length;
    const messages = threads.reduce((n, t) => n + t.messageIds.length, 0);
    results.seed = { ms: seedMs, resources: created.length, messages, kinds: Object.fromEntries((['away-waiting', 'away-answered', 'present-waiting', 'present-answered', 'due', 'stale-old', 'reminded', 'idle'] as Kind[]).map((k) => [k, count(k)])) };
    console.log(`seeded ${created.length} resources (${messages} messages) in ${seconds(seedMs)}: ${JSON.stringify((results.seed as { kinds: unknown }).kinds)}`);

    // 1. The sweep, as its cron runs it, until it defers nothing.
    const sweeps: unknown[] = [];
    for (let run = 1; run <= o.maxSweeps; run++) {
      const r = await execute<{ rerouted: number; threadsRead: number; stoppedEarly: boolean; deferred: { quota: number; deadline: number } }>('ooo', {
        resourceType: 'Bot',
        id: o.bots.ooo,
        cronString: '* * * * *',
      });
      sweeps.push({ ...r.cost, error: r.error, summary: r.summary });
      console.log(`sweep ${run}: ${seconds(r.cost.ms)}, ${r.cost.requests ?? '?'} requests, ${r.cost.points ?? '?'} points: ${r.error ?? JSON.stringify(r.summary)}`);
      if (r.summary && !r.summary.stoppedEarly && !r.summary.deferred.quota && !r.summary.deferred.deadline) {
        break;
      }
    }
    const sweepCheck = await checkSweep(medplum, pacer, threads);
    console.log(`after the sweep: ${JSON.stringify(sweepCheck)} (of ${count('away-waiting')} away-waiting to reroute)`);
    results.sweep = { runs: sweeps, check: sweepCheck };
    if (sweepCheck.rerouted !== count('away-waiting') || sweepCheck.wrong || sweepCheck.pending || sweepCheck.halfDone || sweepCheck.twice) {
      exit = 1;
    }

    // 2. The hourly stale run alone.
    const hourly: unknown[] = [];
    for (let run = 1; run <= 5; run++) {
      const r = await execute<{ created: number; threadsRead: number; stoppedEarly: boolean }>('stale', { full: false });
      hourly.push({ ...r.cost, error: r.error, summary: r.summary });
      console.log(`hourly run ${run}: ${seconds(r.cost.ms)}, ${r.cost.requests ?? '?'} requests, ${r.cost.points ?? '?'} points: ${r.error ?? JSON.stringify(r.summary)}`);
      if (r.summary && !r.summary.stoppedEarly) {
        break;
      }
    }
    const afterHourly = await checkReminders(medplum, threads, new Set(['due']), seeded);
    const { byThread: _h, ...hourlyCheck } = afterHourly;
    console.log(`after the hourly run: ${JSON.stringify(hourlyCheck)} (due ${count('due')}, already reminded ${count('reminded')})`);
    results.hourly = { runs: hourly, check: hourlyCheck };
    if (hourlyCheck.missing || hourlyCheck.twice || hourlyCheck.wrong || hourlyCheck.made !== count('due')) {
      exit = 1;
    }

    // 3. The full reconcile, run after run, until its pass is complete.
    const reconcile: { ms: number; requests?: number; points?: number; threads?: number; complete?: boolean; error?: string }[] = [];
    const passStart = Date.now();
    for (let run = 1; run <= o.maxReconcileRuns; run++) {
      const r = await execute<{ created: number; stoppedEarly: boolean; stoppedBy?: string; reconcile?: { threads: number; complete: boolean; pausedBy?: string } }>('stale', { full: true });
      reconcile.push({ ...r.cost, threads: r.summary?.reconcile?.threads, complete: r.summary?.reconcile?.complete, error: r.error });
      console.log(`reconcile run ${run}: ${seconds(r.cost.ms)}, ${r.cost.requests ?? '?'} requests, ${r.cost.points ?? '?'} points: ${r.error ?? JSON.stringify({ created: r.summary?.created, stoppedBy: r.summary?.stoppedBy, reconcile: r.summary?.reconcile })}`);
      if (r.summary?.reconcile?.complete) {
        break;
      }
    }
    const afterFull = await checkReminders(medplum, threads, new Set(['due', 'stale-old']), seeded);
    const { byThread, ...fullCheck } = afterFull;
    const total = (k: 'ms' | 'requests' | 'points'): number | undefined => (reconcile.every((r) => r[k] !== undefined) ? reconcile.reduce((n, r) => n + (r[k] as number), 0) : undefined);
    console.log(
      `full reconcile: ${reconcile.length} run(s), ${reconcile.filter((r) => r.complete).length ? 'pass complete' : 'NOT complete'}, ${seconds(total('ms') ?? 0)} in runs (${seconds(Date.now() - passStart)} wall), ` +
        `${total('requests') ?? '?'} requests, ${total('points') ?? '?'} points; reminders: ${JSON.stringify(fullCheck)} (due ${count('due')} + silent ${count('stale-old')})`
    );
    results.reconcile = { runs: reconcile, wallMs: Date.now() - passStart, check: fullCheck };
    if (!reconcile.some((r) => r.complete) || fullCheck.missing || fullCheck.twice || fullCheck.wrong || fullCheck.made !== count('due') + count('stale-old')) {
      exit = 1;
    }

    // 4. The SLA report, as `npm run sla-report` runs it, on a client of its own (requests counted).
    await sleep(Math.max(0, (lastRun.me ?? 0) + 61_000 - Date.now()));
    const sla = await slaReport(medplum, o, counter, mids.me, seedStart, threads);
    console.log(`sla-report: exit ${sla.exit}, ${seconds(sla.ms)}, ${sla.requests} requests (Redis: ${sla.redisRequests ?? '?'}), ${sla.points ?? '?'} points, ${sla.rows} rows (expected ${sla.expected}), ${sla.wrong} wrong`);
    results.sla = sla;
    if (sla.exit || sla.rows !== sla.expected || sla.wrong) {
      exit = 1;
    }
    // The bot's reminders are the run's to delete.
    for (const list of byThread.values()) {
      created.push(...list.filter((r) => !seeded.has(`Task/${r.id}`)).map((r) => `Task/${r.id}`));
    }
    return exit;
  } finally {
    results.finishedAt = iso(Date.now());
    writeFileSync(`${o.outDir}/scale-${o.threads}.json`, JSON.stringify(results, null, 2));
    console.log(`results in ${o.outDir}/scale-${o.threads}.json`);
    if (!o.keep) {
      await cleanUp(medplum, pacer, created, markerBefore, markerQuery);
    }
    await resumeCrons(medplum, paused);
  }
}

/**
 * `npm run sla-report` in process over the run's period, on a client of its own whose requests are
 * counted, with its rows written too; then its rows checked against the seeded threads: every Task
 * of the period exported once; an answered thread's Task has the care team's reply as its first
 * reply, a waiting one none; the rerouted ones count one reroute, the others none.
 * @returns Exit code, time, requests, points, rows and what was wrong in them.
 */
async function slaReport(
  medplum: MedplumClient,
  o: ScaleOptions,
  counter: RedisCounter | undefined,
  membership: string,
  seedStart: number,
  threads: Seeded[]
): Promise<{ exit: number; ms: number; requests: number; redisRequests?: number; points?: number; rows: number; expected: number; wrong: number }> {
  let requests = 0;
  const counting: typeof fetch = (input, init) => {
    if (!String(input instanceof Request ? input.url : input).includes('/oauth2/')) {
      requests++;
    }
    return fetch(input, init);
  };
  const client = await connect(connectionEnv(), counting);
  requests = 0;
  // Every Task of the period: the seeded ones were authored in the last two weeks, the bot's now.
  const since = iso(seedStart - 14 * DAY);
  const expected =
    (await medplum.search('Task', { code: `${RESPONSE_CODING.system}|${RESPONSE_CODING.code},${REMINDER_CODING.system}|${REMINDER_CODING.code}`, 'authored-on': `ge${since}`, _total: 'accurate', _count: '0' }, { cache: 'no-cache' })).total ?? -1;
  let out = '';
  const rowsFile = `${o.outDir}/sla-rows-${o.threads}.ndjson`;
  await counter?.start([membership]);
  const start = Date.now();
  const exit = await slaExport(['--since', since, '--html', `${o.outDir}/sla-report-${o.threads}.html`, '--out', rowsFile], {
    medplum: client,
    stdout: (t) => (out += t),
    stderr: (t) => (out += t),
    progress: { phase: () => undefined, tick: () => undefined, waiting: (s) => console.log(`  sla-report waits ${s} s for its quota`), done: () => undefined },
  });
  const ms = Date.now() - start;
  const counts = (await counter?.stop())?.get(membership);
  if (exit) {
    console.log(out);
    return { exit, ms, requests, redisRequests: counts?.requests, points: counts?.points, rows: -1, expected, wrong: -1 };
  }
  const rows = readFileSync(rowsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as SlaRow);
  const byId = new Map(rows.map((r) => [`Task/${r.id}`, r]));
  let wrong = byId.size === rows.length ? 0 : rows.length - byId.size;
  for (const t of threads) {
    const row = t.task ? byId.get(t.task) : undefined;
    if (!t.task) {
      continue;
    }
    const answered = t.kind.endsWith('answered');
    const reply = answered ? t.messageIds[t.messageIds.length - 1] : null;
    if (!row || row.first_reply_message_id !== reply || row.reroute_count !== (t.kind === 'away-waiting' ? 1 : 0)) {
      wrong++;
      if (wrong <= 5) {
        console.log(`  sla row wrong for ${t.kind} thread ${t.header}: ${row ? JSON.stringify({ first_reply_message_id: row.first_reply_message_id, expected: reply, reroute_count: row.reroute_count }) : 'no row'}`);
      }
    }
  }
  return { exit, ms, requests, redisRequests: counts?.requests, points: counts?.points, rows: rows.length, expected, wrong };
}

/**
 * Removes the Bots' cronString for the run.
 * @returns What to put back.
 */
async function pauseCrons(medplum: MedplumClient, bots: string[]): Promise<{ id: string; cronString: string }[]> {
  const paused: { id: string; cronString: string }[] = [];
  for (const id of bots) {
    const bot = await medplum.readResource('Bot', id, { cache: 'no-cache' });
    if (bot.cronString) {
      await medplum.patchResource('Bot', id, [{ op: 'remove', path: '/cronString' }]);
      paused.push({ id, cronString: bot.cronString });
      console.log(`paused the cron of Bot/${id} (${bot.cronString}) for the run`);
    }
  }
  return paused;
}

async function resumeCrons(medplum: MedplumClient, paused: { id: string; cronString: string }[]): Promise<void> {
  for (const { id, cronString } of paused) {
    await medplum.patchResource('Bot', id, [{ op: 'add', path: '/cronString', value: cronString }]).then(
      () => console.log(`cron of Bot/${id} back to ${cronString}`),
      (err: unknown) => console.log(`could not put back the cron of Bot/${id} (${cronString}): ${err instanceof Error ? err.message : String(err)}`)
    );
  }
}

/** Deletes what the run made, and puts the reconcile marker back as it was. */
async function cleanUp(medplum: MedplumClient, pacer: QuotaPacer, created: string[], markerBefore: WithId<Basic> | undefined, markerQuery: Record<string, string>): Promise<void> {
  const start = Date.now();
  try {
    const responses = await batchAll(medplum, pacer, [...created].reverse().map((url) => ({ request: { method: 'DELETE', url } })), 100);
    const deleted = responses.filter((e) => e?.response?.status?.startsWith('2')).length;
    console.log(`deleted ${deleted} of ${created.length} resources the run made (and its bot made) in ${seconds(Date.now() - start)}`);
  } catch (err) {
    console.log(`clean-up failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  const marker = (await medplum.searchOne('Basic', markerQuery, { cache: 'no-cache' })) as WithId<Basic> | undefined;
  if (marker && !markerBefore) {
    await medplum.deleteResource('Basic', marker.id);
    console.log(`deleted the reconcile marker the run made (Basic/${marker.id})`);
  } else if (marker && markerBefore) {
    await medplum.updateResource({ ...marker, extension: markerBefore.extension });
    console.log(`reconcile marker Basic/${marker.id} put back as it was`);
  }
}

