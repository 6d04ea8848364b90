// The response-Task lifecycle (opt-in, RESPONSE_TASKS=on), decided for one thread. Pure: it
// decides from what was read and returns writes; it never reads or writes.
//
// - Open: the patient side wrote last and the thread has no open response Task still unanswered (one
//   answered is completed first, below): one Task, routed to
//   the care-team person who last wrote if available, else the first available person among the
//   header's recipients, else an available cover of theirs, else the pool. Created conditionally on
//   an identifier naming the episode, so redelivery, concurrent messages and the sweep make one. Its
//   input is the first unanswered patient message (the episode's opening).
// - Complete: a care-team message answers the Task (below): it is completed, its output that answer,
//   whoever wrote last. A reply no event saw (lost, or the bot off) followed by a new patient message
//   completes the answered Task and opens the new episode's own, in one plan: each waiting episode
//   has one Task, and a thread at most one open. No answer: the Task stays open (never "the last
//   message").
// - Cancel: the thread is closed (header not in progress) or deleted.
//
// What answers a response Task (`answerOf`): the first care-team message after its question.
// - The bot's Task (it carries the episode identifier or its route note) was opened because its input message was
//   waiting: the question is that message, and a reply ordered after it answers, even one stamped
//   before the Task was made and stored after (a late-synced reply).
// - A Task a person made (any other Task with the response code) asks the question its input names
//   when that is a patient message still unanswered when the Task was authored. Otherwise (no such
//   input, or the care team had already written after it by then) it is a hand-off ("I'll ask Dr B"):
//   the question is the Task itself, and only a care-team message sent after its authoredOn (else
//   meta.lastUpdated) answers, never the message that handed it off. Since a late-synced reply
//   stamped before such a Task cannot be told from the hand-off message, it does not count.
// - The opening message not in the conversation read (entered in error, or older than a bounded
//   read): the Task's authoring time is the bound, so a reply older than the Task never completes it
//   unless the opening message proves the reply came after the question. Readers that bound their
//   read take messages back to `openedAt`. A Task with no time and no opening found is not completed.
// "After" an opening message is its order in the conversation (time = sent else lastUpdated, then
// reference, as everywhere); after an instant is a later time.
//
// Task shape as in Medplum's message response tracking: focus = the thread header, for = the
// patient, owner or performerType, requested -> completed (or cancelled), output -> the reply.
import { getReferenceString } from '@medplum/core';
import type { WithId } from '@medplum/core';
import type { Annotation, BundleEntry, Coding, Communication, Extension, Task } from '@medplum/fhirtypes';
import { availabilityAt, describeAvailability } from './availability';
import { guardedPatchEntry } from './fhir';
import type { PatchOperation } from './fhir';
import { availableCover, isReroutableOwner, OOO_BOT_NAME } from './reroute-plan';
import type { RouteFacts } from './reroute-plan';
import { currentEpisode } from './thread';
import type { Conversation, MessagePoint } from './thread';

/** Identifier system of a response Task's episode: value `<thread id>:after:<care-team message id | start>`. */
export const RESPONSE_EPISODE_SYSTEM = 'urn:medplum-messaging-bots:response-episode';
/** Extension on the bot's lifecycle notes: where the Task went and why, as codes. */
export const RESPONSE_ROUTE_URL = 'urn:medplum-messaging-bots:response-route';
/** The default code of response Tasks (the one the SLA export counts). */
export const DEFAULT_RESPONSE_CODE: Coding = { system: 'https://medplum.com/task-codes', code: 'respond-to-message' };

/** Settings of the lifecycle. */
export interface LifecycleConfig {
  enabled: boolean;
  /** The response Tasks' code (RESPONSE_TASK_CODE). */
  code: Coding;
  /** `performerType` of a Task sent to the pool (RESPONSE_POOL), when set. */
  pool?: Coding;
}

