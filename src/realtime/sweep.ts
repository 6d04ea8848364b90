// The sweep: the level-triggered pass that repairs what an event missed (a lost or deferred run).
// It finds the threads waiting on the care team first, then reads only their owners, each once,
// and replays the event's decision at the time of the patient's message (`planThread`).
//
// Reach does not depend on scan order: the sweep works a hundred threads at a time (read, decide,
// write), starting at the chunk its run number picks (runs are numbered by the ticks of the sweep's
// cron, so each run starts one chunk further than the one before, whatever the cron's spacing), so
// a sweep stopped by its deadline keeps what it did, the next one starts at the next chunk, and
// every chunk is first within as many runs as there are chunks; within a chunk, oldest waiting
// message first. A rerouted thread has no owner left to read.
//
// With the lifecycle on, the sweep also reads every thread with a message stored since the place
// its marker records (./sweep-marker.ts: every thread whose latest message was stored before it was
// handled; at least the last 24 hours, at most 14 days), so an episode whose event was lost, or that
// came while the bot was off, gets its Task whenever the bot comes back. After a gap, the threads
// found only before the last day are a catch-up, handled first, oldest latest message first, in the
// same order every run; the marker moves to the first one not handled, so every run that handles a
// chunk shrinks the look-back, and a look-back too big for one run still converges.
import { getReferenceString } from '@medplum/core';
import type { MedplumClient, WithId } from '@medplum/core';
import type { Communication, Task } from '@medplum/fhirtypes';
import { parseCron } from '../lib/cron';
import { availabilityAt } from '../lib/availability';
import type { BotLog } from '../lib/bot-runtime';
import { RunFailedError } from '../lib/bot-runtime';
import { applyWrites, referenceType } from '../lib/fhir';
import { ReadGuard, ReadStopped, scanGuarded, scanOpenThreadTasks, searchGuarded } from '../lib/read-guard';
import type { Stop } from '../lib/read-guard';
import { isQuotaError, quotaLeft, QUOTA_COST } from '../lib/quota';
import { isReroutableOwner, latestReroute, OOO_BOT_NAME, ownersToCheck, planThread } from '../lib/reroute-plan';
import type { RouteFacts, ThreadPlan, ThreadToReroute } from '../lib/reroute-plan';
import { isResponseTask, coversToRead, opensTask, planLifecycle, routeCandidates } from '../lib/response-lifecycle';
import type { LifecycleConfig, LifecyclePlan, LifecycleThread } from '../lib/response-lifecycle';
import { conversationOf, lifecycleNeeds, readConversations, threadToDecide } from '../lib/conversation-reads';
import { coversNeeded } from './event';
import { OwnerHistory } from './owner-history';
import { OwnerDirectory } from './owners';
import { comparePositions, handledBefore, LIFECYCLE_LOOKBACK_MS, lookBackFrom, positionOf, readSweepMarker, recordSweep, recordsCleanSweep } from './sweep-marker';
import type { MarkerRecord, SweepMarker, SweepPosition } from './sweep-marker';
import type { RerouteConfig } from './settings';
import { emptySweepSummary, lifecycleCounts, logCoverMisses, tallyLifecycle, tallyPlan } from './summary';
import type { SweepSummary } from './summary';

/** Threads per header or message search (the ids go in the URL). */
export const THREADS_PER_SEARCH = 100;
/** The sweep leaves this share of the quota it found to the event path, which shares the Bot's quota. */
const SWEEP_RESERVE_SHARE = 0.1;

/**
 * Runs one sweep.
 * @param medplum - The client.
 * @param config - Settings.
 * @param nearDeadline - Deadline check.
 * @param log - Logger.
 * @returns The summary.
 */
