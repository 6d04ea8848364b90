// What a what-if reads, paced by the caller's quota (QuotaPacer) with the export's progress report:
// the messages stored since the replay's start (who sent them and when, never their text), the
// Tasks on threads changed since then or still open, the threads' headers, older messages of the
// threads whose patient was already waiting then (back to the care team's last message), and the
// owners' Schedules and absences. Only searches: nothing is written.
import type { MedplumClient, WithId } from '@medplum/core';
import type { Bundle, BundleEntry, Communication, Resource, ResourceType, Task } from '@medplum/fhirtypes';
import { OPEN_TASK_STATUSES, readPages, referenceType } from '../lib/fhir';
import type { SearchQuery } from '../lib/fhir';
import { QUOTA_COST } from '../lib/quota';
import { isReroutableOwner } from '../lib/reroute-plan';
import { messagePoint } from '../lib/thread';
import type { MessagePoint } from '../lib/thread';
import { OwnerDirectory } from '../realtime/owners';
import type { Progress } from '../sla/progress';
import type { QuotaPacer } from '../sla/quota-pacer';
import { madeByBots } from './keys';
import { headerBeforeBots, outsideTasks } from './outside';
import type { PeriodFacts, PeriodThread } from './replay';
import { readRunHistory } from './runs';
import type { RunHistory } from './runs';

/** What a message read asks for: who sent it and when. */
const MESSAGE_ELEMENTS = 'partOf,sender,sent,status';
/** What a header read asks for. */
const HEADER_ELEMENTS = 'subject,sender,sent,category,priority,status,recipient';
/** Threads per header search (their ids go in the URL). */
const PER_SEARCH = 100;
/** Threads per search of older messages. */
const LOOKBACK_THREADS = 50;

/** The period to read. */
export interface Window {
  from: number;
  since: number;
  until: number;
  /** hourly: replay the scheduled runs at exact hours, without reading the run history. */
  runs?: 'history' | 'hourly';
}

/** What was read: the replay's facts, and the Tasks as they are (what the bots did). */
export interface PeriodRead {
  facts: PeriodFacts;
  /** Every Task on the period's threads, as it is now. */
  tasks: WithId<Task>[];
  /** When the replay runs the scheduled bots, in words (their run history, or every hour and why). */
  runsNote: string;
}

/**
 * Reads a period.
 * @param medplum - The client (read access is enough).
 * @param pacer - Paces each search by the quota.
 * @param progress - Progress report.
 * @param window - The period, with the replay's warm-up.
 * @param covers - Owners the settings name (OOO_COVERAGE keys and values, current and proposed).
 * @returns The facts.
 */
