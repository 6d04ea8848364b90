// The seven invariants a clinic would state, checked after every step of the simulation by an oracle
// that imports nothing from src/: it judges from its own record of who wrote what and when, its own
// model of each provider's hours and absences, and what it finds in the store.
//
// "Settled" checks wait for the bots' chance to act: a clean run (no failure, nothing deferred, no
// conflict) that started after the fact was stored. A run that is not clean is invariant 6's
// business: its work must be done within the next two runs that have quota.
import { costBound } from '../cost-bounds';
import type { CostFacts } from '../cost-bounds';
import type { RunRecord } from '../runs';
import { level } from './model';
import type { ClinicModel } from './model';
import { episodeAt, latestPatientAt } from './record';
import type { ClinicRecord, MessageRecord, PersonAct, ThreadRecord } from './record';
import { changes } from './snapshot';
import type { HeaderView, Snapshot, TaskView } from './snapshot';

const MINUTE = 60_000;
const PERSON_TYPES = ['Practitioner', 'PractitionerRole', 'CareTeam'];

export interface Violation {
  invariant: number;
  code: string;
  step: number;
  at: number;
  thread?: string;
  detail: string;
  /** How many times the same check failed for the same entity (or, for cost, the same kind of run). */
  occurrences: number;
  /** The entity the check is about (a Task, a recipient, a run kind...). */
  key: string;
}

/** What a step was: the runs it made (none for a person's or the world's step). */
export interface StepInfo {
  n: number;
  at: number;
  label: string;
  runs: { run: RunRecord; facts: CostFacts }[];
}

interface Chain {
  /** Runs with quota seen since the deferral. */
  left: number;
  since: number;
}

export class Oracle {
  readonly violations: Violation[] = [];
  /** Checks evaluated (one per invariant, entity and step). */
  checks = 0;
  private readonly seen = new Map<string, Violation>();
  private previous: Snapshot = { tasks: new Map(), headers: new Map() };
  private lastCleanSweep?: RunRecord;
  private lastCleanStale?: RunRecord;
  /** The waiting episode each bot reminder was made for (its first message), by reminder. */
  private readonly reminderEpisode = new Map<string, MessageRecord | undefined>();
  /** The episode a person's hand-off Task answers. */
  private readonly handoffOpening = new Map<string, string>();
  private readonly chains: Record<'sweep' | 'stale', Chain | undefined> = { sweep: undefined, stale: undefined };

  constructor(
    private readonly model: ClinicModel,
    private readonly record: ClinicRecord
  ) {}

  /** Records a person's act (the driver calls it as the person acts). */
  personActed(act: PersonAct): void {
    this.record.acts.push(act);
    if (act.kind === 'handoff' && act.task && act.opening) {
      this.handoffOpening.set(act.task, act.opening);
    }
  }

  /** Takes the state a step left, with no check (history stored before the bots run). */
  accept(snap: Snapshot): void {
    this.previous = snap;
  }

  /**
   * Checks every invariant after a step.
   * @param step - The step.
   * @param snap - The store after it.
   * @returns The violations found at this step (new ones only).
   */
  afterStep(step: StepInfo, snap: Snapshot): Violation[] {
    const before = this.violations.length;
    const ch = changes(this.previous, snap);
    if (step.runs.length) {
      for (const [old, now] of ch.tasks) {
        this.botTaskChange(step, old, now);
      }
      for (const [old, now] of ch.headers) {
        this.botHeaderChange(step, old, now);
      }
      for (const { run, facts } of step.runs) {
        this.runChecks(step, run, facts);
      }
      this.escalations(step, snap);
    }
    this.stateChecks(step, snap);
    this.previous = snap;
    return this.violations.slice(before);
  }

  private report(step: StepInfo, invariant: number, code: string, thread: string | undefined, detail: string, key = thread ?? ''): void {
    const id = `${invariant}|${code}|${key}`;
    const earlier = this.seen.get(id);
    if (earlier) {
      earlier.occurrences++;
      return;
    }
    const violation: Violation = { invariant, code, step: step.n, at: step.at, thread, detail, occurrences: 1, key };
    this.seen.set(id, violation);
    this.violations.push(violation);
  }

