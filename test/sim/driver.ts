// The simulation's scheduler: one agenda in simulated time, holding the people's script, the
// Subscription's deliveries of each new message to the real-time bot, the sweep every 15 minutes and
// the reminders bot every hour. Each entry is a step; after every step the oracle checks every
// invariant. Faults are drawn from their own stream as the steps happen (see faults.ts).
import type { Communication, Slot, Task } from '@medplum/fhirtypes';
import { buildBots, BundleRunner, removeBuild } from './bundles';
import type { BotName, SourcePatch } from './bundles';
import { generateClinic, headerResource, RESPONSE_CODE, seedClinic } from './clinic';
import type { Clinic } from './clinic';
import { SimClock } from './clock';
import { FaultPlan } from './faults';
import type { FaultCounts } from './faults';
import { costFacts } from './oracle/cost-facts';
import { isClean, Oracle } from './oracle/invariants';
import type { StepInfo, Violation } from './oracle/invariants';
import { ClinicModel } from './oracle/model';
import { ClinicRecord, episodeAt, latestPatientAt } from './oracle/record';
import type { MessageRecord } from './oracle/record';
import { changes, snapshot } from './oracle/snapshot';
import type { Snapshot } from './oracle/snapshot';
import { Rng } from './prng';
import { BotRunner } from './runs';
import type { RunKind, RunRecord } from './runs';
import { writeScript } from './script';
import type { PersonAction, Planned, TargetedAction } from './script';
import { createSimServer } from './store';
import type { SimServer } from './store';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** A request's round trip, in simulated time. */
const ROUND_TRIP_MS = 20;

export interface SimOptions {
  seed: number;
  days: number;
  providers?: number;
  /** First simulated instant (default: the Thursday before the US daylight-saving change of 2026, or a month before it). */
  start?: number;
  /** Source patches (a planted bug); none: src/ as it is. */
  patches?: SourcePatch[];
  /** Build the bots from this git commit's src/ (default: the working tree). */
  ref?: string;
  /** Bundles already built (skips the build). */
  bundles?: Record<BotName, string>;
  /** Stop after this step. */
  until?: number;
  /** Stop at the first violation not in this list of `invariant|code`. */
  stopOnViolation?: (v: Violation) => boolean;
  /** Called after each step with what it found. */
  onStep?: (step: StepInfo, found: Violation[]) => void;
}

export interface Figures {
  seed: number;
  days: number;
  providers: number;
  zones: string[];
  businessHours: boolean;
  threads: number;
  messages: number;
  steps: number;
  runs: Record<RunKind, number>;
  runsFailed: number;
  faults: FaultCounts;
  personActs: number;
  checks: number;
  violations: number;
  pointsSpent: Record<BotName, number>;
  tasks: { response: number; reminders: number };
}

export interface SimResult {
  figures: Figures;
  violations: Violation[];
  /** Per thread: what happened to it, step by step (for a failure's short trace). */
  traces: Map<string, string[]>;
  clinic: Clinic;
}

/** 2026-10-29 (a Thursday) 04:00 UTC: a short run crosses the US change of Sunday 1 November. */
export const SHORT_START = Date.UTC(2026, 9, 29, 4);
/** 2026-10-19 (a Monday) 04:00 UTC: a month crosses it too. */
export const MONTH_START = Date.UTC(2026, 9, 19, 4);

type Item =
  | { kind: 'script'; at: number; seq: number; planned: Planned }
  | { kind: 'deliver'; at: number; seq: number; message: string; copies: number }
  | { kind: 'sweep'; at: number; seq: number }
  | { kind: 'stale'; at: number; seq: number };

/**
 * Runs one simulation.
 * @param options - Seed, days and the rest.
 * @returns Figures, violations and traces.
 */
export async function simulate(options: SimOptions): Promise<SimResult> {
  const start = options.start ?? (options.days <= 7 ? SHORT_START : MONTH_START);
  const root = new Rng(options.seed);
  const clinic = generateClinic(root.fork('clinic'), { seed: options.seed, start, days: options.days, providers: options.providers });
  const script = writeScript(clinic, root.fork('script'));
  const paths = options.bundles ?? (await buildBots(`sim-${options.seed}`, options.patches, options.ref));
  const clock = new SimClock(Math.min(start, script.items[0]?.at ?? start) - HOUR);
  clock.install();
  try {
    return await new Simulation(clinic, script.items, clock, paths, root, options).run();
  } finally {
    clock.uninstall();
    if (!options.bundles) {
      removeBuild(paths);
    }
  }
}

