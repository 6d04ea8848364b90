// What a run has to look at, counted by the oracle from the store and its record when the run
// starts: the quantities invariant 7's published bounds are stated in.
import type { CostFacts } from '../cost-bounds';
import type { RunKind } from '../runs';
import type { ClinicModel } from './model';
import { conversationAt, episodeAt } from './record';
import type { ClinicRecord } from './record';
import type { Snapshot } from './snapshot';

const DAY = 86_400_000;
/** The README: a clean sweep is recorded when the one recorded is six hours old. */
const MARKER_AGE_MS = 6 * 3_600_000;

/**
 * Counts for a run about to start.
 * @param kind - The run's kind.
 * @param record - The oracle's record.
 * @param snap - The store now.
 * @param now - Epoch ms.
 * @param message - For an event: the message.
 * @param model - Who is available (for an event: whether it has to read covers).
 * @param lastCleanSweep - For a sweep: when the last clean sweep started (its look-back reaches back to the one the marker records, at most 6 hours before it, 10 minutes more, at most 14 days).
 * @returns The facts.
 */
export function costFacts(
  kind: RunKind,
  record: ClinicRecord,
  snap: Snapshot,
  now: number,
  message: string | undefined,
  model: ClinicModel,
  lastCleanSweep?: number
): CostFacts {
  const openTasks = [...snap.tasks.values()].filter((t) => t.open && t.thread);
  if (kind === 'event') {
    const m = message ? record.messages.get(message) : undefined;
    const thread = m ? record.threads.get(m.thread) : undefined;
    const mine = openTasks.filter((t) => t.thread === m?.thread);
    const openResponse = mine.some((t) => t.kind === 'response');
    // Covers are read when an owner whose Task may leave has one, or (opening a Task) when no
    // candidate is available: the last care-team writer and the header's recipients.
    const coverOf = (ref: string | undefined): boolean => !!ref && !!model.clinic.providers.find((p) => p.ref === ref)?.cover;
    const away = (ref: string | undefined): boolean => !!ref && model.isProvider(ref) && !model.available(ref, now, now);
    // The lifecycle's candidates: the care-team person who last wrote, then the header's recipients.
    const lastWriter = thread ? conversationAt(thread, now).filter((x) => x.role === 'care-team').at(-1)?.sender : undefined;
    const candidates = [lastWriter, ...(m ? (snap.headers.get(m.thread)?.recipients ?? []) : [])].filter((r): r is string => model.isProvider(r));
    const covers =
      mine.some((t) => away(t.owner) && coverOf(t.owner)) || (!openResponse && candidates.every((c) => away(c)) && candidates.some((c) => coverOf(c)));
    return {
      kind,
      role: m?.role === 'patient' ? 'patient' : m?.role === 'care-team' ? 'care-team' : 'other',
      openTasks: mine.length,
      openResponse,
      // The event reads the conversation when it would move a response Task (its owner unavailable now).
      responseMayMove: mine.some((t) => t.kind === 'response' && away(t.owner)),
      covers,
      // "a message that arrives late": sent more than 2 minutes before the run (docs/design.md).
      late: !!m && now - m.time > 2 * 60_000,
      messages: thread?.messages.length ?? 0,
    };
  }
  const openThreads = [...record.threads.values()].filter((t) => t.createdAt <= now && record.isOpen(t.ref, now));
  if (kind === 'sweep') {
    const withTask = new Set(openTasks.map((t) => t.thread));
    let recentMessages = 0;
    let olderMessages = 0;
    const from = lastCleanSweep === undefined ? now - DAY : Math.max(now - 14 * DAY, Math.min(now - DAY, lastCleanSweep - MARKER_AGE_MS - 10 * 60_000));
    const recent = new Set<string>();
    for (const t of record.threads.values()) {
      for (const m of t.messages) {
        if (m.stored <= now && m.stored >= from && m.ref !== t.ref) {
          recentMessages += m.stored >= now - DAY ? 1 : 0;
          olderMessages += m.stored < now - DAY ? 1 : 0;
          recent.add(t.ref);
        }
      }
    }
    const candidates = new Set([...withTask, ...recent].filter((r): r is string => !!r));
    const candidateMessages = [...candidates].reduce((n, r) => n + (record.threads.get(r)?.messages.length ?? 0), 0);
    return { kind, openTasks: openTasks.length, recentMessages, olderMessages, candidates: candidates.size, candidateMessages, waiting: candidates.size, withTask: withTask.size };
  }
  const since = now - 14 * DAY;
  const reminded = new Set(openTasks.filter((t) => t.kind === 'reminder').map((t) => t.thread));
  let windowMessages = 0;
  let openThreadMessages = 0;
  let threads = 0;
  let waiting = 0;
  for (const t of record.threads.values()) {
    const known = t.messages.filter((m) => m.stored <= now);
    const recent = known.filter((m) => m.time >= since || m.stored >= since);
    windowMessages += recent.length;
    const open = record.isOpen(t.ref, now);
    if (reminded.has(t.ref) || (open && recent.some((m) => m.role === 'patient'))) {
      threads++;
      waiting += open && episodeAt(t, now) ? 1 : 0;
    }
    if (open) {
      openThreadMessages += known.length;
    }
  }
  return { kind: 'stale', windowMessages, openReminders: reminded.size, threads, waiting, openHeaders: openThreads.length, openThreadMessages };
}