export async function sweep(medplum: MedplumClient, config: RerouteConfig, nearDeadline: () => boolean, log: BotLog): Promise<SweepSummary> {
  const summary = emptySweepSummary();
  let stopped: string | undefined;
  try {
    stopped = await sweepThreads(medplum, config, nearDeadline, log, summary);
  } catch (err) {
    if (!isQuotaError(err)) {
      throw err;
    }
    stopped = 'sweep stopped early (quota): the FHIR quota ran out while reading; the next sweep starts over';
  }
  const deferred = summary.deferred.quota + summary.deferred.deadline;
  if (!stopped && deferred) {
    const why = summary.deferred.deadline ? 'deadline' : 'quota';
    stopped = `sweep stopped early (${why}): ${deferred} thread(s) left; the next sweep starts elsewhere and finishes them`;
  }
  summary.stoppedEarly = !!stopped;
  if (stopped) {
    // A warning in the run's AuditEvent; `npm run status` flags it.
    log.warn(stopped);
  }
  log.info(
    `sweep: tasks=${summary.tasksScanned} threads=${summary.threadsRead} waiting=${summary.waiting} owners=${summary.ownersChecked} ` +
      `unavailable=${summary.ownersUnavailable} rerouted=${summary.rerouted} repaired=${summary.repaired} kept=${summary.kept} ` +
      `keptOnDuty=${summary.keptOnDuty}${lifecycleCounts(summary)} conflicts=${summary.conflicts} failed=${summary.failed} deferred=${JSON.stringify(summary.deferred)}`
  );
  if (summary.failed) {
    throw new RunFailedError(`${OOO_BOT_NAME}: ${summary.failed} write(s) failed in the sweep; the next sweep retries them`, summary);
  }
  return summary;
}