class Simulation {
  private readonly sim: SimServer;
  private readonly runner: BotRunner;
  private readonly record = new ClinicRecord();
  private readonly oracle: Oracle;
  private readonly model: ClinicModel;
  private readonly faults: FaultPlan;
  private readonly people: Rng;
  private readonly agenda = new Agenda();
  private readonly botOn: Record<BotName, boolean> = { 'ooo-reroute': true, 'stale-thread-reminders': true };
  /** Deliveries that run at the same moment as a given sweep. */
  private readonly withSweep = new Map<number, string[]>();
  private readonly traces = new Map<string, string[]>();
  private snap: Snapshot = { tasks: new Map(), headers: new Map() };
  private steps = 0;
  private handoffs = 0;
  private readonly runCounts: Record<RunKind, number> = { event: 0, sweep: 0, stale: 0 };
  /** When the last clean sweep started: the sweep's look-back reaches back there (invariant 7's bound). */
  private lastCleanSweep?: number;
  private runsFailed = 0;
  private personActs = 0;
  private messages = 0;

  constructor(
    private readonly clinic: Clinic,
    items: Planned[],
    private readonly clock: SimClock,
    paths: Record<BotName, string>,
    root: Rng,
    private readonly options: SimOptions
  ) {
    this.sim = createSimServer();
    this.sim.server.beforeRequest = () => clock.advanceBy(ROUND_TRIP_MS);
    const date = clock.dateClass();
    this.runner = new BotRunner(
      this.sim,
      clock,
      { 'ooo-reroute': new BundleRunner(paths['ooo-reroute'], date), 'stale-thread-reminders': new BundleRunner(paths['stale-thread-reminders'], date) },
      clinic.secrets
    );
    this.model = new ClinicModel(clinic);
    this.oracle = new Oracle(this.model, this.record);
    this.faults = new FaultPlan(root.fork('faults'), this.sim);
    this.people = root.fork('people');
    for (const planned of items) {
      this.agenda.push({ kind: 'script', at: planned.at, seq: 0, planned });
    }
    const firstTick = Math.ceil(clinic.start / (15 * MINUTE)) * 15 * MINUTE;
    this.agenda.push({ kind: 'sweep', at: firstTick, seq: 0 });
    this.agenda.push({ kind: 'stale', at: Math.ceil(clinic.start / HOUR) * HOUR, seq: 0 });
  }

  async run(): Promise<SimResult> {
    await seedClinic(this.sim, this.clinic, new Rng(this.clinic.seed).fork('appointments'));
    for (let item = this.agenda.pop(); item && item.at < this.clinic.end; item = this.agenda.pop()) {
      this.clock.advanceTo(item.at);
      const history = item.at < this.clinic.start;
      const runs = await this.perform(item);
      const next = snapshot(this.sim, this.record.threads.keys(), this.snap);
      this.trace(item, runs.map((r) => r.run), next);
      this.snap = next;
      if (history) {
        this.oracle.accept(next);
        continue;
      }
      const step: StepInfo = { n: ++this.steps, at: this.clock.now(), label: this.label(item, runs.map((r) => r.run)), runs };
      const found = this.oracle.afterStep(step, next);
      this.options.onStep?.(step, found);
      if ((this.options.until !== undefined && this.steps >= this.options.until) || found.some((v) => this.options.stopOnViolation?.(v))) {
        break;
      }
    }
    return { figures: this.figures(), violations: this.oracle.violations, traces: this.traces, clinic: this.clinic };
  }

  // ---- steps -------------------------------------------------------------------------------------

