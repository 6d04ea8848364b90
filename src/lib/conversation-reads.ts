// One reading of a thread's conversation for every decision (event path, sweep, lifecycle): the
// messages from the care team's last message (inclusive) to now, plus, per thread, everything since
// an instant the caller names (an open response Task's opening message and authoredOn). What was
// said before the care team last spoke changes none of the decisions, so a thread of 5,000 messages
// costs what one of 50 costs.
//
// How: a message's time (`sent`, else `meta.lastUpdated`) is at most its lastUpdated (give or take a
// device's clock skew), so once a care-team message C was read and every message stored since C's
// time was read, no unread message can come after C. The threads of a chunk are searched together
// (`part-of=T1,..,T100`), newest first, one page at a time, each page below the oldest instant the
// last one reached (`_lastUpdated=lt`, a key, never an offset) and only for the threads not settled
// yet: a thread whose care team answered recently settles on the first page, a thread nobody has
// answered yet settles as soon as a page shows nothing older of it, and only a thread quiet for long
// costs more pages, alone. The newest page of a short thread is also the whole thread.
import type { MedplumClient, WithId } from '@medplum/core';
import type { Bundle, Communication, Task } from '@medplum/fhirtypes';
import { MAX_PAGE_SIZE, readLatest, readPages } from './fhir';
import { mayRead, UNGUARDED } from './read-guard';
import type { Guard } from './read-guard';
import { answeredTasks, openingRef, taskTime } from './response-lifecycle';
import type { LifecycleConfig, LifecycleThread } from './response-lifecycle';
import type { ThreadToReroute } from './reroute-plan';
import { conversation, currentEpisode, isLater, messagePoint } from './thread';
import type { Conversation, MessagePoint } from './thread';

/** A `sent` this far ahead of the server's clock (a device's clock) is still read in order. */
export const CLOCK_SKEW_MS = 10 * 60_000;
/** Threads per chunk search (their references go in the URL). */
export const THREADS_PER_READ = 100;
/** Messages a page asks for per unsettled thread (at least a page of 50, at most the server's 1000). */
const PAGE_PER_THREAD = 50;
/** Pages after which the last writer is no longer looked for (the episode always is). */
const WRITER_PAGES = 3;
/** What the decisions read of a message: who sent it and when, never its text. */
const ELEMENTS = 'partOf,sender,sent,status';
/** The care-team senders routing prefers: people. */
const PERSON = /^(Practitioner|PractitionerRole)\//;

/** One thread to read, and what its decisions need beyond the current episode. */
export interface ConversationToRead {
  /** Reference string of the thread header. */
  thread: string;
  /** The header, when read: a header someone wrote is the thread's first message. */
  header?: WithId<Communication>;
  /** Every message whose time is at or after this instant (epoch ms) is read too. */
  since?: number;
  /** Messages read whatever their age, with every message from their time on (an open response Task's opening message). */
  include?: string[];
}

/** How far back a read goes. */
export interface ConversationReadOptions {
  /**
   * Also read back to the last care-team message by a person (Practitioner or PractitionerRole):
   * routing a new response Task prefers them. Given up, for a thread read alone, after its
   * first pages; the episode itself is always read whole.
   */
  writer?: boolean;
  /**
   * The run's guard, asked before every search: when it says no, nothing more is sent and
   * ReadStopped is thrown (a conversation read in part decides nothing). Default: unguarded.
   */
  guard?: Guard;
}

/** A thread's conversation as read, and how much of the thread that is. */
export interface ConversationRead {
  conversation: Conversation;
  /** Every message stored at or after this instant was read (-Infinity: the whole thread). */
  readFrom: number;
}

/** What the reader knows of one thread. */
interface Reading {
  need: ConversationToRead;
  messages: Map<string, WithId<Communication>>;
  readFrom: number;
  /** Include refs asked for and not found (deleted, or in another thread). */
  missing: Set<string>;
  writer: boolean;
}

/**
 * Reads the conversations of threads (any number; searched a hundred at a time).
 * @param medplum - The client.
 * @param threads - The threads, with their headers and needs.
 * @param options - Whether the last writer is needed.
 * @returns Per thread reference, its conversation and how far back it was read.
 */
export async function readConversations(
  medplum: MedplumClient,
  threads: ConversationToRead[],
  options: ConversationReadOptions = {}
): Promise<Map<string, ConversationRead>> {
  const readings = new Map<string, Reading>();
  for (const need of threads) {
    readings.set(need.thread, { need, messages: new Map(), readFrom: Infinity, missing: new Set(), writer: !!options.writer });
  }
  const all = [...readings.values()];
  for (let i = 0; i < all.length; i += THREADS_PER_READ) {
    await readChunk(medplum, all.slice(i, i + THREADS_PER_READ), options.guard ?? UNGUARDED);
  }
  return new Map(all.map((r) => [r.need.thread, { conversation: talkOf(r), readFrom: r.readFrom }]));
}

