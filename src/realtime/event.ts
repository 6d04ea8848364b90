// The event path: a patient just wrote in a thread. Read the thread's open Tasks with the header,
// owners and Schedules in one search, the owners' absence blocks in one more, decide, write once.
import { getReferenceString, getStatus, normalizeOperationOutcome } from '@medplum/core';
import type { MedplumClient, WithId } from '@medplum/core';
import type { Communication, Resource, Task } from '@medplum/fhirtypes';
import type { BotLog } from '../lib/bot-runtime';
import { RunFailedError } from '../lib/bot-runtime';
import { conversationOf, lifecycleNeeds, readConversations, threadToDecide } from '../lib/conversation-reads';
import { applyWrites, isOpenTask, OPEN_TASK_STATUSES, referenceType } from '../lib/fhir';
import { isQuotaError, QUOTA_COST } from '../lib/quota';
import { mayRead, ReadGuard, ReadStopped, searchGuarded } from '../lib/read-guard';
import type { Guard, Stop } from '../lib/read-guard';
import { handOff, OOO_BOT_NAME, ownersToCheck, planThread } from '../lib/reroute-plan';
import type { RouteFacts, ThreadPlan, ThreadToReroute } from '../lib/reroute-plan';
import { coversToRead, isResponseTask, opensTask, planLifecycle, routeCandidates } from '../lib/response-lifecycle';
import type { LifecycleConfig, LifecyclePlan, LifecycleThread } from '../lib/response-lifecycle';
import { senderRole } from '../lib/thread';
import { OwnerHistory } from './owner-history';
import { OwnerDirectory } from './owners';
import type { RerouteConfig } from './settings';
import { describeDecision, emptyEventSummary, lifecycleCounts, logCoverMisses, mergeDecisions, tallyLifecycle, tallyWrites } from './summary';
import type { RerouteSummary } from './summary';

/** A message that can trigger work, or why the input is ignored. */
export type Trigger = { message: string; thread: string; sentAt?: number; storedAt?: number; role: 'patient' | 'care-team' } | { ignore: string; id?: string };

/**
 * Decides whether an input message can trigger work: a patient-side message always; a care-team
 * person's message when the response lifecycle is on (it completes the thread's response Tasks).
 * @param input - `event.input`.
 * @param careTeamTriggers - Whether care-team messages trigger (RESPONSE_TASKS=on).
 * @returns The message and thread references (and when it was sent), or why the input is ignored.
 */
export function triageMessage(input: unknown, careTeamTriggers = false): Trigger {
  const resource = input as Resource | undefined;
  if (resource?.resourceType !== 'Communication') {
    return { ignore: `input is ${resource?.resourceType ?? typeof input}, not a Communication` };
  }
  const id = resource.id ? getReferenceString(resource as WithId<Communication>) : undefined;
  if (resource.status !== 'in-progress') {
    return { ignore: `message status is ${resource.status}, not in-progress`, id };
  }
  if (!resource.partOf?.length) {
    return { ignore: 'message has no partOf (not in a thread)', id };
  }
  const thread = resource.partOf.find((ref) => referenceType(ref) === 'Communication');
  if (!thread?.reference) {
    return { ignore: 'partOf does not point at a Communication thread header', id };
  }
  if (!id) {
    return { ignore: 'message has no id', id };
  }
  const role = senderRole(resource.sender);
  if (role !== 'patient' && !(role === 'care-team' && careTeamTriggers)) {
    const who = resource.sender ? (referenceType(resource.sender) ?? 'not a literal reference') : 'missing';
    return { ignore: `sender is ${who} (${role}), not the patient side`, id };
  }
  const sentAt = Date.parse(resource.sent ?? resource.meta?.lastUpdated ?? '');
  const storedAt = Date.parse(resource.meta?.lastUpdated ?? '');
  return { message: id, thread: thread.reference, sentAt: Number.isNaN(sentAt) ? undefined : sentAt, storedAt: Number.isNaN(storedAt) ? undefined : storedAt, role };
}

/**
 * Handles one new message.
 * @param medplum - The client.
 * @param input - The message.
 * @param config - Settings.
 * @param nearDeadline - Deadline check.
 * @param log - Logger.
 * @returns The summary.
 */