export async function readPeriod(medplum: MedplumClient, pacer: QuotaPacer, progress: Progress, window: Window, covers: string[]): Promise<PeriodRead> {
  const fromIso = new Date(window.from).toISOString();
  const all = async <T extends Resource>(phase: string, type: ResourceType, query: SearchQuery, into: Map<string, WithId<T>>): Promise<void> => {
    progress.phase(phase, 0);
    const pages = readPages(medplum, type, query);
    for (;;) {
      const page = await pacer.run(QUOTA_COST.search, () => pages.next());
      if (page.done) {
        return;
      }
      for (const e of page.value.entry ?? []) {
        if (e.resource?.id && e.search?.mode !== 'include') {
          into.set(e.resource.id, e.resource as WithId<T>);
        }
      }
      progress.tick(into.size);
    }
  };

  const messages = new Map<string, WithId<Communication>>();
  await all('messages', 'Communication', { 'part-of:missing': 'false', _lastUpdated: `ge${fromIso}`, _elements: MESSAGE_ELEMENTS }, messages);
  const tasks = new Map<string, WithId<Task>>();
  await all('Tasks', 'Task', { 'focus:missing': 'false', _lastUpdated: `ge${fromIso}` }, tasks);
  await all('open Tasks', 'Task', { 'focus:missing': 'false', status: OPEN_TASK_STATUSES.join(',') }, tasks);
  const threadTasks = [...tasks.values()].filter((t) => referenceType(t.focus) === 'Communication' && Date.parse(t.authoredOn ?? t.meta?.lastUpdated ?? '') < window.until);

  const pointsOf = new Map<string, Map<string, MessagePoint>>();
  const addMessage = (m: WithId<Communication>): void => {
    const thread = m.partOf?.find((p) => referenceType(p) === 'Communication')?.reference;
    if (thread && m.status !== 'entered-in-error') {
      const point = messagePoint(m);
      if (point.time < window.until) {
        pointsOf.set(thread, (pointsOf.get(thread) ?? new Map()).set(point.ref, point));
      }
    }
  };
  [...messages.values()].forEach(addMessage);
  const refs = [...new Set([...pointsOf.keys(), ...threadTasks.map((t) => t.focus?.reference as string)])];

  const headers = new Map<string, WithId<Communication>>();
  progress.phase('threads', refs.length);
  for (let i = 0; i < refs.length; i += PER_SEARCH) {
    const ids = refs.slice(i, i + PER_SEARCH).map((r) => r.split('/')[1]);
    const found = new Map<string, WithId<Communication>>();
    const pages = readPages(medplum, 'Communication', { _id: ids.join(','), _elements: HEADER_ELEMENTS });
    for (;;) {
      const page = await pacer.run(QUOTA_COST.search, () => pages.next());
      if (page.done) {
        break;
      }
      page.value.entry?.forEach((e) => e.resource?.id && found.set(e.resource.id, e.resource as WithId<Communication>));
    }
    found.forEach((h) => !h.partOf?.length && headers.set(`Communication/${h.id}`, h));
    progress.tick(Math.min(i + PER_SEARCH, refs.length));
  }

  // A thread whose first message read is the patient's: its patient may have been waiting before the
  // replay starts, since the care team's last message. Its older messages are read (who and when only).
  const threads: PeriodThread[] = [];
  const needLookBack = [...headers.keys()].filter((ref) => {
    const points = [...(pointsOf.get(ref)?.values() ?? [])].filter((p) => p.role === 'patient' || p.role === 'care-team').sort((a, b) => a.time - b.time);
    return !points.length || points[0].role === 'patient';
  });
  progress.phase('older messages', needLookBack.length);
  for (let i = 0; i < needLookBack.length; i += LOOKBACK_THREADS) {
    const chunk = needLookBack.slice(i, i + LOOKBACK_THREADS);
    const older = new Map<string, WithId<Communication>>();
    const pages = readPages(medplum, 'Communication', { 'part-of': chunk.join(','), _lastUpdated: `lt${fromIso}`, _elements: MESSAGE_ELEMENTS });
    for (;;) {
      const page = await pacer.run(QUOTA_COST.search, () => pages.next());
      if (page.done) {
        break;
      }
      page.value.entry?.forEach((e) => e.resource?.id && older.set(e.resource.id, e.resource as WithId<Communication>));
    }
    older.forEach(addMessage);
    progress.tick(Math.min(i + LOOKBACK_THREADS, needLookBack.length));
  }
  for (const [ref, header] of headers) {
    const closedAt = header.status === 'in-progress' ? undefined : Date.parse(header.meta?.lastUpdated ?? '') || window.from;
    if (closedAt !== undefined && closedAt < window.from) {
      continue; // closed before the replay starts: no bot works on it
    }
    const own = threadTasks.filter((t) => t.focus?.reference === ref);
    threads.push({ header: headerBeforeBots(header, own), points: [...(pointsOf.get(ref)?.values() ?? [])], closedAt });
  }

  const owners = new OwnerDirectory();
  const wanted = [
    ...new Set([
      ...covers,
      ...threads.flatMap((t) => [...(t.header.recipient ?? []).map((r) => r.reference), ...t.points.filter((p) => p.role === 'care-team').map((p) => p.sender)]),
      ...threadTasks.map((t) => t.owner?.reference),
    ]),
  ].filter(isReroutableOwner);
  progress.phase('owners', wanted.length);
  let pending = wanted;
  while (pending.length) {
    const result = await owners.read(medplum, pending, { start: window.from, end: window.until }, { nearDeadline: () => false });
    if (result.notRead.length === pending.length) {
      await pacer.wait(pacer.left()?.secondsUntilReset ?? 60);
    }
    pending = result.notRead;
    progress.tick(wanted.length - pending.length);
  }
  const history: RunHistory = window.runs === 'hourly' ? { unread: 'asked for with --runs hourly' } : await readRunHistory(medplum, pacer, window);
  // A Task made without authoredOn (by a person, another integration) was made when its first
  // version was stored, not at its last change: its history says when (10 points a Task).
  const undated = threadTasks.filter((t) => !t.authoredOn && !madeByBots(t) && headers.has(t.focus?.reference as string) && Date.parse(t.meta?.lastUpdated ?? '') >= window.from);
  const firstStored = await readFirstStored(medplum, pacer, progress, undated.map((t) => t.id));
  const facts: PeriodFacts = {
    from: window.from,
    since: window.since,
    until: window.until,
    runs: 'runs' in history ? history.runs : undefined,
    threads,
    outsideTasks: outsideTasks(threadTasks.filter((t) => headers.has(t.focus?.reference as string)), window.from, firstStored),
    owners: new Map(wanted.flatMap((o) => (owners.facts(o) ? [[o, owners.facts(o) as NonNullable<ReturnType<OwnerDirectory['facts']>>]] : []))),
  };
  const runsNote =
    'runs' in history
      ? `scheduled runs replayed when the bots ran (their run history): ${history.runs.sweep.length} sweeps, ${history.runs.reminders.length} reminders runs`
      : `scheduled runs replayed at every exact hour (the run history was not read: ${history.unread})`;
  return { facts, tasks: threadTasks, runsNote };
}