  private thread(ref: string | undefined): ThreadRecord | undefined {
    return ref ? this.record.threads.get(ref) : undefined;
  }

  // ---- changes a bot made -------------------------------------------------------------------

  private botTaskChange(step: StepInfo, old: TaskView | undefined, now: TaskView): void {
    const thread = this.thread(now.thread);
    if (!thread) {
      return;
    }
    const m = now.updated;
    // 2 and 3: a Task leaving its owner.
    if (old?.owner && old.owner !== now.owner && this.model.isProvider(old.owner)) {
      this.checks += 2;
      const latest = latestPatientAt(thread, m);
      const absent = this.model.absent(old.owner, m, m);
      if (!absent && (!latest || this.model.available(old.owner, latest.time, m))) {
        this.report(step, 2, 'task-left-on-duty-owner', thread.ref,
          `${now.ref} moved from ${old.owner} to ${now.owner ?? 'the pool'} at ${iso(m)}; the owner was available when the patient last wrote (${latest ? `${latest.ref} at ${iso(latest.time)}` : 'no patient message'}) and no absence covers the move`, now.ref);
      }
      const person = this.record.acts.find((a) => (a.kind === 'reassign' || a.kind === 'handoff') && a.task === now.ref && a.at <= m && latest && chosenAfter(a, latest));
      if (person) {
        // A Task given back to the owner a reroute took it from is the README's "Undo a reroute".
        this.report(step, 3, person.givenBack ? 'given-back-task-moved-again' : 'task-moved-after-person', thread.ref,
          `${now.ref}: a person gave it to ${person.who} at ${iso(person.at)}; the bot moved it to ${now.owner ?? 'the pool'} at ${iso(m)} for the same patient message ${latest?.ref}`, now.ref);
      }
    }
    if (now.kind === 'reminder' && !old) {
      this.reminderCreated(step, thread, now);
    }
    if (now.kind === 'reminder' && old?.open && !now.open) {
      this.checks++;
      if (now.status === 'completed') {
        const opening = this.reminderEpisode.get(now.ref);
        const reply = opening && this.replyAfter(thread, opening.time, m);
        if (opening && !reply) {
          this.report(step, 4, 'reminder-closed-without-reply', thread.ref, `${now.ref} closed at ${iso(m)} with no care-team person's reply sent after ${opening.ref}`, now.ref);
        }
      } else if (this.record.isOpen(thread.ref, m)) {
        this.report(step, 4, 'reminder-cancelled-on-open-thread', thread.ref, `${now.ref} ${now.status} at ${iso(m)} while the thread is open`, now.ref);
      }
    }
    if (now.kind === 'response' && old?.open && !now.open) {
      this.checks++;
      if (now.status === 'completed') {
        const output = now.outputs.at(-1);
        const reply = output ? this.record.messages.get(output) : undefined;
        const opening = this.openingOf(now);
        const okSender = reply && reply.role === 'care-team' && PERSON_TYPES.includes(reply.sender.split('/')[0]);
        if (!reply || !okSender || reply.stored > m || (opening !== undefined && reply.time <= opening)) {
          this.report(step, 5, 'completed-without-reply', thread.ref,
            `${now.ref} completed at ${iso(m)} with output ${output ?? 'none'}${reply ? ` (${reply.role} ${reply.sender}, sent ${iso(reply.time)})` : ''}; the episode opened at ${opening === undefined ? '?' : iso(opening)}`, now.ref);
        } else if (opening !== undefined) {
          const first = this.replyAfter(thread, opening, m);
          if (first && first.ref !== reply.ref && first.time < reply.time) {
            this.report(step, 5, 'completed-with-a-later-reply', thread.ref, `${now.ref} completed at ${iso(m)} with ${reply.ref} (sent ${iso(reply.time)}); the first reply after its question was ${first.ref} (sent ${iso(first.time)})`, now.ref);
          }
        }
      } else if (this.record.isOpen(thread.ref, m)) {
        this.report(step, 5, 'cancelled-on-open-thread', thread.ref, `${now.ref} ${now.status} at ${iso(m)} while the thread is open`, now.ref);
      }
    }
  }