async function sweepThreads(
  medplum: MedplumClient,
  config: RerouteConfig,
  nearDeadline: () => boolean,
  log: BotLog,
  summary: SweepSummary
): Promise<string | undefined> {
  const now = Date.now();
  // Every read after the first (and every page) is sent only when the quota the last response
  // announced covers it: one guard for the run, passed to every read.
  const guard = new ReadGuard(medplum, nearDeadline);
  if (nearDeadline()) {
    return 'sweep stopped early (deadline) before it started; nothing written, the next sweep starts over';
  }
  // 1. Every open Task on a thread: ids, owners, notes (to recognise earlier reroutes).
  const tasksByThread = new Map<string, WithId<Task>[]>();
  const scan = await scanOpenThreadTasks(
    medplum,
    'focus,owner,status,note,code,input,output,authoredOn',
    guard,
    (task, thread) => {
      tasksByThread.set(thread, [...(tasksByThread.get(thread) ?? []).filter((t) => t.id !== task.id), task]);
      summary.tasksScanned++;
    },
    log
  );
  if (scan) {
    return `sweep stopped early (${scan}) while scanning Tasks; nothing written, the next sweep starts over`;
  }
  const reserve = (quotaLeft(medplum)?.points ?? 0) * SWEEP_RESERVE_SHARE;
  guard.reserve = reserve;

  // 2. Threads worth reading: a person owns an open Task, or an earlier reroute may be half-done;
  // with the lifecycle on, also an open response Task (to complete or cancel), and any thread with a
  // message in the last day (a lost event may have left it without a Task).
  const { lifecycle } = config;
  const worthReading = (t: WithId<Task>): boolean => isReroutableOwner(t.owner?.reference) || !!latestReroute(t) || (lifecycle.enabled && isResponseTask(t, lifecycle.code));
  const candidates = [...tasksByThread].filter(([, tasks]) => tasks.some(worthReading));
  let marker: SweepMarker | undefined;
  /** Why the scan of the last day stopped, if it did (then nothing older is read). */
  let recentStop: Stop | undefined;
  /** After a gap: the threads found only by the older part of the look-back, not handled yet, in the order they are handled. */
  let catchUp: CatchUp | undefined;
  const least = now - LIFECYCLE_LOOKBACK_MS;
  if (lifecycle.enabled) {
    const read = await readSweepMarker(medplum, guard, log);
    if (typeof read === 'string') {
      return `sweep stopped early (${read}) before reading its marker; nothing written, the next sweep starts over`;
    }
    marker = read;
    const { position } = read;
    const since = lookBackFrom(position, now);
    // The last day first, as every sweep reads it; then, after a gap, the older part back to the marker.
    const recent = await recentThreads(medplum, least, undefined, guard, log);
    if (recent.stop === 'quota') {
      // Not sent into a spent minute: the next sweep reads them.
      return 'sweep stopped early (quota) before reading the threads with recent messages; nothing written, the next sweep starts over';
    }
    recentStop = recent.stop;
    if (!recent.stop && since < least) {
      const capped = position !== undefined && since > position.stored;
      log[capped ? 'warn' : 'info'](
        `sweep: every thread was handled up to ${position === undefined ? 'never' : new Date(position.stored).toISOString()}; also reading the threads with a message stored since ${new Date(since).toISOString()}` +
          (capped ? ' (the most it reads back): a patient who wrote before then and was never answered gets no response Task until the thread moves' : '')
      );
      const older = await recentThreads(medplum, since, least, guard, log);
      catchUp = {
        since,
        // A thread with a message in the last day is read by every sweep: not the catch-up's.
        threads: [...older.threads]
          .filter(([ref]) => !recent.threads.has(ref))
          .map(([thread, stored]) => ({ thread, stored }))
          .filter((key) => !handledBefore(position, key))
          .sort(comparePositions),
        stop: older.stop,
        reached: older.reached,
      };
    }
    const known = new Set([...candidates.map(([ref]) => ref), ...(catchUp?.threads.map((t) => t.thread) ?? [])]);
    for (const ref of recent.threads.keys()) {
      if (!known.has(ref)) {
        known.add(ref);
        candidates.push([ref, tasksByThread.get(ref) ?? []]);
      }
    }
  }
  // The threads every sweep reads (open Tasks, the last day), a hundred at a time from the chunk the
  // run number picks, taking turns with the catch-up's chunks, oldest first and in the same order
  // every run (so each run that handles one moves the marker on): a long catch-up neither holds back
  // today's patients and absences nor waits behind them. Each chunk is read, decided and written
  // before the next.
  const catchUpThreads = new Set(catchUp?.threads.map((t) => t.thread));
  const chunksOf = (threads: [string, WithId<Task>[]][]): [string, WithId<Task>[]][][] => {
    const chunks: [string, WithId<Task>[]][][] = [];
    for (let i = 0; i < threads.length; i += THREADS_PER_SEARCH) {
      chunks.push(threads.slice(i, i + THREADS_PER_SEARCH));
    }
    return chunks;
  };
  const rotating = chunksOf(candidates.filter(([ref]) => !catchUpThreads.has(ref)));
  const first = rotating.length ? sweepNumber(config.sweepCron, now) % rotating.length : 0;
  const older = chunksOf((catchUp?.threads ?? []).map((t): [string, WithId<Task>[]] => [t.thread, tasksByThread.get(t.thread) ?? []]));
  const chunks = takeTurns(
    rotating.map((_c, k) => rotating[(first + k) % rotating.length]),
    older
  );
  const owners = new OwnerDirectory();
  const route: RouteFacts = { now, owner: (ref) => owners.facts(ref), coverage: config.coverage, serviceTypes: config.serviceTypes };
  const checked = new Set<string>();
  /** Threads read but not handled (deferred or failed), and those never read. */
  const left = new Set<string>();
  for (let k = 0; k < chunks.length; k++) {
    // The chunk's headers and first conversation page at least; every later read asks again.
    const chunk = chunks[k];
    const threads = guard.check(2 * QUOTA_COST.search) ?? (await readThreadsOrStop(medplum, chunk, lifecycle, guard, log));
    if (typeof threads === 'string') {
      // Nothing of the chunk is decided on half its reads, nothing written: the next sweep reads it.
      const rest = chunks.slice(k).flat();
      rest.forEach(([ref]) => left.add(ref));
      summary.deferred[threads] += rest.length;
      break;
    }
    summary.threadsRead += chunk.length;
    const notHandled = await sweepChunk(medplum, threads, { owners, route, checked, lifecycle, guard }, log, summary);
    notHandled.forEach((ref) => left.add(ref));
  }
  summary.ownersChecked = checked.size;
  summary.ownersUnavailable = [...checked].filter((o) => availabilityAt(owners.facts(o), now, config.serviceTypes).state === 'unavailable').length;
  if (marker?.writable) {
    const clean = !recentStop && !catchUp?.stop && !left.size && !summary.failed && !summary.deferred.quota && !summary.deferred.deadline;
    const record = nextMarker(marker.position, { now, least, clean, catchUp, left });
    if (record) {
      await recordSweep(medplum, marker.found, record, { reserve }, log);
    }
  }
  if (recentStop) {
    return `sweep stopped early (${recentStop}) while reading the threads with recent messages; the next sweep reads on`;
  }
  if (catchUp?.stop) {
    return `sweep stopped early (${catchUp.stop}) while reading the older threads of the look-back; the next sweep reads on from where this one got`;
  }
  return undefined;
}