export async function onMessage(
  medplum: MedplumClient,
  input: Resource | undefined,
  config: RerouteConfig,
  nearDeadline: () => boolean,
  log: BotLog
): Promise<RerouteSummary> {
  const trigger = triageMessage(input, config.lifecycle.enabled);
  if ('ignore' in trigger) {
    log.info(`ignored${trigger.id ? ` ${trigger.id}` : ''}: ${trigger.ignore}`);
    return { ...emptyEventSummary('ignored'), reason: trigger.ignore, message: trigger.id };
  }
  const summary: RerouteSummary = { ...emptyEventSummary('done'), thread: trigger.thread, message: trigger.message };
  const owners = new OwnerDirectory();
  const history = new OwnerHistory();
  const movedThisRun = new Set<string>();
  const now = Date.now();
  // Every read after the first is sent only when the quota the last response announced covers it:
  // short of it the event stops, deferred, and the sweep (which reads every open Task and, with the
  // lifecycle on, every thread with a recent message) does the work. A failed Subscription run is
  // never retried, so the event never fails for quota.
  const guard = new ReadGuard(medplum, nearDeadline);
  try {
    // A version-guarded patch that fails means someone changed the resource since it was read:
    // read again and decide again, once. The retry sees Tasks the first attempt moved as already
    // rerouted, and finishes the header if its patch was the one refused.
    for (let attempt = 1; attempt <= 2; attempt++) {
      const read = await readThread(medplum, trigger, guard, log);
      owners.addIncluded(read.included);
      const route: RouteFacts = { now, owner: (ref) => owners.facts(ref), coverage: config.coverage, serviceTypes: config.serviceTypes, movedThisRun };
      // The lifecycle reads the conversation whenever it has work; the reroute, only when it would
      // move a Task on a message that may have been stored after a reply (see readsConversation), or
      // would move a response Task the care team may already have answered (see movesResponseTask):
      // the thread is then decided from the conversation as the sweep decides it.
      let talk = lifecycleHasWork(trigger.role, read, config.lifecycle) ? await readTalk(medplum, read, config.lifecycle, guard) : undefined;
      let decided = await decide(medplum, trigger, talk ? talk.thread : read, talk?.lifecycle, { owners, history, route, config, guard, log });
      if (!('deferred' in decided) && !talk) {
        const answerUnknown = movesResponseTask(trigger, decided.plan, read, config.lifecycle);
        if (answerUnknown || readsConversation(trigger, decided.plan, now)) {
          talk = await readTalk(medplum, read, config.lifecycle, guard);
          decided = await decide(medplum, trigger, talk.thread, answerUnknown ? talk.lifecycle : undefined, { owners, history, route, config, guard, log });
          if (answerUnknown && !('deferred' in decided)) {
            logAnswered(trigger, read, decided.plan, decided.lifecyclePlan, log);
          }
        }
      }
      if ('deferred' in decided) {
        deferEvent(summary, decided.deferred, decided.what, log);
        break;
      }
      const { plan, lifecyclePlan } = decided;
      logCoverMisses(plan, route, log);
      summary.tasksExamined = read.tasks.length;
      mergeDecisions(summary, plan);
      if (!plan.entries.length && !lifecyclePlan?.entries.length) {
        break;
      }
      if (nearDeadline()) {
        deferEvent(summary, 'deadline', 'writes', log);
        break;
      }
      const [outcomes, lifecycleOutcomes] = await applyWrites(medplum, [plan.entries, lifecyclePlan?.entries ?? []]);
      plan.decisions.filter((d) => d.action !== 'kept').forEach((d, i) => outcomes[i].kind === 'applied' && movedThisRun.add(d.task));
      let conflicts = plan.entries.length ? tallyWrites(summary, plan, outcomes, log) : 0;
      if (lifecyclePlan?.entries.length) {
        const result = tallyLifecycle(summary, lifecyclePlan, lifecycleOutcomes, log);
        conflicts += result.conflicts;
        summary.failed += result.failed;
        if (result.deferred) {
          summary.deferred[result.deferred]++;
        }
      }
      if (!conflicts || attempt === 2) {
        summary.conflicts += conflicts;
        break;
      }
      log.info(`${trigger.thread}: changed by someone else meanwhile; reading again`);
    }
  } catch (err) {
    if (err instanceof ReadStopped) {
      deferEvent(summary, err.why, err.what, log);
    } else if (isQuotaError(err)) {
      deferEvent(summary, 'quota', 'refused', log); // another run spent the minute after the last header: the sweep does it
    } else {
      throw err;
    }
  }
  return finishEvent(summary, log);
}

