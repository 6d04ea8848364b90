// The replay: a period of the clinic's history, hour by hour, through the decision code the bots run.
// Pure: it decides from facts read beforehand and changes only its own in-memory world.
//
// - Each message, at its time: the real-time bot's event path (planThread for a patient's message,
//   planLifecycle for a patient's or, with the lifecycle on, a care-team message).
// - At each scheduled run (when the bots ran, from their run history; else every exact hour): the
//   sweep (planThread for every thread waiting on the care team, planLifecycle for every thread with
//   work), and the reminders bot (planStaleRun over every thread with a waiting patient or an open
//   reminder).
// - Tasks made by people or other integrations enter the world when they were made and leave when
//   they were closed; threads close when their header last changed, if it is no longer in progress.
import type { WithId } from '@medplum/core';
import type { BundleEntry, Communication, Task } from '@medplum/fhirtypes';
import type { OwnerFacts } from '../lib/availability';
import { planThread } from '../lib/reroute-plan';
import type { RouteFacts } from '../lib/reroute-plan';
import { isResponseTask, planLifecycle } from '../lib/response-lifecycle';
import type { LifecycleDecision } from '../lib/response-lifecycle';
import { threadKind } from '../lib/response-rules';
import type { Priority } from '../lib/response-rules';
import { addToTimeline, isLater, messagePoint } from '../lib/thread';
import type { MessagePoint, Timeline } from '../lib/thread';
import { isReminder, planStaleRun } from '../stale/plan';
import type { OpenTaskFacts, StaleFacts, ThreadFacts } from '../stale/plan';
import { taskKey } from './keys';
import type { RunInstants } from './runs';
import type { BotSettings } from './settings';
import { World } from './world';

export const HOUR_MS = 3_600_000;

/** One thread of the period, as read. */
export interface PeriodThread {
  header: WithId<Communication>;
  /** Its messages (not entered in error) as points, any order: the header's own when it has a sender is added by the replay. */
  points: MessagePoint[];
  /** When it stopped being in progress (its header's last change), if it did. */
  closedAt?: number;
}

/** A Task the bots did not make (a person's, another integration's), as it was when made. */
export interface OutsideTask {
  task: WithId<Task>;
  at: number;
  /** When it was closed, and how, if it is closed now. */
  closed?: { at: number; status: Task['status'] };
}

/** What a replay decides from. */
export interface PeriodFacts {
  /** The replay starts here (the warm-up before `since`), epoch ms. */
  from: number;
  /** Figures count from here. */
  since: number;
  /** The end, exclusive. */
  until: number;
  threads: PeriodThread[];
  outsideTasks: OutsideTask[];
  /** Owners' and covers' Schedules and absences, as read now (undefined: not read). */
  owners: Map<string, OwnerFacts>;
  /**
   * When the scheduled runs actually ran (the bots' run history): the replay runs the sweep and the
   * reminders at these instants. Without it, both run at every exact hour.
   */
  runs?: RunInstants;
}

/** Something a bot did in the replay (or, read from the Project, in fact). */
export type BotEvent =
  | { kind: 'reminder-created'; at: number; thread: string; key: string; priority: Priority }
  | { kind: 'escalated'; at: number; thread: string; key: string; from: Priority; to: Priority }
  | { kind: 'reminder-closed' | 'reminder-cancelled'; at: number; thread: string; key: string }
  | { kind: 'response-opened'; at: number; thread: string; key: string; priority: Priority; route: string; owner?: string }
  | { kind: 'response-completed' | 'response-cancelled'; at: number; thread: string; key: string }
  | { kind: 'rerouted'; at: number; thread: string; key: string; priority: Priority; from: string; to?: string; reason: string };

/** A replay's outcome. */
export interface ReplayResult {
  events: BotEvent[];
  world: World;
}

interface ThreadState {
  ref: string;
  header: MessagePoint;
  timeline: Timeline;
  patientTimes: Map<string, number>;
  /** People's messages so far, oldest first (the lifecycle's conversation). */
  points: MessagePoint[];
  closed: boolean;
}

type Happening = { at: number; order: number; run: () => void };

/** One instant the scheduled bots run at: the sweep, the reminders, or both (the sweep first). */
export interface RunTick {
  at: number;
  sweep: boolean;
  remind: boolean;
}

/**
 * When the replay runs the scheduled bots: at the instants they ran (`facts.runs`), else at every
 * exact hour from the replay's start to its end.
 * @param facts - The period (from, until, runs).
 * @returns The instants in [from, until), ascending.
 */
