// The event path: a patient just wrote in a thread. Read the thread's open Tasks with the header,
// owners and Schedules in one search, the owners' absence blocks in one more, decide, write once.
import { getReferenceString, getStatus, normalizeOperationOutcome } from '@medplum/core';
import type { MedplumClient, WithId } from '@medplum/core';
import type { Communication, Resource, Task } from '@medplum/fhirtypes';
import type { BotLog } from '../lib/bot-runtime';
import { RunFailedError } from '../lib/bot-runtime';
import { applyWrites, isOpenTask, OPEN_TASK_STATUSES, referenceType, searchAll } from '../lib/fhir';
import { isQuotaError } from '../lib/quota';
import { handOff, OOO_BOT_NAME, ownersToCheck, planThread } from '../lib/reroute-plan';
import type { RouteFacts, ThreadToReroute } from '../lib/reroute-plan';
import { coversToRead, isResponseTask, planLifecycle, routeCandidates } from '../lib/response-lifecycle';
import type { LifecycleConfig, LifecycleThread } from '../lib/response-lifecycle';
import { conversation, messagePoint, senderRole } from '../lib/thread';
import type { Conversation } from '../lib/thread';
import { OwnerDirectory } from './owners';
import type { RerouteConfig } from './settings';
import { describeDecision, emptyEventSummary, lifecycleCounts, logCoverMisses, mergeDecisions, tallyLifecycle, tallyWrites } from './summary';
import type { RerouteSummary } from './summary';

/** A message that can trigger work, or why the input is ignored. */
export type Trigger = { message: string; thread: string; sentAt?: number; role: 'patient' | 'care-team' } | { ignore: string; id?: string };

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
  return { message: id, thread: thread.reference, sentAt: Number.isNaN(sentAt) ? undefined : sentAt, role };
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
  const movedThisRun = new Set<string>();
  const now = Date.now();
  try {
    // A version-guarded patch that fails means someone changed the resource since it was read:
    // read again and decide again, once. The retry sees Tasks the first attempt moved as already
    // rerouted, and finishes the header if its patch was the one refused.
    for (let attempt = 1; attempt <= 2; attempt++) {
      const thread = await readThread(medplum, trigger, log);
      owners.addIncluded(thread.included);
      const lifecycle = lifecycleHasWork(trigger.role, thread, config.lifecycle) ? await readLifecycle(medplum, thread) : undefined;
      const route: RouteFacts = { now, owner: (ref) => owners.facts(ref), coverage: config.coverage, serviceTypes: config.serviceTypes, movedThisRun };
      const patient = trigger.role === 'patient';
      const needed = patient ? [...ownersToCheck(thread), ...(lifecycle ? routeCandidates(lifecycle) : [])] : [];
      const window = { start: Math.min(thread.triggerTime ?? now, now), end: now + 1 };
      let unread = await owners.read(medplum, needed, window, { nearDeadline });
      if (!unread.notRead.length && patient) {
        const covers = [...coversNeeded(thread, route), ...(lifecycle ? coversToRead(routeCandidates(lifecycle), route) : [])];
        unread = await owners.read(medplum, covers, window, { nearDeadline });
      }
      if (unread.notRead.length) {
        summary.deferred[unread.why]++;
        break;
      }
      owners.warnUnjudged(needed, now, config.serviceTypes, log);
      const plan = patient ? planThread(thread, route) : { thread: thread.thread, decisions: [], repaired: [], entries: [] };
      const lifecyclePlan = lifecycle ? planLifecycle(lifecycle, route, config.lifecycle) : undefined;
      logCoverMisses(plan, route, log);
      summary.tasksExamined = thread.tasks.length;
      mergeDecisions(summary, plan);
      if (!plan.entries.length && !lifecyclePlan?.entries.length) {
        break;
      }
      if (nearDeadline()) {
        summary.deferred.deadline++;
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
    if (!isQuotaError(err)) {
      throw err;
    }
    summary.deferred.quota++;
  }
  return finishEvent(summary, log);
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
 * What the lifecycle needs beyond the thread's Tasks: the header (one read, when no Task brought
 * it) and who spoke when (the messages, without their text).
 * @param medplum - The client.
 * @param thread - The thread as read.
 * @returns The lifecycle's view of the thread.
 */
async function readLifecycle(medplum: MedplumClient, thread: ThreadToReroute): Promise<LifecycleThread> {
  const header = thread.header ?? (await readHeader(medplum, thread.thread));
  const messages = await searchAll(medplum, 'Communication', { 'part-of': thread.thread, _elements: 'partOf,sender,sent,status' });
  return { thread: thread.thread, header, tasks: thread.tasks, conversation: conversationOf(header, messages as WithId<Communication>[]) };
}

async function readHeader(medplum: MedplumClient, ref: string): Promise<WithId<Communication> | undefined> {
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
 * A thread's conversation: the header when someone wrote it, then its messages (entered-in-error
 * left out).
 * @param header - The header, when it exists.
 * @param messages - The thread's messages.
 * @returns The conversation.
 */
export function conversationOf(header: WithId<Communication> | undefined, messages: WithId<Communication>[]): Conversation {
  const points = messages.filter((m) => m.status !== 'entered-in-error').map(messagePoint);
  return conversation(header?.sender ? [messagePoint(header), ...points] : points);
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
  log: BotLog
): Promise<ThreadToReroute & { included: WithId<Resource>[] }> {
  // `:iterate` is what makes the server follow Schedule.actor from the included owners.
  const resources = await searchAll(medplum, 'Task', [
    ['focus', trigger.thread],
    ['status', OPEN_TASK_STATUSES.join(',')],
    ['_include', 'Task:focus'],
    ['_include', 'Task:owner'],
    ['_revinclude:iterate', 'Schedule:actor'],
  ]);
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