/** One thread, as read for the lifecycle. */
export interface LifecycleThread {
  thread: string;
  /** The header; undefined when it was deleted. */
  header?: WithId<Communication>;
  /** Open Tasks focused on the thread (response Tasks among them are recognised by their code). */
  tasks: WithId<Task>[];
  conversation: Conversation;
}

/** What the lifecycle did to a thread. */
export interface LifecycleDecision {
  action: 'open' | 'complete' | 'cancel';
  /** The Task changed (for open: the episode identifier's value). */
  task: string;
  /** Open: the owner chosen, if any; complete: the reply. */
  target?: string;
  /** A code-like reason, safe to log. */
  reason: string;
}

/** The lifecycle's writes for one thread. */
export interface LifecyclePlan {
  thread: string;
  decisions: LifecycleDecision[];
  entries: BundleEntry[];
}

/**
 * Reads a `system|code` setting.
 * @param value - The secret's value.
 * @returns The Coding, or what is wrong.
 */
export function parseCoding(value: string): { coding: Coding } | { error: string } {
  const [system, code, extra] = value.split('|');
  if (extra !== undefined || !system?.trim() || !code?.trim()) {
    return { error: 'must be system|code, like https://medplum.com/task-codes|respond-to-message' };
  }
  return { coding: { system: system.trim(), code: code.trim() } };
}

/**
 * Checks a `RESPONSE_TASKS` value.
 * @param value - The secret's value.
 * @returns Whether the lifecycle is on, or what is wrong.
 */
export function parseOnOff(value: string): { on: boolean } | { error: string } {
  const v = value.trim().toLowerCase();
  return v === 'on' || v === 'off' ? { on: v === 'on' } : { error: 'must be on or off' };
}

/**
 * Whether a Task is a response Task: it carries the configured code.
 * @param task - A Task.
 * @param code - The response code.
 * @returns True when it does.
 */
export function isResponseTask(task: Task, code: Coding): boolean {
  return !!task.code?.coding?.some((c) => c.system === code.system && c.code === code.code);
}

/**
 * The people whose availability routing a new Task needs: the care-team person who last wrote,
 * then the header's recipients, in order, people only.
 * @param thread - The thread.
 * @returns Candidate owner references, most fitting first.
 */
export function routeCandidates(thread: Pick<LifecycleThread, 'header' | 'conversation'>): string[] {
  const lastWriter = lastCareTeamWriter(thread.conversation);
  const recipients = (thread.header?.recipient ?? []).map((r) => r.reference).filter(isReroutableOwner);
  return [...new Set([lastWriter, ...recipients].filter(isReroutableOwner))];
}

/** Where a new Task goes, and why, in codes and in words. */
export interface Route {
  owner?: string;
  /** last-writer, recipient, cover, pool. */
  reason: 'last-writer' | 'recipient' | 'cover' | 'pool';
  text: string;
}

/**
 * Routes a new response Task: the first available candidate, else an available cover of a
 * candidate, else the pool.
 * @param candidates - From `routeCandidates`.
 * @param lastWriter - The care-team person who last wrote, if any (first among the candidates).
 * @param route - Facts of the owners and covers.
 * @returns The route.
 */