/**
 * Records why the event stopped before its work was done: the run ends cleanly, and the sweep finds
 * the thread (its open Tasks, or its recent message) and does it.
 * @param summary - The event's summary.
 * @param why - Quota or deadline.
 * @param what - What was not sent (a code: `conversation read`, `owner Schedule read`...).
 * @param log - Logger.
 */
function deferEvent(summary: RerouteSummary, why: Stop, what: string, log: BotLog): void {
  summary.deferred[why]++;
  summary.reason = `deferred: ${why} (${what} not sent)`;
  log.info(`${summary.thread} ${summary.message}: deferred: ${why} (${what} not sent); the sweep does the work`);
}

/** A patient message whose run starts this long after it was sent may have been stored after a reply. */
export const LATE_AFTER_MS = 2 * 60_000;

/**
 * Whether the reroute must read the conversation before it writes: it would move a Task, and the
 * message is not fresh. A message reaches the bot within a second of being stored; one sent
 * minutes before its run was delivered late (an SMS gateway, an app that was offline) and may have
 * been stored after the care team's reply, so it is not taken for the newest: the conversation
 * says whether the patient still waits, and which patient message is the trigger, as the sweep
 * reads it. A fresh message that moves a Task, and any message that moves nothing, costs no read
 * (a message without sent or lastUpdated is taken as fresh: the server stamps every stored one).
 * @param trigger - The message.
 * @param plan - The reroute decided as if the message were the newest.
 * @param now - The run's instant.
 * @returns True when the conversation must be read and the thread decided again.
 */
export function readsConversation(trigger: Exclude<Trigger, { ignore: string }>, plan: ThreadPlan, now: number): boolean {
  return trigger.role === 'patient' && plan.entries.length > 0 && trigger.sentAt !== undefined && now - trigger.sentAt > LATE_AFTER_MS;
}

/**
 * Whether the reroute, decided without the conversation, would move a response Task while the
 * lifecycle is on: the care team may have answered it in a reply whose event was lost, and an
 * answered Task is the lifecycle's to complete (its owner kept, its answer as output), not the
 * reroute's to move (the sweep leaves it, see threadToDecide). The conversation then decides, as in
 * the sweep. A follow-up that moves no response Task costs nothing more.
 * @param trigger - The message.
 * @param plan - The reroute decided as if no reply had come.
 * @param thread - The thread's open Tasks.
 * @param config - The lifecycle settings.
 * @returns True when the conversation must be read and the thread decided again, with the lifecycle.
 */
export function movesResponseTask(trigger: Exclude<Trigger, { ignore: string }>, plan: ThreadPlan, thread: ThreadToReroute, config: LifecycleConfig): boolean {
  if (!config.enabled || trigger.role !== 'patient') {
    return false;
  }
  const response = new Set(thread.tasks.filter((t) => isResponseTask(t, config.code)).map((t) => getReferenceString(t)));
  return plan.decisions.some((d) => d.action !== 'kept' && response.has(d.task));
}

/** Logs, with ids and codes, what the conversation changed for the response Tasks the reroute would have moved. */
function logAnswered(trigger: Exclude<Trigger, { ignore: string }>, read: ThreadToReroute, plan: ThreadPlan, lifecyclePlan: LifecyclePlan | undefined, log: BotLog): void {
  const completed = new Set((lifecyclePlan?.decisions ?? []).filter((d) => d.action === 'complete').map((d) => d.task));
  const left = read.tasks.map((t) => getReferenceString(t)).filter((ref) => completed.has(ref) && !plan.decisions.some((d) => d.task === ref));
  if (left.length) {
    log.info(`${trigger.thread} ${trigger.message}: ${left.join(',')} answered by the care team: completed, not rerouted (answered-not-rerouted)`);
  }
}

/** What one decision of the event path shares with the next. */
interface Deciding {
  owners: OwnerDirectory;
  /** Who gave a Task its owner, read when the notes cannot tell and the Task would move. */
  history: OwnerHistory;
  route: RouteFacts;
  config: RerouteConfig;
  /** The run's guard, asked before every read. */
  guard: Guard;
  log: BotLog;
}