  private reminderCreated(step: StepInfo, thread: ThreadRecord, task: TaskView): void {
    const m = task.authoredOn || task.updated;
    const episode = episodeAt(thread, m);
    this.reminderEpisode.set(task.ref, episode?.opening);
    this.checks += 3;
    if (!episode) {
      this.report(step, 4, 'reminder-without-waiting-patient', thread.ref, `${task.ref} created at ${iso(m)}: the patient side is not waiting (the last person to write was the care team, or only automated senders wrote)`, task.ref);
      return;
    }
    const crosses = this.model.crossing(thread, episode.opening.time);
    if (m < crosses - MINUTE) {
      this.report(step, 4, 'reminder-too-early', thread.ref, `${task.ref} created at ${iso(m)}; the silence from ${episode.opening.ref} (${iso(episode.opening.time)}) crosses its threshold at ${iso(crosses)}`, task.ref);
    }
    const start = this.model.rule(thread).reminderPriority;
    if (task.priority !== start) {
      this.report(step, 4, 'reminder-wrong-priority', thread.ref, `${task.ref} created ${task.priority}; the thread's rule starts reminders at ${start}`, task.ref);
    }
    const dismissed = this.record.acts.find((a) => a.kind === 'dismiss' && a.thread === thread.ref && a.opening === episode.opening.ref && a.at <= m);
    if (dismissed) {
      this.report(step, 3, 'reminder-recreated-after-dismissal', thread.ref,
        `${task.ref} created at ${iso(m)}; a person dismissed ${dismissed.task} at ${iso(dismissed.at)} for the same waiting episode (from ${episode.opening.ref})`, task.ref);
    }
  }

  private botHeaderChange(step: StepInfo, old: HeaderView, now: HeaderView): void {
    const thread = this.thread(now.ref);
    if (!thread) {
      return;
    }
    const m = now.updated;
    for (const removed of old.recipients.filter((r) => !now.recipients.includes(r) && this.model.isProvider(r))) {
      this.checks += 2;
      if (!this.model.absent(removed, m, m)) {
        this.report(step, 2, 'recipient-removed-without-absence', thread.ref, `${removed} taken off the thread at ${iso(m)} with no absence covering that moment`, `${thread.ref}|${removed}`);
      }
      const latest = latestPatientAt(thread, m);
      const readd = this.record.acts.find((a) => a.kind === 'readd' && a.thread === thread.ref && a.who === removed && a.at <= m && !!latest && chosenAfter(a, latest));
      if (readd) {
        this.report(step, 3, 'recipient-removed-after-readd', thread.ref, `${removed} re-added by a person at ${iso(readd.at)}, removed again at ${iso(m)} for the same patient message ${latest?.ref}`, `${thread.ref}|${removed}`);
      }
    }
  }

  /** 4: escalation, one step per run at most, never ahead of the rule's periods, and never behind after a clean run. */
  private escalations(step: StepInfo, snap: Snapshot): void {
    const stale = step.runs.filter(({ run }) => run.kind === 'stale');
    if (!stale.length) {
      return;
    }
    const cleanRun = stale.find(({ run }) => isClean(run))?.run;
    const runs = stale.length;
    for (const task of snap.tasks.values()) {
      if (task.kind !== 'reminder' || !task.open) {
        continue;
      }
      const thread = this.thread(task.thread);
      const old = this.previous.tasks.get(task.ref);
      if (!thread || !old) {
        continue;
      }
      this.checks += 3;
      const rise = level(task.priority) - level(old.priority);
      if (rise > runs) {
        this.report(step, 4, 'escalated-more-than-one-step', thread.ref, `${task.ref} went from ${old.priority} to ${task.priority} in one run`, task.ref);
      }
      const due = this.model.dueLevel(thread, task.authoredOn, step.at);
      if (level(task.priority) > due) {
        this.report(step, 4, 'escalated-too-early', thread.ref, `${task.ref} is ${task.priority} at ${iso(step.at)}, created ${iso(task.authoredOn)}: more steps than escalation periods`, task.ref);
      }
      if (cleanRun && level(task.priority) < Math.min(this.model.dueLevel(thread, task.authoredOn, cleanRun.start), level(old.priority) + 1)) {
        this.report(step, 4, 'escalation-missed', thread.ref, `${task.ref} still ${task.priority} after the run of ${iso(cleanRun.start)}; an escalation period has passed since it was created (${iso(task.authoredOn)})`, task.ref);
      }
    }
  }