export function chooseOwner(candidates: string[], lastWriter: string | undefined, route: RouteFacts): Route {
  const name = (ref: string): string => route.owner(ref)?.name ?? 'a care-team member';
  const lastWriterFirst = (c: string, i: number): 'last-writer' | 'recipient' => (i === 0 && lastWriter === c ? 'last-writer' : 'recipient');
  const why = (ref: string): string => describeAvailability(availabilityAt(route.owner(ref), route.now, route.serviceTypes));
  const available = candidates.findIndex((c) => availabilityAt(route.owner(c), route.now, route.serviceTypes).state === 'available');
  if (available >= 0) {
    const owner = candidates[available];
    const reason = lastWriterFirst(owner, available);
    const passed = candidates.slice(0, available).map((c) => `${name(c)} is ${why(c)}`);
    const text =
      reason === 'last-writer'
        ? `Assigned to ${name(owner)}, who last wrote in this thread and is ${why(owner)}.`
        : `Assigned to ${name(owner)}, on this thread and ${why(owner)}${passed.length ? `; ${passed.join('; ')}` : ''}.`;
    return { owner, reason, text };
  }
  for (const candidate of candidates) {
    const cover = availableCover(candidate, route);
    if (cover) {
      return { owner: cover, reason: 'cover', text: `Assigned to ${name(cover)}, covering for ${name(candidate)} (${why(candidate)}).` };
    }
  }
  const nobody = candidates.length
    ? `no one on this thread is available (${candidates.map((c) => `${name(c)} is ${why(c)}`).join('; ')})`
    : 'no care-team member has written in or been added to this thread yet';
  return { reason: 'pool', text: `Sent to the team pool: ${nobody}.` };
}

/**
 * Whether the lifecycle would open a Task on this thread: in progress, the patient side wrote last,
 * and no response Task is open but those a care-team message answered (the lifecycle completes them
 * in the same plan).
 * @param thread - The thread.
 * @param config - The lifecycle settings.
 * @returns True when a Task would be opened (its owner must then be routed).
 */
export function opensTask(thread: LifecycleThread, config: LifecycleConfig): boolean {
  const episode = currentEpisode(thread.conversation);
  return (
    config.enabled &&
    thread.header?.status === 'in-progress' &&
    episode.last?.role === 'patient' &&
    !!episode.opening &&
    !thread.tasks.some((t) => isResponseTask(t, config.code) && !answerOf(t, thread.conversation))
  );
}

/**
 * The open response Tasks the lifecycle completes on a thread in progress: those a care-team message
 * answered. The reroute leaves them alone (it would move a Task whose question was answered).
 * @param thread - The thread.
 * @param config - The lifecycle settings.
 * @returns The Tasks, each with its answer.
 */
export function answeredTasks(thread: LifecycleThread, config: LifecycleConfig): { task: WithId<Task>; reply: MessagePoint }[] {
  if (!config.enabled || thread.header?.status !== 'in-progress') {
    return [];
  }
  return thread.tasks.flatMap((task) => {
    const reply = isResponseTask(task, config.code) ? answerOf(task, thread.conversation) : undefined;
    return reply ? [{ task, reply }] : [];
  });
}

/**
 * The covers routing may fall back on: read only when no candidate is available.
 * @param candidates - From `routeCandidates`.
 * @param route - Facts read so far.
 * @returns Cover references to read.
 */
export function coversToRead(candidates: string[], route: RouteFacts): string[] {
  if (candidates.some((c) => availabilityAt(route.owner(c), route.now, route.serviceTypes).state === 'available')) {
    return [];
  }
  return candidates.map((c) => route.coverage[c]).filter(isReroutableOwner);
}

/**
 * Decides the lifecycle of one thread.
 * @param thread - The thread as read.
 * @param route - Owners' facts and the decision instant.
 * @param config - The lifecycle settings.
 * @param options - `open: false` when the caller did not read the owners routing needs (the event of a
 *   care-team message): a thread whose new question needs a Task (a reply stored after the patient
 *   wrote again) is then left whole to the sweep, which completes the answered Task and opens and
 *   routes the new one together, so the waiting patient is never left without an open Task.
 * @param options.open - Whether a Task may be opened (default true).
 * @returns The decisions and the writes.
 */