/**
 * Two lists, one item of each in turn (then what is left of the longer).
 * @param a - Goes first.
 * @param b - Second.
 * @returns a[0], b[0], a[1], b[1], ...
 */
export function takeTurns<T>(a: T[], b: T[]): T[] {
  const out: T[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    out.push(...(i < a.length ? [a[i]] : []), ...(i < b.length ? [b[i]] : []));
  }
  return out;
}

/**
 * Whether a write's failure will fail again however often it is retried: a 4xx other than a timeout
 * or the quota (an invalid reference, a resource deleted, a policy's criteria). Such a thread is
 * logged and counted as failed, but does not hold the look-back's marker: it would pin it, and every
 * sweep would read everything after it, for up to 14 days.
 * @param status - The failed write's status.
 * @returns True when retrying cannot help.
 */
export function failsForGood(status: string): boolean {
  return /^4\d\d$/.test(status) && status !== '408' && status !== '429';
}

/** After a gap, the older part of the look-back: what it found, and how far it read. */
interface CatchUp {
  /** Where the look-back started. */
  since: number;
  /** Threads with no message in the last day and not handled yet by the marker, each keyed by its latest message read, oldest first. */
  threads: Required<SweepPosition>[];
  /** Why reading stopped, if it did. */
  stop?: Stop;
  /** When it stopped: the latest stored time read (every message stored before it was read). */
  reached?: number;
}

/**
 * What the marker is set to after a sweep, if anything. The catch-up's position is the key of its
 * first thread not handled (read, decided and written without deferral or failure), and no further
 * than its scan read; once the catch-up is done, 24 hours ago (the last day is read by every sweep,
 * whatever was deferred there), or, the sweep being clean, its start. A clean sweep with nothing to
 * catch up records itself every MARKER_REFRESH_MS; while catching up, the marker is written
 * whenever it moves on. It never moves back.
 * @param position - The marker's position as read.
 * @param run - This sweep: when it started, the last day's start, whether it was clean, its catch-up, and the threads it left.
 * @param run.now - When it started.
 * @param run.least - The last day's start.
 * @param run.clean - Everything read was handled.
 * @param run.catchUp - The older part of the look-back, when read.
 * @param run.left - Threads not handled.
 * @returns The record to write, or undefined.
 */
export function nextMarker(
  position: SweepPosition | undefined,
  run: { now: number; least: number; clean: boolean; catchUp?: CatchUp; left: Set<string> }
): MarkerRecord | undefined {
  const { now, least, clean, catchUp, left } = run;
  if (!catchUp) {
    return clean && recordsCleanSweep(position, now) ? { clean: now } : undefined;
  }
  let next: MarkerRecord | undefined = catchUp.threads.find((t) => left.has(t.thread));
  if (catchUp.stop) {
    const cut: SweepPosition = { stored: catchUp.reached ?? catchUp.since };
    next = next && comparePositions(next, cut) < 0 ? next : cut;
  }
  next ??= clean ? { clean: now } : { stored: least };
  return position === undefined || comparePositions(positionOf(next), position) > 0 ? next : undefined;
}