  private async perform(item: Item): Promise<{ run: RunRecord; facts: ReturnType<typeof costFacts> }[]> {
    switch (item.kind) {
      case 'script':
        await this.act(item.planned);
        return [];
      case 'deliver': {
        if (!this.botOn['ooo-reroute']) {
          return [];
        }
        const input = this.sim.communication(item.message.split('/')[1]);
        return Promise.all(Array.from({ length: item.copies }, () => this.botRun('ooo-reroute', 'event', input, item.message)));
      }
      case 'sweep': {
        this.agenda.push({ kind: 'sweep', at: item.at + 15 * MINUTE, seq: 0 });
        const together = this.withSweep.get(item.at) ?? [];
        this.withSweep.delete(item.at);
        if (!this.botOn['ooo-reroute']) {
          return [];
        }
        const cron = { resourceType: 'Bot', id: 'ooo-reroute', name: 'ooo-reroute' };
        return Promise.all([
          this.botRun('ooo-reroute', 'sweep', cron, 'cron'),
          ...together.map((m) => this.botRun('ooo-reroute', 'event', this.sim.communication(m.split('/')[1]), `${m} (with the sweep)`)),
        ]);
      }
      case 'stale': {
        this.agenda.push({ kind: 'stale', at: item.at + HOUR, seq: 0 });
        if (!this.botOn['stale-thread-reminders']) {
          return [];
        }
        const cron = { resourceType: 'Bot', id: 'stale-thread-reminders', name: 'stale-thread-reminders' };
        const overlap = this.faults.overlappingStaleRun();
        return Promise.all([
          this.botRun('stale-thread-reminders', 'stale', cron, 'cron'),
          ...(overlap ? [this.botRun('stale-thread-reminders', 'stale', { full: false }, '$execute overlapping the cron run')] : []),
        ]);
      }
    }
  }

  private async botRun(bot: BotName, kind: RunKind, input: unknown, trigger: string): Promise<{ run: RunRecord; facts: ReturnType<typeof costFacts> }> {
    const now = this.clock.now();
    const facts = costFacts(kind, this.record, this.snap, now, kind === 'event' ? trigger.split(' ')[0] : undefined, this.model, this.lastCleanSweep);
    const fault = this.faults.writeFailure();
    const run = await this.runner.run(bot, kind, input, trigger);
    if (kind === 'sweep' && isClean(run)) {
      this.lastCleanSweep = Math.max(this.lastCleanSweep ?? run.start, run.start);
    }
    fault?.();
    this.runCounts[kind]++;
    if (run.outcome === 'failed') {
      this.runsFailed++;
    }
    return { run, facts };
  }

  private async act(planned: Planned): Promise<void> {
    const { server } = this.sim;
    const now = this.clock.now();
    switch (planned.kind) {
      case 'thread': {
        const t = planned.thread;
        await server.seed<Communication>(
          headerResource({ id: t.ref.split('/')[1], subject: t.subject, recipients: [t.subject, ...t.recipients], priority: t.priority, category: t.category, sender: t.headerSender ? t.writer : undefined, at: now })
        );
        this.record.addThread({ ref: t.ref, subject: t.subject, category: t.category, priority: t.priority, recipients: t.recipients, createdAt: now, messages: [] });
        if (t.headerSender) {
          this.record.addMessage({ ref: t.ref, thread: t.ref, role: 'patient', sender: t.writer, time: now, stored: now, hasSent: true });
        }
        return;
      }
      case 'message': {
        const sent = planned.noSent ? undefined : now - (planned.sentEarlierBy ?? 0);
        const id = planned.ref.split('/')[1];
        const thread = this.record.threads.get(planned.thread);
        await server.seed<Communication>({
          resourceType: 'Communication',
          id,
          meta: { lastUpdated: new Date(now).toISOString() },
          status: 'in-progress',
          partOf: [{ reference: planned.thread }],
          subject: thread ? { reference: thread.subject } : undefined,
          sender: { reference: planned.sender },
          ...(sent !== undefined ? { sent: new Date(sent).toISOString() } : {}),
          payload: [{ contentString: 'PHI-MESSAGE-TEXT' }],
        });
        const record: MessageRecord = { ref: planned.ref, thread: planned.thread, role: planned.role, sender: planned.sender, time: sent ?? now, stored: now, hasSent: sent !== undefined };
        this.record.addMessage(record);
        this.messages++;
        this.faults.counts.late += planned.sentEarlierBy ? 1 : 0;
        this.faults.counts.withoutSent += planned.noSent ? 1 : 0;
        if (now >= this.clinic.start) {
          this.deliver(planned.ref, now);
        }
        return;
      }
      case 'close': {
        const header = this.sim.communication(planned.thread.split('/')[1]);
        if (header && header.status === 'in-progress') {
          await server.update<Communication>({ ...header, status: 'completed' });
          this.record.close(planned.thread, now);
        }
        return;
      }
      case 'absence': {
        const provider = this.clinic.providers.find((p) => p.ref === planned.provider);
        await server.seed<Slot>({
          resourceType: 'Slot',
          id: planned.slot.split('/')[1],
          meta: { lastUpdated: new Date(now).toISOString() },
          schedule: { reference: provider?.schedule ?? '' },
          status: 'busy-unavailable',
          start: new Date(planned.start).toISOString(),
          end: new Date(planned.end).toISOString(),
          comment: 'PHI-ABSENCE',
        });
        return;
      }
      case 'person':
        await this.person(planned.action);
        return;
      case 'person-on':
        await this.personOn(planned.action, planned.thread);
        return;
      case 'drain':
        if (planned.midRun) {
          this.runner.drainMidRun(planned.bot, planned.target, 1, () => this.faults.drain(planned.bot, planned.leave));
        } else {
          this.faults.drain(planned.bot, planned.leave);
        }
        return;
      case 'switch':
        this.botOn[planned.bot] = planned.on;
        this.faults.counts.botOffDays += planned.on ? 0 : 1;
        return;
    }
  }