export function planLifecycle(thread: LifecycleThread, route: RouteFacts, config: LifecycleConfig, options: { open?: boolean } = {}): LifecyclePlan {
  const plan: LifecyclePlan = { thread: thread.thread, decisions: [], entries: [] };
  if (!config.enabled) {
    return plan;
  }
  const now = new Date(route.now).toISOString();
  const open = thread.tasks.filter((t) => isResponseTask(t, config.code));
  if (thread.header?.status !== 'in-progress') {
    const state = thread.header ? `is ${thread.header.status}` : 'was deleted';
    for (const task of open) {
      plan.decisions.push({ action: 'cancel', task: getReferenceString(task), reason: thread.header ? `thread ${thread.header.status}` : 'thread deleted' });
      plan.entries.push(guardedPatchEntry(task, [{ op: 'replace', path: '/status', value: 'cancelled' }, ...noteOps(task, `Cancelled: the thread ${state}.`, now)]));
    }
    return plan;
  }
  const episode = currentEpisode(thread.conversation);
  const opens = opensTask(thread, config) && !!episode.opening;
  if (opens && options.open === false) {
    return plan;
  }
  // A Task nobody has answered yet stays open; an answered one is completed, whoever wrote since.
  for (const { task, reply } of answeredTasks(thread, config)) {
    plan.decisions.push({ action: 'complete', task: getReferenceString(task), target: reply.ref, reason: 'care team replied' });
    plan.entries.push(completeEntry(task, reply, now));
  }
  // Then the waiting episode's own Task, when no unanswered one stands for it.
  if (opens && episode.opening) {
    const candidates = routeCandidates(thread);
    const chosen = chooseOwner(candidates, lastCareTeamWriter(thread.conversation), route);
    const value = `${thread.thread.split('/')[1]}:after:${episode.boundary ? episode.boundary.ref.split('/')[1] : 'start'}`;
    plan.decisions.push({ action: 'open', task: value, target: chosen.owner, reason: chosen.reason });
    plan.entries.push(createEntry(thread, episode.opening, value, chosen, config, now));
  }
  return plan;
}

/**
 * The care-team person (Practitioner or PractitionerRole) who wrote last.
 * @param c - The conversation.
 * @returns Their reference, or undefined.
 */
export function lastCareTeamWriter(c: Conversation): string | undefined {
  return [...c.points].reverse().find((p) => p.role === 'care-team' && isReroutableOwner(p.sender))?.sender;
}

/**
 * The patient message a response Task names as its input, if any.
 * @param task - The Task.
 * @returns The message's reference string.
 */
export function openingRef(task: Task): string | undefined {
  return task.input?.find((i) => i.valueReference?.reference?.startsWith('Communication/'))?.valueReference?.reference;
}

/**
 * When a Task was made: authoredOn, else meta.lastUpdated.
 * @param task - The Task.
 * @returns Epoch milliseconds, or undefined when neither is a time.
 */
export function taskTime(task: Task): number | undefined {
  const time = Date.parse(task.authoredOn ?? task.meta?.lastUpdated ?? '');
  return Number.isNaN(time) ? undefined : time;
}

/**
 * Whether the lifecycle opened a Task: it carries the episode identifier, or the note recording its
 * route (the sweep's Task read carries notes but not identifiers).
 * @param task - A response Task.
 * @returns True for the lifecycle's own Tasks.
 */
export function openedByLifecycle(task: Task): boolean {
  return !!task.identifier?.some((i) => i.system === RESPONSE_EPISODE_SYSTEM) || !!task.note?.some((n) => n.extension?.some((e) => e.url === RESPONSE_ROUTE_URL));
}

/** What a response Task waits for an answer to: a patient message, or (a hand-off) the Task itself. */
export type Question = { kind: 'message'; message: MessagePoint } | { kind: 'hand-off'; since: number };

/**
 * What a response Task asks (see the module header): the bot's Task, its opening message; a person's,
 * the patient message its input names if it was unanswered when the Task was authored, else the Task.
 * @param task - The Task.
 * @param c - The thread's conversation.
 * @returns The question, or undefined when neither its message nor its time is known.
 */