async function readChunk(medplum: MedplumClient, chunk: Reading[], guard: Guard): Promise<void> {
  for (let page = 0; ; page++) {
    const pending = chunk.filter((r) => !settled(r));
    if (!pending.length) {
      return;
    }
    if (page === 1) {
      // An include message not met on the first page may have been deleted: asked for by id, once.
      await readIncluded(medplum, pending, guard);
    }
    if (page === WRITER_PAGES) {
      pending.forEach((r) => (r.writer = false)); // the last writer is not worth a long history; the episode is
    }
    await readOlder(medplum, pending, Math.min(MAX_PAGE_SIZE, PAGE_PER_THREAD * pending.length * 2 ** page), guard);
  }
}

/**
 * The newest page of the pending threads' messages below what was read of them (they were all read
 * down to the same instant: pages go back together). The last page ends them all.
 */
async function readOlder(medplum: MedplumClient, pending: Reading[], count: number, guard: Guard): Promise<void> {
  const byThread = new Map(pending.map((r) => [r.need.thread, r]));
  const below = Math.max(...pending.map((r) => r.readFrom));
  const query = [
    ['part-of', [...byThread.keys()].join(',')],
    ...(below === Infinity ? [] : [['_lastUpdated', `lt${new Date(below).toISOString()}`]]),
    ['_elements', ELEMENTS],
  ];
  mayRead(guard, 'conversation read');
  const page = await readLatest(medplum, 'Communication', query, count);
  const found = page.resources as WithId<Communication>[];
  found.forEach((m) => addMessage(byThread, m));
  if (!page.more || !found.length) {
    pending.forEach((r) => (r.readFrom = -Infinity)); // nothing older of any of them
    return;
  }
  // The oldest instant of the page may have more messages than the page took: read again from it.
  const oldest = Date.parse(found[found.length - 1].meta?.lastUpdated ?? '');
  if (Number.isNaN(oldest)) {
    throw new Error('Communication read: a message without meta.lastUpdated');
  }
  if (oldest + 1 < below) {
    pending.forEach((r) => (r.readFrom = oldest + 1));
    return;
  }
  // A whole page of one instant (a bulk import): that instant alone, by cursor, then below it.
  const instant = [...query.filter(([name]) => name !== '_lastUpdated'), ['_lastUpdated', `ge${new Date(oldest).toISOString()}`], ['_lastUpdated', `lt${new Date(oldest + 1).toISOString()}`]];
  mayRead(guard, 'conversation read');
  for await (const p of readPages(medplum, 'Communication', instant)) {
    p.entry?.forEach((e) => addMessage(byThread, e.resource as WithId<Communication>));
    if (hasNext(p)) {
      mayRead(guard, 'conversation read');
    }
  }
  pending.forEach((r) => (r.readFrom = oldest));
}

/** The include messages not read yet, by id, in one search. */
async function readIncluded(medplum: MedplumClient, pending: Reading[], guard: Guard): Promise<void> {
  const wanted = pending.flatMap((r) => (r.need.include ?? []).filter((ref) => !r.messages.has(ref)).map((ref) => [ref, r] as const));
  if (!wanted.length) {
    return;
  }
  const byThread = new Map(pending.map((r) => [r.need.thread, r]));
  const ids = [...new Set(wanted.map(([ref]) => ref.split('/')[1]))];
  mayRead(guard, 'conversation read');
  for await (const page of readPages(medplum, 'Communication', [['_id', ids.join(',')], ['_elements', ELEMENTS]])) {
    for (const entry of page.entry ?? []) {
      addMessage(byThread, entry.resource as WithId<Communication>);
    }
    if (hasNext(page)) {
      mayRead(guard, 'conversation read');
    }
  }
  for (const [ref, reading] of wanted) {
    if (!reading.messages.has(ref)) {
      reading.missing.add(ref);
    }
  }
}

function hasNext(page: Bundle): boolean {
  return !!page.link?.some((l) => l.relation === 'next');
}

function addMessage(byThread: Map<string, Reading>, message: WithId<Communication> | undefined): void {
  if (!message?.id) {
    return;
  }
  for (const part of message.partOf ?? []) {
    byThread.get(part.reference ?? '')?.messages.set(`Communication/${message.id}`, message);
  }
}

function talkOf(reading: Reading): Conversation {
  return conversationOf(reading.need.header, [...reading.messages.values()]);
}