/**
 * The number of this sweep: how many ticks of its cron came since the epoch, up to now. It grows by
 * one from a run to the next whatever the cron's spacing (every 5 or 15 minutes, hourly, a few
 * hours a day), where the minute number grows by the spacing and, modulo a chunk count that divides
 * it (3, 5 or 15 chunks every 15 minutes), never moves. Ticks are counted per UTC day (the server's
 * cron clock) from the minute and hour fields; day restrictions only skip numbers. Without a cron
 * (an `$execute` by hand, with no OOO_SWEEP_CRON), the minute number.
 * @param cron - The sweep's cron expression, when known.
 * @param now - Epoch milliseconds.
 * @returns A non-negative integer.
 */
export function sweepNumber(cron: string | undefined, now: number): number {
  const minute = Math.floor(now / 60_000);
  const schedule = parseCron(cron);
  if (!schedule) {
    return minute;
  }
  const minuteOfDay = minute % 1440;
  const perDay = schedule.hours.size * schedule.minutes.size;
  let today = 0;
  for (const h of schedule.hours) {
    for (const m of schedule.minutes) {
      today += h * 60 + m <= minuteOfDay ? 1 : 0;
    }
  }
  return Math.floor(minute / 1440) * perDay + today;
}

/** What the chunks of one sweep share. */
interface SweepState {
  owners: OwnerDirectory;
  route: RouteFacts;
  /** Owners read so far. */
  checked: Set<string>;
  lifecycle: LifecycleConfig;
  /** The run's guard (its reserve is the event path's share, also kept by the writes). */
  guard: ReadGuard;
}

/**
 * Decides and writes one chunk of threads: the waiting ones, oldest patient message first, after
 * reading the owners not read yet.
 * @param medplum - The client.
 * @param threads - The chunk's threads in progress.
 * @param state - What the sweep's chunks share.
 * @param log - Logger.
 * @param summary - Added to.
 * @returns The threads not handled: deferred (by the quota or the deadline) or with a write that may succeed when retried.
 */