export function questionOf(task: Task, c: Conversation): Question | undefined {
  const ref = openingRef(task);
  const index = ref ? c.points.findIndex((p) => p.ref === ref && p.role === 'patient') : -1;
  const authored = taskTime(task);
  if (index >= 0) {
    const answeredBefore =
      !openedByLifecycle(task) && authored !== undefined && c.points.slice(index + 1).some((p) => p.role === 'care-team' && p.time <= authored);
    if (!answeredBefore) {
      return { kind: 'message', message: c.points[index] };
    }
  }
  return authored === undefined ? undefined : { kind: 'hand-off', since: authored };
}

/**
 * The care-team message that answers a response Task: the first after its question.
 * @param task - The Task.
 * @param c - The thread's conversation.
 * @returns The answer, or undefined while nobody has answered.
 */
export function answerOf(task: Task, c: Conversation): MessagePoint | undefined {
  const question = questionOf(task, c);
  if (!question) {
    return undefined;
  }
  const after = question.kind === 'message' ? c.points.indexOf(question.message) + 1 : c.points.findIndex((p) => p.time > question.since);
  return after < 0 ? undefined : c.points.slice(after).find((p) => p.role === 'care-team');
}

/**
 * How far back a response Task's completion looks: its opening message or its making, whichever is
 * earlier (a bounded read of the thread must reach back to here).
 * @param task - The Task.
 * @param c - The thread's conversation.
 * @returns Epoch milliseconds (0 when neither is known: read everything).
 */
export function openedAt(task: Task, c: Conversation): number {
  const ref = openingRef(task);
  const times = [ref ? c.points.find((p) => p.ref === ref)?.time : undefined, taskTime(task)].filter((t): t is number => t !== undefined);
  return times.length ? Math.min(...times) : 0;
}

function createEntry(thread: LifecycleThread, opening: MessagePoint, value: string, chosen: Route, config: LifecycleConfig, now: string): BundleEntry {
  const record: Extension = {
    url: RESPONSE_ROUTE_URL,
    extension: [...(chosen.owner ? [{ url: 'to', valueReference: { reference: chosen.owner } }] : []), { url: 'reason', valueCode: chosen.reason }],
  };
  const note: Annotation = { time: now, authorString: OOO_BOT_NAME, text: chosen.text, extension: [record] };
  const task: Task = {
    resourceType: 'Task',
    status: 'requested',
    intent: 'order',
    priority: thread.header?.priority ?? 'routine',
    code: { coding: [config.code], text: 'Respond to patient message' },
    identifier: [{ system: RESPONSE_EPISODE_SYSTEM, value }],
    focus: { reference: thread.thread },
    for: thread.header?.subject,
    authoredOn: now,
    lastModified: now,
    owner: chosen.owner ? { reference: chosen.owner } : undefined,
    performerType: !chosen.owner && config.pool ? [{ coding: [config.pool] }] : undefined,
    input: [{ type: { text: 'Patient message' }, valueReference: { reference: opening.ref } }],
    note: [note],
  };
  return { request: { method: 'POST', url: 'Task', ifNoneExist: `identifier=${RESPONSE_EPISODE_SYSTEM}|${value}` }, resource: task };
}

function completeEntry(task: WithId<Task>, reply: MessagePoint, now: string): BundleEntry {
  const output = { type: { text: 'Response' }, valueReference: { reference: reply.ref } };
  return guardedPatchEntry(task, [
    { op: 'replace', path: '/status', value: 'completed' },
    task.output ? { op: 'add', path: '/output/-', value: output } : { op: 'add', path: '/output', value: [output] },
    ...(!task.owner && reply.sender ? [{ op: 'add' as const, path: '/owner', value: { reference: reply.sender } }] : []),
    ...noteOps(task, 'Completed: the care team replied in this thread.', now),
  ]);
}

function noteOps(task: Task, text: string, now: string): PatchOperation[] {
  const note = { time: now, authorString: OOO_BOT_NAME, text };
  return [
    task.note ? { op: 'add', path: '/note/-', value: note } : { op: 'add', path: '/note', value: [note] },
    { op: 'add', path: '/lastModified', value: now },
  ];
}