export function runTicks(facts: Pick<PeriodFacts, 'from' | 'until' | 'runs'>): RunTick[] {
  if (!facts.runs) {
    const ticks: RunTick[] = [];
    for (let hour = Math.ceil(facts.from / HOUR_MS) * HOUR_MS; hour < facts.until; hour += HOUR_MS) {
      ticks.push({ at: hour, sweep: true, remind: true });
    }
    return ticks;
  }
  const at = new Map<number, RunTick>();
  const tick = (t: number): RunTick => at.get(t) ?? (at.set(t, { at: t, sweep: false, remind: false }).get(t) as RunTick);
  facts.runs.sweep.filter((t) => t >= facts.from && t < facts.until).forEach((t) => (tick(t).sweep = true));
  facts.runs.reminders.filter((t) => t >= facts.from && t < facts.until).forEach((t) => (tick(t).remind = true));
  return [...at.values()].sort((a, b) => a.at - b.at);
}

/**
 * Replays a period with one set of settings.
 * @param facts - What was read.
 * @param settings - The bots' configurations.
 * @returns What the bots would have done, and the world they would have left.
 */
export function replay(facts: PeriodFacts, settings: BotSettings): ReplayResult {
  const world = new World();
  const events: BotEvent[] = [];
  const { lifecycle } = settings.reroute;
  const threads = new Map<string, ThreadState>();
  const happenings: Happening[] = [];
  const route = (now: number): RouteFacts => ({
    now,
    owner: (ref) => facts.owners.get(ref),
    coverage: settings.reroute.coverage,
    serviceTypes: settings.reroute.serviceTypes,
    movedThisRun: new Set(),
  });

  for (const t of facts.threads) {
    const ref = `Communication/${t.header.id}`;
    world.addHeader({ ...t.header, status: 'in-progress' });
    const header = messagePoint(t.header);
    const state: ThreadState = { ref, header, timeline: { ignored: 0 }, patientTimes: new Map(), points: [], closed: false };
    threads.set(ref, state);
    const own = t.header.sender ? [header] : [];
    for (const point of [...own, ...t.points]) {
      const silent = point.time < facts.from || point.ref === ref;
      happenings.push({ at: point.time, order: 1, run: () => (silent ? add(state, point) : onMessage(state, point)) });
    }
    if (t.closedAt !== undefined) {
      happenings.push({ at: t.closedAt, order: 2, run: () => close(state, t.header.status) });
    }
  }
  for (const o of facts.outsideTasks) {
    happenings.push({ at: o.at, order: 0, run: () => world.addTask(o.task, o.at) });
    if (o.closed) {
      const closed = o.closed;
      happenings.push({ at: closed.at, order: 0, run: () => world.changeTask(o.task.id, { status: closed.status }, closed.at) });
    }
  }
  happenings.sort((a, b) => a.at - b.at || a.order - b.order);

  let next = 0;
  for (const tick of runTicks(facts)) {
    for (; next < happenings.length && happenings[next].at <= tick.at; next++) {
      happenings[next].run();
    }
    if (tick.sweep) {
      sweep(tick.at);
    }
    if (tick.remind) {
      remind(tick.at);
    }
  }
  // Messages after the last run: the event path still saw them.
  for (; next < happenings.length && happenings[next].at < facts.until; next++) {
    happenings[next].run();
  }
  return { events, world };

  function add(state: ThreadState, point: MessagePoint): void {
    addToTimeline(state.timeline, point);
    if (point.role === 'patient') {
      state.patientTimes.set(point.ref, point.time);
    }
    if (point.role === 'patient' || point.role === 'care-team') {
      // Happenings come in time order; equal times are ordered by reference, as everywhere.
      let i = state.points.length;
      while (i > 0 && isLater(state.points[i - 1], point)) {
        i--;
      }
      state.points.splice(i, 0, point);
    }
  }

  function onMessage(state: ThreadState, point: MessagePoint): void {
    add(state, point);
    if (state.closed || (point.role !== 'patient' && !(point.role === 'care-team' && lifecycle.enabled))) {
      return;
    }
    const tasks = world.openTasks(state.ref);
    const header = world.header(state.ref);
    const routeNow = route(point.time);
    const plan = point.role === 'patient' ? planThread({ thread: state.ref, header, tasks, trigger: point.ref, triggerTime: point.time, waitingOnCareTeam: true }, routeNow) : undefined;
    const open = tasks.some((t) => isResponseTask(t, lifecycle.code));
    const lifecycleWork = lifecycle.enabled && (point.role === 'patient' ? !open : open);
    const lifecyclePlan = lifecycleWork ? planLifecycle({ thread: state.ref, header, tasks, conversation: { points: [...state.points] } }, routeNow, lifecycle, { open: point.role === 'patient' }) : undefined;
    if (plan) {
      applyReroutes(plan, point.time);
    }
    if (lifecyclePlan) {
      applyLifecycle(lifecyclePlan.decisions, lifecyclePlan.entries, point.time);
    }
  }

  function close(state: ThreadState, status: Communication['status']): void {
    state.closed = true;
    const header = world.header(state.ref);
    if (header) {
      world.addHeader({ ...header, status });
    }
  }

  function sweep(now: number): void {
    for (const state of threads.values()) {
      const hasTasks = world.hasOpenTasks(state.ref);
      const last = state.points.at(-1);
      const waiting = !state.closed && last?.role === 'patient';
      // The sweep's other work (completing a Task whose reply event was lost) never arises here:
      // no event is lost in the replay, so only waiting and closed threads are decided again.
      if (!(waiting && (hasTasks || lifecycle.enabled)) && !(state.closed && hasTasks)) {
        continue;
      }
      const tasks = world.openTasks(state.ref);
      const header = world.header(state.ref);
      const routeNow = route(now);
      const lastPatient = [...state.points].reverse().find((p) => p.role === 'patient');
      const plan = waiting && hasTasks ? planThread({ thread: state.ref, header, tasks, trigger: lastPatient?.ref, triggerTime: lastPatient?.time, waitingOnCareTeam: true }, routeNow) : undefined;
      const lifecyclePlan = lifecycle.enabled ? planLifecycle({ thread: state.ref, header, tasks, conversation: { points: [...state.points] } }, routeNow, lifecycle) : undefined;
      if (plan) {
        applyReroutes(plan, now);
      }
      if (lifecyclePlan) {
        applyLifecycle(lifecyclePlan.decisions, lifecyclePlan.entries, now);
      }
    }
  }

  function remind(now: number): void {
    const facts: StaleFacts = { threads: new Map(), openTasks: [], orphanReminders: [], ignoredMessages: 0 };
    for (const state of threads.values()) {
      const hasTasks = world.hasOpenTasks(state.ref);
      const waiting = state.timeline.last?.role === 'patient';
      if (!hasTasks && (state.closed || !waiting)) {
        continue;
      }
      const tasks: OpenTaskFacts[] = hasTasks ? world.openTasks(state.ref).map((task) => ({ task, thread: state.ref, isReminder: isReminder(task) })) : [];
      if (state.closed) {
        facts.orphanReminders.push(...tasks.filter((t) => t.isReminder));
        continue;
      }
      const header = world.header(state.ref) as WithId<Communication>;
      const thread: ThreadFacts = { ref: state.ref, subject: header.subject?.reference, kind: threadKind(header), header: state.header, timeline: state.timeline, patientTimes: state.patientTimes };
      facts.threads.set(state.ref, thread);
      facts.openTasks.push(...tasks);
    }
    const plan = planStaleRun(facts, settings.stale, new Date(now).toISOString());
    for (const write of plan.writes) {
      const before = write.entry.request?.method === 'PATCH' ? world.task((write.entry.request.url as string).slice(5)) : undefined;
      const applied = world.apply(write.entry, now);
      if (!applied.ok) {
        continue;
      }
      const task = applied.resource as WithId<Task>;
      const key = taskKey(task);
      if (write.kind === 'create') {
        events.push({ kind: 'reminder-created', at: now, thread: write.thread, key, priority: (task.priority ?? 'routine') as Priority });
      } else if (write.kind === 'escalate') {
        events.push({ kind: 'escalated', at: now, thread: write.thread, key, from: (before?.priority ?? 'routine') as Priority, to: task.priority as Priority });
      } else {
        events.push({ kind: write.kind === 'close' ? 'reminder-closed' : 'reminder-cancelled', at: now, thread: write.thread, key });
      }
    }
  }

  function applyReroutes(plan: ReturnType<typeof planThread>, now: number): void {
    const moved = new Map(plan.decisions.filter((d) => d.action !== 'kept').map((d) => [d.task, d]));
    for (const entry of plan.entries) {
      const url = entry.request?.url as string;
      const before = url.startsWith('Task/') ? world.task(url.slice(5)) : undefined;
      const applied = world.apply(entry, now);
      const decision = moved.get(url);
      if (!applied.ok || !decision || !before) {
        continue;
      }
      events.push({
        kind: 'rerouted',
        at: now,
        thread: plan.thread,
        key: taskKey(before),
        priority: (before.priority ?? 'routine') as Priority,
        from: decision.owner as string,
        to: decision.cover,
        reason: decision.reason,
      });
    }
  }

  function applyLifecycle(decisions: LifecycleDecision[], entries: BundleEntry[], now: number): void {
    decisions.forEach((decision, i) => {
      const applied = world.apply(entries[i], now);
      if (!applied.ok) {
        return;
      }
      const task = applied.resource as WithId<Task>;
      const thread = task.focus?.reference as string;
      if (decision.action === 'open') {
        events.push({ kind: 'response-opened', at: now, thread, key: taskKey(task), priority: (task.priority ?? 'routine') as Priority, route: decision.reason, owner: decision.target });
      } else {
        events.push({ kind: decision.action === 'complete' ? 'response-completed' : 'response-cancelled', at: now, thread, key: taskKey(task) });
      }
    });
  }
}