  /** The Subscription delivers a new message to the real-time bot: late, lost, twice, or with the sweep. */
  private deliver(message: string, now: number): void {
    const plan = this.faults.delivery(now);
    if (plan.kind === 'lost') {
      return;
    }
    if (plan.kind === 'with-sweep') {
      const tick = Math.ceil((now + 1) / (15 * MINUTE)) * 15 * MINUTE;
      this.withSweep.set(tick, [...(this.withSweep.get(tick) ?? []), message]);
      return;
    }
    this.agenda.push({ kind: 'deliver', at: plan.at, seq: 0, message, copies: plan.kind === 'concurrent-twice' ? 2 : 1 });
    if (plan.kind === 'twice') {
      this.agenda.push({ kind: 'deliver', at: plan.again, seq: 0, message, copies: 1 });
    }
  }

  // ---- people acting on the bots' work ----------------------------------------------------------

  private async person(planned: PersonAction): Promise<void> {
    const now = this.clock.now();
    const rng = this.people;
    const waitingTasks = [...this.snap.tasks.values()].filter((t) => {
      const thread = t.thread ? this.record.threads.get(t.thread) : undefined;
      return t.kind === 'response' && t.open && thread && this.record.isOpen(thread.ref, now) && episodeAt(thread, now);
    });
    const rerouted = waitingTasks.filter((t) => t.rerouteFrom && t.rerouteFrom !== t.owner);
    const reminders = [...this.snap.tasks.values()].filter((t) => t.kind === 'reminder' && t.open && t.thread && this.record.isOpen(t.thread, now));
    const taken = [...this.snap.headers.values()].flatMap((h) => {
      const thread = this.record.threads.get(h.ref);
      return thread && h.status === 'in-progress' ? thread.recipients.filter((r) => !h.recipients.includes(r)).map((r) => [thread, r] as const) : [];
    });
    // A person does what the moment offers: the planned act when it has something to act on, else another.
    const possible: Record<PersonAction, boolean> = { reassign: waitingTasks.length > 0, handoff: waitingTasks.length > 0, dismiss: reminders.length > 0, readd: taken.length > 0 };
    const action = possible[planned] ? planned : (['dismiss', 'reassign', 'readd', 'handoff'] as const).find((a) => possible[a]);
    if (!action) {
      return;
    }
    const { server } = this.sim;
    if (action === 'reassign' || action === 'handoff') {
      // Most often the Task the bot just rerouted: the README's "Undo a reroute".
      const view = action === 'reassign' && rerouted.length && rng.chance(0.7) ? rng.pick(rerouted) : rng.pick(waitingTasks);
      const thread = this.record.threads.get(view.thread as string);
      const task = this.sim.task(view.ref.split('/')[1]) as Task;
      if (!thread || !task) {
        return;
      }
      const latest = latestPatientAt(thread, now);
      const episode = episodeAt(thread, now);
      const others = this.clinic.providers.filter((p) => p.ref !== task.owner?.reference);
      if (action === 'reassign') {
        // Give a rerouted Task back to the owner the bot took it from, or to someone else.
        const from = view.rerouteFrom;
        const who = from && from !== task.owner?.reference && rng.chance(0.8) ? from : rng.pick(others).ref;
        await server.update<Task>({ ...task, owner: { reference: who } });
        this.personDid({ kind: 'reassign', thread: thread.ref, at: now, task: view.ref, who, latestPatient: latest?.ref, givenBack: who === from });
        return;
      }
      const at = others.filter((p) => this.model.available(p.ref, now, now));
      const who = (at.length && rng.chance(0.8) ? rng.pick(at) : rng.pick(others)).ref;
      await server.update<Task>({ ...task, status: 'cancelled' });
      const id = `h${++this.handoffs}`;
      await server.seed<Task>({
        resourceType: 'Task',
        id,
        meta: { lastUpdated: new Date(now).toISOString() },
        status: 'requested',
        intent: 'order',
        priority: task.priority,
        code: { coding: [RESPONSE_CODE] },
        focus: { reference: thread.ref },
        for: { reference: thread.subject },
        owner: { reference: who },
        authoredOn: new Date(now).toISOString(),
        note: [{ text: 'PHI-HANDOFF: please take this one' }],
      });
      this.personDid({ kind: 'handoff', thread: thread.ref, at: now, task: `Task/${id}`, who, latestPatient: latest?.ref, opening: episode?.opening.ref });
      return;
    }
    if (action === 'dismiss') {
      const view = rng.pick(reminders);
      const task = this.sim.task(view.ref.split('/')[1]) as Task;
      const thread = this.record.threads.get(view.thread as string);
      await server.update<Task>({ ...task, status: 'cancelled' });
      this.personDid({ kind: 'dismiss', thread: view.thread as string, at: now, task: view.ref, opening: thread ? episodeAt(thread, now)?.opening.ref : undefined });
      return;
    }
    // Re-add a provider the bot took off a thread.
    const [thread, who] = rng.pick(taken);
    const header = this.sim.communication(thread.ref.split('/')[1]) as Communication;
    await server.update<Communication>({ ...header, recipient: [...(header.recipient ?? []), { reference: who }] });
    this.personDid({ kind: 'readd', thread: thread.ref, at: now, who, latestPatient: latestPatientAt(thread, now)?.ref });
  }