/**
 * Whether a thread was read far enough back: every message since the care team's last message (by a
 * person, when the writer is needed), since the caller's instant, and since each include message.
 * @param reading - The thread as read so far.
 * @returns True when reading further back would change no decision.
 */
function settled(reading: Reading): boolean {
  if (reading.readFrom === -Infinity) {
    return true;
  }
  const included = (reading.need.include ?? []).filter((ref) => !reading.missing.has(ref));
  if (included.some((ref) => !reading.messages.has(ref))) {
    return false;
  }
  const talk = talkOf(reading);
  const lastCareTeam = latest(talk.points.filter((p) => p.role === 'care-team'));
  const writer = reading.writer ? latest(talk.points.filter((p) => p.role === 'care-team' && PERSON.test(p.sender ?? ''))) : lastCareTeam;
  if (!lastCareTeam || !writer) {
    return false; // the care team's last message (or the last writer) is further back, or there is none
  }
  const since = [
    writer.time,
    lastCareTeam.time,
    ...(reading.need.since === undefined ? [] : [reading.need.since]),
    ...included.map((ref) => messagePoint(reading.messages.get(ref) as WithId<Communication>).time),
  ];
  return reading.readFrom <= Math.min(...since) - CLOCK_SKEW_MS;
}

function latest(points: MessagePoint[]): MessagePoint | undefined {
  return points.reduce<MessagePoint | undefined>((a, p) => (!a || isLater(p, a) ? p : a), undefined);
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
 * What the lifecycle needs beyond the current episode: every message since the earliest of its open
 * response Tasks' opening messages and making (openedAt: a reply counts only after its question).
 * @param tasks - The thread's open Tasks.
 * @param isResponse - Which of them are response Tasks.
 * @returns `since` and `include` for the read (since -Infinity: a Task with neither, read it all).
 */
export function lifecycleNeeds(tasks: Task[], isResponse: (task: Task) => boolean): Pick<ConversationToRead, 'since' | 'include'> {
  const open = tasks.filter(isResponse);
  const times = open.map((t) => taskTime(t) ?? (openingRef(t) ? undefined : -Infinity)).filter((t): t is number => t !== undefined);
  const include = [...new Set(open.map(openingRef).filter((r): r is string => !!r))];
  return { since: times.length ? Math.min(...times) : undefined, include: include.length ? include : undefined };
}

/**
 * Who waits, from a conversation: one definition for the event path and the sweep. The patient
 * waits when the thread is in progress and a patient-side message is the latest person's message;
 * the trigger is the latest patient-side message (the decision replays the event at its time;
 * decided on only while the patient waits: the read may not reach back to it otherwise).
 * @param thread - The thread's reference, header and open Tasks.
 * @param talk - The conversation as read.
 * @param inProgress - Whether the thread is open (the event path decides a thread whose header it
 *   cannot read as open; the sweep does not).
 * @returns The thread, for planThread.
 */
export function threadToReroute(
  thread: Pick<ThreadToReroute, 'thread' | 'header' | 'tasks'>,
  talk: Conversation,
  inProgress: boolean
): ThreadToReroute {
  const last = talk.points.at(-1);
  const lastPatient = [...talk.points].reverse().find((p) => p.role === 'patient');
  return {
    thread: thread.thread,
    header: thread.header,
    tasks: thread.tasks,
    trigger: lastPatient?.ref,
    triggerTime: lastPatient?.time,
    triggerArrived: lastPatient?.stored,
    waitingSince: currentEpisode(talk).opening?.time,
    waitingOnCareTeam: inProgress && last?.role === 'patient',
  };
}

/**
 * The thread the reroute decides, from the lifecycle's view of it: who waits (threadToReroute), and
 * only the Tasks the lifecycle does not complete. A response Task the care team already answered is
 * the lifecycle's to complete, with its answer as output and its owner kept (the SLA counts that
 * reply as theirs), never the reroute's to move. One definition for the event path and the sweep.
 * @param thread - The thread as read for the lifecycle (header, open Tasks, conversation).
 * @param config - The lifecycle settings (off: no Task is answered, all are decided).
 * @param inProgress - Whether the thread is open (see threadToReroute).
 * @returns The thread, for planThread.
 */
export function threadToDecide(thread: LifecycleThread, config: LifecycleConfig, inProgress: boolean): ThreadToReroute {
  const answered = new Set(answeredTasks(thread, config).map((a) => a.task.id));
  const tasks = thread.tasks.filter((t) => !answered.has(t.id));
  return threadToReroute({ thread: thread.thread, header: thread.header, tasks }, thread.conversation, inProgress);
}