/**
 * Reads the owners a thread's decision needs (and the history of a Task that would move whose owner
 * changed after the patient wrote, when the notes cannot tell who changed it), then decides it (the
 * reroute for a patient message, the lifecycle when it has work).
 * @param medplum - The client.
 * @param trigger - The message.
 * @param thread - The thread as read.
 * @param lifecycle - The lifecycle's view, when it has work.
 * @param d - Owners, facts, settings.
 * @returns The plans, or why the decision is deferred.
 */
async function decide(
  medplum: MedplumClient,
  trigger: Exclude<Trigger, { ignore: string }>,
  thread: ThreadToReroute,
  lifecycle: LifecycleThread | undefined,
  d: Deciding
): Promise<{ plan: ThreadPlan; lifecyclePlan?: LifecyclePlan } | { deferred: Stop; what: string }> {
  const { owners, history, route, config, guard, log } = d;
  const patient = trigger.role === 'patient';
  // Routing a new Task needs its candidates' owners, and only then (as in the sweep).
  const opening = patient && !!lifecycle && opensTask(lifecycle, config.lifecycle);
  const needed = patient ? [...ownersToCheck(thread, {}, route.movedThisRun), ...(opening && lifecycle ? routeCandidates(lifecycle) : [])] : [];
  const window = { start: Math.min(thread.triggerTime ?? route.now, route.now), end: route.now + 1 };
  let unread = await owners.read(medplum, needed, window, guard);
  if (!unread.notRead.length && patient) {
    const covers = [...coversNeeded(thread, route), ...(opening && lifecycle ? coversToRead(routeCandidates(lifecycle), route) : [])];
    unread = await owners.read(medplum, covers, window, guard);
  }
  if (unread.notRead.length) {
    return { deferred: unread.why, what: 'owner read' };
  }
  owners.warnUnjudged(needed, route.now, config.serviceTypes, log);
  if (patient) {
    await history.read(medplum, [thread], route, guard, log);
    const stopped = history.stopped(thread);
    if (stopped) {
      return { deferred: stopped, what: 'Task history read' };
    }
  }
  return {
    plan: patient ? planThread(history.with(thread), route) : { thread: thread.thread, decisions: [], repaired: [], entries: [] },
    lifecyclePlan: lifecycle ? planLifecycle(lifecycle, route, config.lifecycle, { open: patient }) : undefined,
  };
}

/**
 * Whether the lifecycle may have something to do for this message: a patient's message in a thread
 * without an open response Task (to open one), a care-team message in a thread with one (to complete
 * it). A follow-up while a Task is open costs the lifecycle nothing.
 * @param role - Who wrote the message.
 * @param thread - The thread's open Tasks.
 * @param config - The lifecycle settings.
 * @returns True when the conversation must be read.
 */
export function lifecycleHasWork(role: 'patient' | 'care-team', thread: ThreadToReroute, config: LifecycleConfig): boolean {
  const open = thread.tasks.some((t) => isResponseTask(t, config.code));
  return config.enabled && (role === 'patient' ? !open : open);
}

/**
 * Reads the thread's conversation (back to the care team's last message, and to the open response
 * Tasks' openings; see readConversations) and decides from it who waits, as the sweep does. The
 * header is read when no Task brought it.
 * @param medplum - The client.
 * @param read - The thread as the Task search read it.
 * @param config - The lifecycle settings.
 * @param guard - The run's guard (ReadStopped when it stops a read).
 * @returns The thread for the reroute and for the lifecycle.
 */
async function readTalk(
  medplum: MedplumClient,
  read: ThreadToReroute,
  config: LifecycleConfig,
  guard: Guard
): Promise<{ thread: ThreadToReroute; lifecycle: LifecycleThread }> {
  const header = read.header ?? (await readHeader(medplum, read.thread, guard));
  const needs = config.enabled ? lifecycleNeeds(read.tasks, (t) => isResponseTask(t, config.code)) : {};
  const talk =
    (await readConversations(medplum, [{ thread: read.thread, header, ...needs }], { writer: config.enabled, guard })).get(read.thread)?.conversation ??
    conversationOf(header, []);
  const lifecycle: LifecycleThread = { thread: read.thread, header, tasks: read.tasks, conversation: talk };
  // A header the bot cannot read is decided as open, as before the conversation was read. A
  // response Task the care team answered is left to the lifecycle, as in the sweep.
  return { thread: threadToDecide(lifecycle, config, header ? header.status === 'in-progress' : true), lifecycle };
}

