// What the bots left in the store after a step: every Task and every thread header, reduced to what
// the invariants look at, and the difference from the step before. Read straight from the in-memory
// store (no request, no quota); the oracle never asks the bots what they did.
import type { Communication, Task } from '@medplum/fhirtypes';
import { REMINDER_CODE, RESPONSE_CODE } from '../clinic';
import type { SimServer } from '../store';

export type TaskKind = 'response' | 'reminder' | 'other';
export const OPEN = ['draft', 'requested', 'received', 'accepted', 'ready', 'in-progress', 'on-hold'];

export interface TaskView {
  ref: string;
  version: string;
  /** When this version was stored. */
  updated: number;
  kind: TaskKind;
  thread?: string;
  status: string;
  open: boolean;
  owner?: string;
  priority?: string;
  authoredOn: number;
  /** The patient message a response Task answers (its input), when it names one. */
  input?: string;
  outputs: string[];
  /** Whom the real-time bot's latest reroute note says it took the Task from (what a person reads on the Task). */
  rerouteFrom?: string;
}

export interface HeaderView {
  ref: string;
  version: string;
  updated: number;
  status: string;
  recipients: string[];
}

export interface Snapshot {
  tasks: Map<string, TaskView>;
  headers: Map<string, HeaderView>;
}

function hasCode(task: Task, code: { system: string; code: string }): boolean {
  return !!task.code?.coding?.some((c) => c.system === code.system && c.code === code.code);
}

/**
 * Reads the store.
 * @param sim - The server.
 * @param threads - Thread references (headers are read by id).
 * @param previous - The snapshot before: unchanged versions are reused.
 * @returns The snapshot.
 */
export function snapshot(sim: SimServer, threads: Iterable<string>, previous?: Snapshot): Snapshot {
  const tasks = new Map<string, TaskView>();
  for (const task of sim.all<Task>('Task').values()) {
    const ref = `Task/${task.id}`;
    const before = previous?.tasks.get(ref);
    if (before && before.version === task.meta?.versionId) {
      tasks.set(ref, before);
      continue;
    }
    const kind: TaskKind = hasCode(task, RESPONSE_CODE) ? 'response' : hasCode(task, REMINDER_CODE) ? 'reminder' : 'other';
    tasks.set(ref, {
      ref,
      version: task.meta?.versionId ?? '',
      updated: Date.parse(task.meta?.lastUpdated ?? '') || 0,
      kind,
      thread: task.focus?.reference,
      status: task.status,
      open: OPEN.includes(task.status),
      owner: task.owner?.reference,
      priority: task.priority,
      authoredOn: Date.parse(task.authoredOn ?? '') || 0,
      input: task.input?.find((i) => i.valueReference?.reference?.startsWith('Communication/'))?.valueReference?.reference,
      outputs: (task.output ?? []).flatMap((o) => (o.valueReference?.reference ? [o.valueReference.reference] : [])),
      rerouteFrom: task.note
        ?.filter((n) => n.authorString === 'ooo-reroute')
        .at(-1)
        ?.extension?.flatMap((e) => e.extension ?? [])
        .find((e) => e.url === 'from')?.valueReference?.reference,
    });
  }
  const headers = new Map<string, HeaderView>();
  for (const ref of threads) {
    const header = sim.communication(ref.split('/')[1]) as Communication | undefined;
    if (!header) {
      continue;
    }
    const before = previous?.headers.get(ref);
    if (before && before.version === header.meta?.versionId) {
      headers.set(ref, before);
      continue;
    }
    headers.set(ref, {
      ref,
      version: header.meta?.versionId ?? '',
      updated: Date.parse(header.meta?.lastUpdated ?? '') || 0,
      status: header.status,
      recipients: (header.recipient ?? []).flatMap((r) => (r.reference ? [r.reference] : [])),
    });
  }
  return { tasks, headers };
}

/** What changed between two snapshots. */
export interface Changes {
  /** Tasks created: [undefined, after]; changed: [before, after]. */
  tasks: [TaskView | undefined, TaskView][];
  headers: [HeaderView, HeaderView][];
}

/**
 * The difference between two snapshots.
 * @param before - Earlier.
 * @param after - Later.
 * @returns Created and changed Tasks, changed headers.
 */
export function changes(before: Snapshot, after: Snapshot): Changes {
  const tasks: Changes['tasks'] = [];
  for (const [ref, view] of after.tasks) {
    const old = before.tasks.get(ref);
    if (old !== view) {
      tasks.push([old, view]);
    }
  }
  const headers: Changes['headers'] = [];
  for (const [ref, view] of after.headers) {
    const old = before.headers.get(ref);
    if (old && old !== view) {
      headers.push([old, view]);
    }
  }
  return { tasks, headers };
}