  /** A scenario's person: gives this thread's rerouted Task back, or dismisses its reminder. */
  private async personOn(action: TargetedAction, ref: string): Promise<void> {
    const now = this.clock.now();
    const thread = this.record.threads.get(ref);
    if (!thread || !this.record.isOpen(ref, now)) {
      return;
    }
    const mine = [...this.snap.tasks.values()].filter((t) => t.thread === ref && t.open);
    if (action === 'give-back') {
      const view = mine.find((t) => t.kind === 'response' && t.rerouteFrom && t.rerouteFrom !== t.owner);
      const task = view && this.sim.task(view.ref.split('/')[1]);
      if (view?.rerouteFrom && task) {
        await this.sim.server.update<Task>({ ...task, owner: { reference: view.rerouteFrom } });
        this.personDid({ kind: 'reassign', thread: ref, at: now, task: view.ref, who: view.rerouteFrom, latestPatient: latestPatientAt(thread, now)?.ref, givenBack: true });
      }
      return;
    }
    const view = mine.find((t) => t.kind === 'reminder');
    const task = view && this.sim.task(view.ref.split('/')[1]);
    if (view && task) {
      await this.sim.server.update<Task>({ ...task, status: 'cancelled' });
      this.personDid({ kind: 'dismiss', thread: ref, at: now, task: view.ref, opening: episodeAt(thread, now)?.opening.ref });
    }
  }

  private personDid(act: Parameters<Oracle['personActed']>[0]): void {
    this.personActs++;
    this.oracle.personActed(act);
    this.note(act.thread, `person ${act.kind}${act.task ? ` ${act.task}` : ''}${act.who ? ` → ${act.who}` : ''}`);
  }

  // ---- traces and figures ----------------------------------------------------------------------

  private note(thread: string, text: string): void {
    const lines = this.traces.get(thread) ?? [];
    lines.push(`${this.clock.iso().replace('.000Z', 'Z')} [step ${this.steps + 1}] ${text}`);
    this.traces.set(thread, lines);
  }