/** Task histories per batch. */
const HISTORIES_PER_BATCH = 50;

/**
 * When each Task was first stored: the oldest version on its history's first page (newest first,
 * 100 versions; a Task with more is dated by the oldest of those, still no later than it was).
 * Entries the quota refused are asked again after the reset.
 * @param medplum - The client.
 * @param pacer - Paces each batch by the quota.
 * @param progress - Progress report.
 * @param ids - Task ids.
 * @returns Epoch ms by id (Tasks whose history could not be read are left out).
 */
async function readFirstStored(medplum: MedplumClient, pacer: QuotaPacer, progress: Progress, ids: string[]): Promise<Map<string, number>> {
  const first = new Map<string, number>();
  if (!ids.length) {
    return first;
  }
  progress.phase('Task histories', ids.length);
  let pending = ids;
  while (pending.length) {
    const refused: string[] = [];
    for (let i = 0; i < pending.length; i += HISTORIES_PER_BATCH) {
      const chunk = pending.slice(i, i + HISTORIES_PER_BATCH);
      const entry: BundleEntry[] = chunk.map((id) => ({ request: { method: 'GET', url: `Task/${id}/_history` } }));
      const response = await pacer.run(QUOTA_COST.history * entry.length, () => medplum.executeBatch({ resourceType: 'Bundle', type: 'batch', entry }));
      chunk.forEach((id, k) => {
        const answer = response.entry?.[k];
        if (answer?.response?.status?.startsWith('429')) {
          refused.push(id);
          return;
        }
        const times = ((answer?.resource as Bundle | undefined)?.entry ?? []).map((e) => Date.parse(e.resource?.meta?.lastUpdated ?? '')).filter((t) => t > 0);
        if (times.length) {
          first.set(id, Math.min(...times));
        }
      });
      progress.tick(first.size);
    }
    if (refused.length) {
      await pacer.wait(pacer.left()?.secondsUntilReset ?? 60);
    }
    pending = refused;
  }
  return first;
}
