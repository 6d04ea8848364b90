// The oracle's own record of the clinic's conversations: who wrote what, when it was sent and when
// it was stored, which threads people closed, and what people did to the bots' work. Everything here
// is written by the simulation as it acts, never read back from the bots' output. Episodes are
// computed from it by the project's definitions (docs: "A patient is waiting from the FIRST
// patient-side message after the care team last spoke"), in code of the oracle's own.

export type Role = 'patient' | 'care-team' | 'automated';

/** One message (or a header with a sender), as the simulation wrote it. */
export interface MessageRecord {
  ref: string;
  thread: string;
  role: Role;
  sender: string;
  /** `sent`, else when stored: the time every component uses. */
  time: number;
  /** When it was stored (the bots cannot see it before). */
  stored: number;
  hasSent: boolean;
}

export interface ThreadRecord {
  ref: string;
  subject: string;
  category: string;
  priority: string;
  /** Providers the header listed when people created it. */
  recipients: string[];
  createdAt: number;
  closedAt?: number;
  /** Messages (and the header when someone wrote it), in the order stored. */
  messages: MessageRecord[];
}

/** A waiting episode: the patient side wrote after the care team last spoke. */
export interface Episode {
  /** The first patient-side message after the care team's last message (or the thread's start). */
  opening: MessageRecord;
  /** The latest patient-side message. */
  latest: MessageRecord;
}

/** The order of the conversation: by time, ties by reference (the project's tie-break). */
function later(a: MessageRecord, b: MessageRecord): boolean {
  return a.time > b.time || (a.time === b.time && a.ref > b.ref);
}

/**
 * People's messages known at an instant, oldest first.
 * @param thread - The thread.
 * @param knownAt - Messages stored after this are not known yet.
 * @returns The conversation.
 */
export function conversationAt(thread: ThreadRecord, knownAt: number): MessageRecord[] {
  // Sorted once per message added (a long thread is asked about at every step).
  const cache = sorted.get(thread);
  let all: MessageRecord[];
  if (cache && cache.count === thread.messages.length) {
    all = cache.people;
  } else {
    all = thread.messages.filter((m) => m.role !== 'automated').sort((a, b) => (later(a, b) ? 1 : later(b, a) ? -1 : 0));
    sorted.set(thread, { count: thread.messages.length, people: all, lastStored: Math.max(0, ...all.map((m) => m.stored)) });
  }
  const lastStored = sorted.get(thread)?.lastStored ?? 0;
  return lastStored <= knownAt ? all : all.filter((m) => m.stored <= knownAt);
}

const sorted = new WeakMap<ThreadRecord, { count: number; people: MessageRecord[]; lastStored: number }>();

/**
 * The waiting episode at an instant, if the patient side is waiting.
 * @param thread - The thread.
 * @param knownAt - What is known by then.
 * @returns The episode, or undefined (the care team spoke last, or nobody wrote).
 */
export function episodeAt(thread: ThreadRecord, knownAt: number): Episode | undefined {
  const talk = conversationAt(thread, knownAt);
  const last = talk.at(-1);
  if (!last || last.role !== 'patient') {
    return undefined;
  }
  let i = talk.length - 1;
  while (i > 0 && talk[i - 1].role === 'patient') {
    i--;
  }
  return { opening: talk[i], latest: last };
}

/**
 * The latest patient-side message known at an instant, whether or not the care team answered it.
 * @param thread - The thread.
 * @param knownAt - What is known by then.
 * @returns The message, or undefined.
 */
export function latestPatientAt(thread: ThreadRecord, knownAt: number): MessageRecord | undefined {
  return conversationAt(thread, knownAt)
    .filter((m) => m.role === 'patient')
    .at(-1);
}

/** What people did to the bots' work, which the bots must not undo. */
export interface PersonAct {
  kind: 'reassign' | 'readd' | 'dismiss' | 'handoff';
  thread: string;
  at: number;
  /** The Task reassigned, handed off to, or the reminder dismissed. */
  task?: string;
  /** The owner or recipient a person chose. */
  who?: string;
  /** The latest patient message when they acted (reassign, readd). */
  latestPatient?: string;
  /** The waiting episode's first message when they acted (dismiss, handoff). */
  opening?: string;
  /** A reassignment back to the owner the bot's reroute took the Task from ("Undo a reroute"). */
  givenBack?: boolean;
}

/** The whole record. */
export class ClinicRecord {
  readonly threads = new Map<string, ThreadRecord>();
  readonly messages = new Map<string, MessageRecord>();
  readonly acts: PersonAct[] = [];

  addThread(thread: ThreadRecord): void {
    this.threads.set(thread.ref, thread);
  }

  addMessage(message: MessageRecord): void {
    this.threads.get(message.thread)?.messages.push(message);
    this.messages.set(message.ref, message);
  }

  close(thread: string, at: number): void {
    const t = this.threads.get(thread);
    if (t && t.closedAt === undefined) {
      t.closedAt = at;
    }
  }

  isOpen(thread: string, at: number): boolean {
    const t = this.threads.get(thread);
    return !!t && (t.closedAt === undefined || t.closedAt > at);
  }
}