  private trace(item: Item, runs: RunRecord[], next: Snapshot): void {
    if (item.kind === 'script') {
      const p = item.planned;
      if (p.kind === 'thread') {
        this.note(p.thread.ref, `opened by ${p.thread.writer}${p.thread.headerSender ? ' (the header is its first message)' : ''}, ${p.thread.priority}, ${p.thread.category}, recipients ${p.thread.recipients.join(' ')}`);
      } else if (p.kind === 'message') {
        this.note(p.thread, `${p.ref} from ${p.sender} (${p.role})${p.noSent ? ', no sent' : p.sentEarlierBy ? `, sent ${Math.round(p.sentEarlierBy / MINUTE)} min before it was stored` : ''}`);
      } else if (p.kind === 'close') {
        this.note(p.thread, 'closed by a person');
      }
    }
    if (!runs.length) {
      return;
    }
    const ch = changes(this.snap, next);
    const who = runs.map((r) => `run ${r.id} ${r.kind}${r.kind === 'event' ? ` ${r.trigger}` : ''}${r.outcome === 'failed' ? ' (failed)' : isClean(r) ? '' : ' (not clean)'}`).join(' + ');
    for (const [old, now] of ch.tasks) {
      if (!now.thread) {
        continue;
      }
      const what = !old
        ? `created ${now.kind} ${now.ref} ${now.status} ${now.priority ?? ''} owner ${now.owner ?? 'pool'}`
        : `${now.kind} ${now.ref}${old.owner !== now.owner ? ` owner ${old.owner ?? 'pool'}→${now.owner ?? 'pool'}` : ''}${old.status !== now.status ? ` ${old.status}→${now.status}` : ''}${old.priority !== now.priority ? ` ${old.priority}→${now.priority}` : ''}`;
      this.note(now.thread, `${who}: ${what}`);
    }
    for (const [old, now] of ch.headers) {
      this.note(now.ref, `${who}: recipients ${old.recipients.join(' ')} → ${now.recipients.join(' ')}`);
    }
  }

  private label(item: Item, runs: RunRecord[]): string {
    const ids = runs.map((r) => r.id).join(',');
    switch (item.kind) {
      case 'script':
        return `${item.planned.kind}${'thread' in item.planned && typeof item.planned.thread === 'string' ? ` ${item.planned.thread}` : ''}`;
      case 'deliver':
        return `event ${item.message}${item.copies > 1 ? ' ×2 at once' : ''} (run ${ids || 'none: bot off'})`;
      default:
        return `${item.kind} (runs ${ids || 'none: bot off'})`;
    }
  }

  private figures(): Figures {
    const points = (bot: BotName): number => this.sim.server.points((r) => r.caller === bot);
    const tasks = [...this.snap.tasks.values()];
    return {
      seed: this.clinic.seed,
      days: Math.round((this.clinic.end - this.clinic.start) / (24 * HOUR)),
      providers: this.clinic.providers.length,
      zones: this.clinic.zones,
      businessHours: !!this.clinic.businessHours,
      threads: [...this.record.threads.values()].filter((t) => t.createdAt >= this.clinic.start).length,
      messages: this.messages,
      steps: this.steps,
      runs: this.runCounts,
      runsFailed: this.runsFailed,
      faults: this.faults.counts,
      personActs: this.personActs,
      checks: this.oracle.checks,
      violations: this.oracle.violations.length,
      pointsSpent: { 'ooo-reroute': points('ooo-reroute'), 'stale-thread-reminders': points('stale-thread-reminders') },
      tasks: { response: tasks.filter((t) => t.kind === 'response').length, reminders: tasks.filter((t) => t.kind === 'reminder').length },
    };
  }
}

/** A priority queue by time, then by insertion order (deterministic). */
class Agenda {
  private heap: Item[] = [];
  private seq = 0;

  push(item: Item): void {
    item.seq = ++this.seq;
    this.heap.push(item);
    let i = this.heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(this.heap[i], this.heap[parent])) {
        break;
      }
      [this.heap[i], this.heap[parent]] = [this.heap[parent], this.heap[i]];
      i = parent;
    }
  }

  pop(): Item | undefined {
    const top = this.heap[0];
    const last = this.heap.pop();
    if (this.heap.length && last) {
      this.heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.heap.length && before(this.heap[l], this.heap[best])) {
          best = l;
        }
        if (r < this.heap.length && before(this.heap[r], this.heap[best])) {
          best = r;
        }
        if (best === i) {
          break;
        }
        [this.heap[i], this.heap[best]] = [this.heap[best], this.heap[i]];
        i = best;
      }
    }
    return top;
  }
}

function before(a: Item, b: Item): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