  // ---- runs ------------------------------------------------------------------------------------

  private runChecks(step: StepInfo, run: RunRecord, facts: CostFacts): void {
    this.checks += 4;
    const where = `run ${run.id} (${run.kind}, ${run.trigger})`;
    if (run.outcome === 'failed' && !run.faultHit) {
      this.report(step, 6, 'run-failed', undefined, `${where} failed: ${run.error}`, String(run.id));
    }
    for (const t of run.throttledKnowingly) {
      this.report(step, 6, 'throttled', undefined, `${where}: ${t}`, `${run.id}|${t}`);
    }
    this.deferrals(step, run);
    // 7: cost.
    const attempts = Number((run.summary?.conflicts as number | undefined) ?? 0) > 0 || run.lines.some((l) => l.includes('reading again')) ? 2 : 1;
    const bound = costBound(facts, attempts);
    const reads = run.requests.filter((r) => r.method === 'GET').reduce((s, r) => s + r.points, 0);
    const writes = run.requests.filter((r) => r.method !== 'GET').reduce((s, r) => s + r.points, 0);
    if (reads > bound.reads || writes > bound.writes) {
      this.report(step, 7, 'cost-over-bound', undefined,
        `${where} spent ${reads} points reading and ${writes} writing; the published bound for what it had to look at is ${bound.reads} and ${bound.writes} (${JSON.stringify(facts)}); requests: ${run.requests.map((r) => `${r.key} ${r.points}`).join(', ')}`,
        // One report per kind of run and sequence of reads: each way of going over the bound once.
        `${run.kind}|${run.requests.filter((r) => r.method === 'GET').map((r) => r.key).join(',')}`);
    }
    if (run.kind === 'sweep' && isClean(run)) {
      this.lastCleanSweep = run;
    }
    if (run.kind === 'stale' && isClean(run)) {
      this.lastCleanStale = run;
    }
  }

  /** 6: work a run deferred is done within the next two runs (of the kind that finishes it) that have quota. */
  private deferrals(step: StepInfo, run: RunRecord): void {
    const chainKind = run.kind === 'stale' ? 'stale' : 'sweep';
    const chain = this.chains[chainKind];
    const hadQuota = run.quotaAtStart >= 10_000 && !run.drainedDuring && !run.faultHit;
    if (chain && run.kind !== 'event' && hadQuota) {
      if (!defers(run)) {
        this.chains[chainKind] = undefined;
      } else if (--chain.left <= 0) {
        this.report(step, 6, 'deferral-not-finished', undefined, `work deferred by run ${chain.since} is still deferred after two ${chainKind} runs with quota (the last: run ${run.id}, ${JSON.stringify(run.summary?.deferred ?? {})})`, String(chain.since));
        this.chains[chainKind] = undefined;
      }
      return;
    }
    if (!chain && defers(run)) {
      this.chains[chainKind] = { left: 2, since: run.id };
    }
  }

  // ---- the state, after every step ---------------------------------------------------------