async function readHeader(medplum: MedplumClient, ref: string, guard: Guard): Promise<WithId<Communication> | undefined> {
  mayRead(guard, 'thread header read', QUOTA_COST.read);
  try {
    return await medplum.readResource('Communication', ref.split('/')[1], { cache: 'no-cache' });
  } catch (err) {
    if (getStatus(normalizeOperationOutcome(err)) === 404 || getStatus(normalizeOperationOutcome(err)) === 410) {
      return undefined; // deleted
    }
    throw err;
  }
}

/**
 * The covers a thread's decision needs: those of owners whose Task leaves them.
 * @param thread - The thread.
 * @param route - Facts read so far.
 * @returns Cover references.
 */
export function coversNeeded(thread: ThreadToReroute, route: RouteFacts): string[] {
  return thread.tasks.flatMap((t) => {
    const owner = t.owner?.reference;
    const cover = owner ? route.coverage[owner] : undefined;
    return cover && handOff(route.owner(owner as string), thread.triggerTime, route).leave ? [cover] : [];
  });
}

/** Reads one thread: its open Tasks with the header, owners and their Schedules, in one search. */
async function readThread(
  medplum: MedplumClient,
  trigger: Exclude<Trigger, { ignore: string }>,
  guard: Guard,
  log: BotLog
): Promise<ThreadToReroute & { included: WithId<Resource>[] }> {
  // `:iterate` is what makes the server follow Schedule.actor from the included owners.
  const resources = await searchGuarded(
    medplum,
    'Task',
    [
      ['focus', trigger.thread],
      ['status', OPEN_TASK_STATUSES.join(',')],
      ['_include', 'Task:focus'],
      ['_include', 'Task:owner'],
      ['_revinclude:iterate', 'Schedule:actor'],
    ],
    guard,
    'Task search',
    log
  );
  const byRef = new Map(resources.map((r) => [getReferenceString(r), r]));
  const tasks = resources.filter(
    (r): r is WithId<Task> => r.resourceType === 'Task' && r.focus?.reference === trigger.thread && isOpenTask(r)
  );
  const header = byRef.get(trigger.thread) as WithId<Communication> | undefined;
  if (!tasks.length && trigger.role === 'patient') {
    log.info(`${trigger.thread}: no open Tasks on the thread; nothing to reroute`);
  } else if (!header) {
    log.info(`${trigger.thread}: thread header not found (deleted, or not readable by the bot); Tasks decided without it`);
  }
  return {
    thread: trigger.thread,
    header,
    tasks,
    trigger: trigger.message,
    triggerTime: trigger.sentAt,
    triggerArrived: trigger.storedAt,
    waitingOnCareTeam: true,
    included: resources.filter((r) => r.resourceType !== 'Task'),
  };
}

function finishEvent(summary: RerouteSummary, log: BotLog): RerouteSummary {
  // Counted from the final decisions: a move whose write did not apply was turned into "kept".
  summary.kept = summary.decisions.filter((d) => d.action === 'kept').length;
  summary.decisions.forEach((d) => log.info(describeDecision(d)));
  const deferred = summary.deferred.quota + summary.deferred.deadline;
  summary.outcome = summary.failed ? 'failed' : deferred ? 'deferred' : 'done';
  log.info(
    `${summary.thread} ${summary.message}: examined=${summary.tasksExamined} rerouted=${summary.rerouted} kept=${summary.kept} ` +
      `repaired=${summary.repaired}${lifecycleCounts(summary)} conflicts=${summary.conflicts} failed=${summary.failed} ` +
      `deferred=${JSON.stringify(summary.deferred)}${deferred || summary.conflicts ? '; the sweep finishes what is left' : ''}`
  );
  if (summary.failed) {
    // The server records the run as failed; nothing is half-done that the sweep does not finish.
    throw new RunFailedError(`${OOO_BOT_NAME}: ${summary.failed} write(s) failed for ${summary.thread}; the sweep retries them`, summary);
  }
  return summary;
}