async function sweepChunk(medplum: MedplumClient, threads: SweptThread[], state: SweepState, log: BotLog, summary: SweepSummary): Promise<Set<string>> {
  const { owners, route, guard, lifecycle } = state;
  const waiting = threads.filter((t) => t.waitingOnCareTeam).sort((a, b) => (a.triggerTime ?? 0) - (b.triggerTime ?? 0));
  summary.waiting += waiting.length;
  const toOpen = threads.filter((t) => opensTask(t.lifecycle, lifecycle));
  const needs = (t: SweptThread): string[] => [...(t.waitingOnCareTeam ? ownersToCheck(t) : []), ...(toOpen.includes(t) ? routeCandidates(t.lifecycle) : [])];
  const window = { start: Math.min(route.now, ...waiting.map((t) => t.triggerTime ?? route.now)), end: route.now + 1 };
  const ownerRefs = [...new Set(threads.flatMap(needs))];
  const unread = await owners.read(medplum, ownerRefs, window, guard);
  // Known only once the owners are read: whose Task leaves them, and whether any candidate is available.
  const coversOf = (t: SweptThread): string[] => [...(t.waitingOnCareTeam ? coversNeeded(t, route) : []), ...(toOpen.includes(t) ? coversToRead(routeCandidates(t.lifecycle), route) : [])];
  const covers = await owners.read(medplum, [...new Set(threads.flatMap(coversOf))], window, guard);
  const notRead = new Set([...unread.notRead, ...covers.notRead]);
  const read = ownerRefs.filter((o) => !notRead.has(o));
  read.forEach((o) => state.checked.add(o));
  owners.warnUnjudged(read, route.now, route.serviceTypes, log);
  // Who gave a Task its owner, for a Task that would move whose owner changed after the patient wrote.
  const history = new OwnerHistory();
  await history.read(medplum, waiting, route, guard, log);

  // Oldest waiting message first, then the threads the care team answered or that were closed.
  const groups: { thread: string; plan: ThreadPlan | LifecyclePlan; lifecycle: boolean }[] = [];
  const left = new Set<string>();
  for (const thread of [...waiting, ...threads.filter((t) => !t.waitingOnCareTeam)]) {
    if ([...needs(thread), ...coversOf(thread)].some((o) => notRead.has(o))) {
      summary.deferred[unread.notRead.length ? unread.why : covers.why]++;
      left.add(thread.thread);
      continue;
    }
    // A Task's history the quota or deadline left unread: the whole thread waits for the next sweep.
    const historyStop = thread.waitingOnCareTeam ? history.stopped(thread) : undefined;
    if (historyStop) {
      summary.deferred[historyStop]++;
      left.add(thread.thread);
      continue;
    }
    if (thread.waitingOnCareTeam) {
      const plan = planThread(history.with(thread), route);
      logCoverMisses(plan, route, log);
      groups.push({ thread: thread.thread, plan, lifecycle: false });
      summary.kept += plan.decisions.filter((d) => d.action === 'kept').length;
      summary.keptOnDuty += plan.decisions.filter((d) => d.onDutyWhenWritten).length;
    }
    groups.push({ thread: thread.thread, plan: planLifecycle(thread.lifecycle, route, lifecycle), lifecycle: true });
  }

  // One group per thread and kind, in that order, within the quota left.
  const writing = groups.filter((g) => g.plan.entries.length);
  const outcomes = await applyWrites(
    medplum,
    writing.map((g) => g.plan.entries),
    { shouldStop: guard.nearDeadline, reserve: guard.reserve }
  );
  writing.forEach((group, i) => {
    const result = group.lifecycle ? tallyLifecycle(summary, group.plan as LifecyclePlan, outcomes[i], log) : tallyPlan(group.plan as ThreadPlan, outcomes[i], log);
    summary.rerouted += result.rerouted;
    summary.repaired += result.repaired;
    summary.conflicts += result.conflicts;
    summary.failed += result.failed;
    if (result.deferred) {
      summary.deferred[result.deferred]++;
    }
    // A write that may succeed next time keeps the thread unhandled; one that fails for good does not (failsForGood).
    const retry = outcomes[i].some((o) => o.kind === 'failed' && !failsForGood(o.status));
    if (result.deferred || retry) {
      left.add(group.thread);
    }
  });
  return left;
}

/**
 * Threads with a message stored since an instant (by `_lastUpdated`, so a message synced late with
 * an old `sent` is found too), oldest first, each page read only when the guard allows it.
 * @param medplum - The client.
 * @param from - Epoch milliseconds (inclusive).
 * @param to - Epoch milliseconds (exclusive), or undefined for up to now.
 * @param guard - Deadline and quota, checked before each page.
 * @param log - Logger.
 * @returns Thread references, each with its latest message read (stored time); when reading
 *   stopped, why, and the latest `meta.lastUpdated` read (every message stored before it was read).
 */