  private stateChecks(step: StepInfo, snap: Snapshot): void {
    const byThread = new Map<string, TaskView[]>();
    for (const task of snap.tasks.values()) {
      if (task.open && task.thread) {
        byThread.set(task.thread, [...(byThread.get(task.thread) ?? []), task]);
      }
    }
    const now = step.at;
    const sweep = this.lastCleanSweep;
    const stale = this.lastCleanStale;
    for (const thread of this.record.threads.values()) {
      if (thread.createdAt > now) {
        continue;
      }
      const open = byThread.get(thread.ref) ?? [];
      const responses = open.filter((t) => t.kind === 'response');
      const reminders = open.filter((t) => t.kind === 'reminder');
      this.checks += 2;
      if (reminders.length > 1) {
        this.report(step, 4, 'two-open-reminders', thread.ref, `${reminders.map((t) => t.ref).join(', ')} open at once`);
      }
      if (responses.length > 1) {
        this.report(step, 5, 'two-open-response-tasks', thread.ref, `${responses.map((t) => t.ref).join(', ')} open at once`);
      }
      if (!this.record.isOpen(thread.ref, now)) {
        this.checks++;
        if (sweep && thread.closedAt !== undefined && sweep.start >= thread.closedAt && responses.length) {
          this.report(step, 5, 'open-on-closed-thread', thread.ref, `${responses[0].ref} still open after the sweep of ${iso(sweep.start)}; the thread was closed at ${iso(thread.closedAt)}`);
        }
        continue;
      }
      if (sweep) {
        for (const task of responses) {
          this.answeredCheck(step, thread, task, sweep);
        }
      }
      const episode = episodeAt(thread, now);
      if (!episode) {
        continue;
      }
      if (sweep && sweep.start >= episode.latest.stored && now >= episode.opening.stored + 20 * MINUTE && episode.opening.stored >= this.model.clinic.start) {
        this.checks += 2;
        if (!responses.length) {
          this.report(step, 5, 'episode-without-task', thread.ref, `the patient has waited since ${episode.opening.ref} (${iso(episode.opening.time)}, stored ${iso(episode.opening.stored)}) and the sweep of ${iso(sweep.start)} left no open response Task`, `${thread.ref}|${episode.opening.ref}`);
        }
        for (const task of responses) {
          this.ownerCheck(step, thread, task, episode.latest, sweep.start);
        }
      }
      if (stale) {
        this.reminderChecks(step, thread, reminders, stale);
      }
    }
  }

  /** 5: a response Task whose question a care-team person answered is completed by the next clean sweep. */
  private answeredCheck(step: StepInfo, thread: ThreadRecord, task: TaskView, sweep: RunRecord): void {
    // The bots' Tasks ask their opening message; a person's hand-off asks from when it was made.
    const asked = task.input ? this.openingOf(task) : task.authoredOn;
    if (!asked) {
      return;
    }
    this.checks++;
    const reply = this.replyAfter(thread, asked, sweep.start - 1);
    if (reply && task.updated <= sweep.start) {
      this.report(step, 5, 'open-after-reply', thread.ref,
        `${task.ref} still open after the sweep of ${iso(sweep.start)}; ${reply.ref} (${reply.sender}, sent ${iso(reply.time)}, stored ${iso(reply.stored)}) answered its question (${iso(asked)})`, task.ref);
    }
  }

  /** 1: the owner of a waiting thread's response Task is available, or was when the patient wrote and no absence covers now. */
  private ownerCheck(step: StepInfo, thread: ThreadRecord, task: TaskView, latest: MessageRecord, sweepStart: number): void {
    const owner = task.owner;
    if (!owner || !this.model.isProvider(owner)) {
      return;
    }
    const person = this.record.acts.find((a) => (a.kind === 'reassign' || a.kind === 'handoff') && a.task === task.ref && chosenAfter(a, latest));
    if (person) {
      return; // a person's choice for this message: invariant 3 protects it
    }
    const decided = Math.max(sweepStart, task.updated);
    const ok = this.model.available(owner, decided, decided) || (this.model.available(owner, latest.time, decided) && !this.model.absent(owner, decided, decided));
    if (!ok) {
      this.report(step, 1, 'owner-unavailable', thread.ref,
        `${task.ref} stays with ${owner}, unavailable at ${iso(decided)} (${this.model.absent(owner, decided, decided) ? 'absent' : 'off shift'}) and not available when the patient last wrote (${latest.ref} at ${iso(latest.time)})`, `${thread.ref}|${latest.ref}|${owner}`);
    }
  }