async function recentThreads(
  medplum: MedplumClient,
  from: number,
  to: number | undefined,
  guard: ReadGuard,
  log: BotLog
): Promise<{ threads: Map<string, number>; stop?: Stop; reached?: number }> {
  const threads = new Map<string, number>();
  let reached: number | undefined;
  const stop = await scanGuarded(
    medplum,
    'Communication',
    [
      ['part-of:missing', 'false'],
      ['_lastUpdated', `ge${new Date(from).toISOString()}`],
      ...(to === undefined ? [] : [['_lastUpdated', `lt${new Date(to).toISOString()}`]]),
      ['_elements', 'partOf'],
    ],
    guard,
    (r) => {
      const thread = (r as Communication).partOf?.find((p) => referenceType(p) === 'Communication')?.reference;
      const stored = Date.parse(r.meta?.lastUpdated ?? '');
      if (thread) {
        // Oldest first: the last one read is the thread's latest.
        threads.set(thread, Number.isNaN(stored) ? (threads.get(thread) ?? from) : Math.max(threads.get(thread) ?? stored, stored));
      }
      reached = Number.isNaN(stored) ? reached : Math.max(reached ?? stored, stored);
    },
    log
  );
  return { threads, stop, reached };
}

/**
 * readThreads, or why the guard stopped one of its reads.
 * @param medplum - The client.
 * @param chunk - Thread references with their open Tasks.
 * @param lifecycle - The lifecycle settings.
 * @param guard - The run's guard.
 * @param log - Logger.
 * @returns The threads, or quota / deadline.
 */
async function readThreadsOrStop(
  medplum: MedplumClient,
  chunk: [string, WithId<Task>[]][],
  lifecycle: LifecycleConfig,
  guard: ReadGuard,
  log: BotLog
): Promise<SweptThread[] | Stop> {
  try {
    return await readThreads(medplum, chunk, lifecycle, guard, log);
  } catch (err) {
    if (err instanceof ReadStopped) {
      return err.why;
    }
    throw err;
  }
}

/** A thread as the sweep read it: for the reroute decision and for the lifecycle. */
type SweptThread = ThreadToReroute & { lifecycle: LifecycleThread };

/**
 * Reads a chunk of threads: their headers by id, and the conversations of those in progress, each
 * back to the care team's last message (and, with the lifecycle on, to its open response Tasks'
 * openings), never their whole history.
 * @param medplum - The client.
 * @param chunk - Thread references with their open Tasks.
 * @param lifecycle - The lifecycle settings: when on, closed and deleted threads are returned too (to cancel their response Tasks).
 * @param guard - The run's guard, asked before each search (ReadStopped when it stops one).
 * @param log - Logger.
 * @returns The threads, each with its last patient message and whether it waits.
 */
async function readThreads(
  medplum: MedplumClient,
  chunk: [string, WithId<Task>[]][],
  lifecycle: LifecycleConfig,
  guard: ReadGuard,
  log: BotLog
): Promise<SweptThread[]> {
  const ids = chunk.map(([ref]) => ref.split('/')[1]);
  const headers = new Map(
    (await searchGuarded(medplum, 'Communication', { _id: ids.join(',') }, guard, 'thread header read', log)).map((h) => [getReferenceString(h), h as WithId<Communication>])
  );
  const open = chunk.filter(([ref]) => headers.get(ref)?.status === 'in-progress');
  const talks = await readConversations(
    medplum,
    open.map(([ref, tasks]) => ({
      thread: ref,
      header: headers.get(ref),
      ...(lifecycle.enabled ? lifecycleNeeds(tasks, (t) => isResponseTask(t, lifecycle.code)) : {}),
    })),
    { writer: lifecycle.enabled, guard }
  );
  const closed = chunk.length - open.length;
  if (closed && !lifecycle.enabled) {
    log.info(`sweep: ${closed} thread(s) with open Tasks are not in progress (closed or deleted); left alone`);
  }
  return chunk.flatMap(([ref, tasks]) => {
    const header = headers.get(ref);
    const inProgress = header?.status === 'in-progress';
    if (!inProgress && !lifecycle.enabled) {
      return [];
    }
    const talk = talks.get(ref)?.conversation ?? conversationOf(header, []);
    const lifecycleThread: LifecycleThread = { thread: ref, header, tasks, conversation: talk };
    // A response Task the care team answered is the lifecycle's to complete, not the reroute's to move (as on the event path).
    return [{ ...threadToDecide(lifecycleThread, lifecycle, inProgress), lifecycle: lifecycleThread }];
  });
}