  /** 4: a due reminder exists; a reminder answered by the care team is closed. */
  private reminderChecks(step: StepInfo, thread: ThreadRecord, reminders: TaskView[], run: RunRecord): void {
    const episode = episodeAt(thread, run.start);
    const current = episodeAt(thread, step.at);
    if (episode && current?.opening === episode.opening && episode.opening.stored >= this.model.clinic.start) {
      this.checks++;
      const crosses = this.model.crossing(thread, episode.opening.time);
      const due = Math.max(crosses, episode.opening.stored) + MINUTE;
      const dismissed = this.record.acts.some((a) => a.kind === 'dismiss' && a.thread === thread.ref && a.opening === episode.opening.ref);
      if (run.start >= due && !reminders.length && !dismissed) {
        this.report(step, 4, 'reminder-missing', thread.ref,
          `no open reminder after the run of ${iso(run.start)}: the patient has waited since ${episode.opening.ref} (${iso(episode.opening.time)}), over the rule's ${this.model.rule(thread).afterHours} h since ${iso(crosses)}${episode.latest !== episode.opening ? `; latest follow-up ${episode.latest.ref} at ${iso(episode.latest.time)}` : ''}`,
          `${thread.ref}|${episode.opening.ref}`);
      }
    }
    for (const reminder of reminders) {
      const opening = this.reminderEpisode.get(reminder.ref);
      if (!opening) {
        continue;
      }
      this.checks++;
      const reply = this.replyAfter(thread, opening.time, run.start - 1);
      if (reply && reply.stored < run.start) {
        this.report(step, 4, 'reminder-not-closed', thread.ref,
          `${reminder.ref} still open after the run of ${iso(run.start)}; ${reply.ref} (${reply.sender}, sent ${iso(reply.time)}, stored ${iso(reply.stored)}) answered after the episode's first message ${opening.ref} (${iso(opening.time)})`, reminder.ref);
      }
    }
  }

  /** A care-team person's message sent after an instant and stored by another. */
  private replyAfter(thread: ThreadRecord, after: number, knownAt: number): MessageRecord | undefined {
    return thread.messages.find((m) => m.role === 'care-team' && PERSON_TYPES.includes(m.sender.split('/')[0]) && m.time > after && m.stored <= knownAt);
  }

  /** When a response Task's episode opened: its input message, or the episode a person handed off. */
  private openingOf(task: TaskView): number | undefined {
    const ref = task.input ?? this.handoffOpening.get(task.ref);
    return ref ? this.record.messages.get(ref)?.time : undefined;
  }
}

/**
 * Whether a person's act was made for a patient message: after the patient wrote it, by the message's
 * time (sent, else stored: the project's one definition of time, so a message stored late but sent
 * before the person acted counts as one they answered).
 * @param act - The act.
 * @param message - The patient's latest message.
 * @returns True when the act came after it.
 */
/** A person's act is a choice for a message made once it could be seen: after its time, and after it was stored. */
function chosenAfter(act: PersonAct, message: MessageRecord): boolean {
  return act.at >= Math.max(message.time, message.stored);
}

/** A run that did all its work: no failure, nothing deferred, no conflict. */
export function isClean(run: RunRecord): boolean {
  const s = run.summary ?? {};
  return run.outcome === 'ok' && !defers(run) && !Number(s.conflicts ?? 0) && !Number(s.failed ?? 0);
}

function defers(run: RunRecord): boolean {
  const s = run.summary ?? {};
  const deferred = (s.deferred ?? {}) as { quota?: number; deadline?: number };
  return !!s.stoppedEarly || (deferred.quota ?? 0) + (deferred.deadline ?? 0) > 0 || s.outcome === 'deferred';
}

function iso(instant: number): string {
  return new Date(instant).toISOString().replace('.000Z', 'Z');
}
