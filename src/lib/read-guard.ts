// Reads that never send a request only to have it refused: before each one, the run's deadline and
// the quota the server last announced (its RateLimit header) are checked. One guard per run, passed
// to every read: the reminders bot (src/stale), the real-time bot's event path and sweep.
import { getReferenceString } from '@medplum/core';
import type { MedplumClient, WithId } from '@medplum/core';
import type { Resource, ResourceType, Task } from '@medplum/fhirtypes';
import { openThreadTaskQuery, readPages, referenceType } from './fhir';
import type { SearchQuery } from './fhir';
import { QUOTA_COST, quotaLeft } from './quota';

/** Why reading stopped: the quota left this minute could not cover the next search, or the deadline is near. */
export type Stop = 'quota' | 'deadline';

/**
 * Decides, before each read, whether a run may make it: not near its deadline, and the quota the
 * server last announced covers it with `reserve` points to spare (for writes the run must still
 * make). A run never sends a request only to have it refused (429).
 */
export class ReadGuard {
  /** Quota points kept for the run's own writes (the reminders' reconcile marker; the sweep's share for the event path). */
  reserve = 0;
  private answered = false;

  /**
   * @param medplum - The client (its last response's RateLimit header says what is left).
   * @param nearDeadline - The run's deadline check.
   */
  constructor(
    private readonly medplum: MedplumClient,
    readonly nearDeadline: () => boolean
  ) {}

  /**
   * Whether the next read may go.
   * @param cost - Its points (a search: 20).
   * @returns undefined to read, else why not.
   */
  check(cost: number = QUOTA_COST.search): Stop | undefined {
    if (this.nearDeadline()) {
      return 'deadline';
    }
    if (!this.answered) {
      // The run's first request: what the client knows of the quota may be an earlier run's.
      this.answered = true;
      return undefined;
    }
    const left = quotaLeft(this.medplum)?.points;
    return left !== undefined && left < cost + this.reserve ? 'quota' : undefined;
  }
}

/** What a read needs of a guard. */
export type Guard = Pick<ReadGuard, 'check'>;

/** A guard that never stops (a read outside a run). */
export const UNGUARDED = { check: (): Stop | undefined => undefined } as Guard;

/**
 * What stops a read: in a run, the run's guard (the quota the last response announced, less what
 * it keeps, and the Bot's deadline); outside one (a report, a replay), a deadline alone.
 */
export type ReadLimits = Guard | { nearDeadline: () => boolean };

/**
 * The guard a read asks.
 * @param limits - A run's guard, or a deadline.
 * @returns The guard.
 */
export function guardOf(limits: ReadLimits): Guard {
  return 'check' in limits ? limits : { check: () => (limits.nearDeadline() ? 'deadline' : undefined) };
}

/** A read the guard did not allow: nothing was sent; the run stops the work that needed it. */
export class ReadStopped extends Error {
  /**
   * @param why - Quota or deadline.
   * @param what - The read not made (a code for the log: no ids of people, no text).
   */
  constructor(
    readonly why: Stop,
    readonly what: string
  ) {
    super(`${what} not sent (${why})`);
    this.name = 'ReadStopped';
  }
}

/**
 * Asks the guard for one read, throwing when it says no (for readers deep in a decision's reads,
 * whose caller stops the whole thread's work: a decision on half a read is never made).
 * @param guard - The run's guard.
 * @param what - The read, for the log.
 * @param cost - Its points (a search: 20).
 */
export function mayRead(guard: Guard, what: string, cost: number = QUOTA_COST.search): void {
  const stop = guard.check(cost);
  if (stop) {
    throw new ReadStopped(stop, what);
  }
}

/**
 * Visits every match of a search, by cursor pages (readPages: no offset limit), each page read only
 * when the guard allows it.
 * @param medplum - The client.
 * @param resourceType - Type to search.
 * @param query - Search parameters (no `_sort`: pages come in lastUpdated order).
 * @param guard - Checked before each page.
 * @param visit - Called with each match (a resource may come twice when the server answered an instant twice).
 * @param log - Where a paging fallback is said.
 * @param log.warn - Warning logger.
 * @param options - `includes`: visit included resources too.
 * @param options.includes - Visit included resources too.
 * @returns undefined when every page was read, else why reading stopped.
 */
export async function scanGuarded(
  medplum: MedplumClient,
  resourceType: ResourceType,
  query: SearchQuery,
  guard: Guard,
  visit: (resource: WithId<Resource>) => void,
  log: { warn(message: string): void },
  options: { includes?: boolean } = {}
): Promise<Stop | undefined> {
  const stop = guard.check();
  if (stop) {
    return stop;
  }
  const pages = readPages(medplum, resourceType, query, { warn: (m) => log.warn(m) });
  try {
    for (;;) {
      const next = await pages.next();
      if (next.done) {
        return undefined;
      }
      for (const entry of next.value.entry ?? []) {
        if (entry.resource?.id && (options.includes || entry.search?.mode !== 'include')) {
          visit(entry.resource as WithId<Resource>);
        }
      }
      const more = next.value.link?.some((l) => l.relation === 'next') ? guard.check() : undefined;
      if (more) {
        return more;
      }
    }
  } finally {
    await pages.return(undefined);
  }
}

/**
 * Every match of a search (scanGuarded), de-duplicated.
 * @param medplum - The client.
 * @param resourceType - Type to search.
 * @param query - Search parameters (no `_sort`: pages come in lastUpdated order).
 * @param guard - Checked before each page.
 * @param log - Where a paging fallback is said.
 * @param log.warn - Warning logger.
 * @returns The resources (de-duplicated), or why reading stopped.
 */
export async function readAll<T extends Resource>(
  medplum: MedplumClient,
  resourceType: ResourceType,
  query: SearchQuery,
  guard: Guard,
  log: { warn(message: string): void }
): Promise<WithId<T>[] | Stop> {
  const found = new Map<string, WithId<T>>();
  const stop = await scanGuarded(medplum, resourceType, query, guard, (r) => found.set(r.id, r as WithId<T>), log);
  return stop ?? [...found.values()];
}

/**
 * Every entry of a search, matches and includes, de-duplicated by
 * reference, each page read only when the guard allows it.
 * @param medplum - The client.
 * @param resourceType - Type to search.
 * @param query - Search parameters (no `_sort`).
 * @param guard - Checked before each page.
 * @param what - The read, for the log when the guard stops it.
 * @param log - Where a paging fallback is said.
 * @param log.warn - Warning logger.
 * @returns The resources (matches in lastUpdated order, then includes as met).
 * @throws ReadStopped when the guard stops a page (nothing of the search is used then).
 */
export async function searchGuarded(
  medplum: MedplumClient,
  resourceType: ResourceType,
  query: SearchQuery,
  guard: Guard,
  what: string = `${resourceType} search`,
  log: { warn(message: string): void } = { warn: () => undefined }
): Promise<WithId<Resource>[]> {
  const byRef = new Map<string, WithId<Resource>>();
  const stop = await scanGuarded(medplum, resourceType, query, guard, (r) => byRef.set(getReferenceString(r), r), log, { includes: true });
  if (stop) {
    throw new ReadStopped(stop, what);
  }
  return [...byRef.values()];
}

/**
 * Visits every open Task focused on a thread (a Communication), each page asking only for
 * `elements` and read only when the guard allows it: the sweep's Task scan and `status`'s.
 * @param medplum - The client.
 * @param elements - `_elements`: the fields the caller decides on.
 * @param limits - The run's guard, or a deadline.
 * @param visit - Called with each Task and its thread's reference (idempotent: see scanGuarded).
 * @param log - Where a paging fallback is said.
 * @param log.warn - Warning logger.
 * @returns undefined when every page was read, else why reading stopped.
 */
export async function scanOpenThreadTasks(
  medplum: MedplumClient,
  elements: string,
  limits: ReadLimits,
  visit: (task: WithId<Task>, thread: string) => void,
  log: { warn(message: string): void }
): Promise<Stop | undefined> {
  return scanGuarded(
    medplum,
    'Task',
    openThreadTaskQuery(elements),
    guardOf(limits),
    (r) => {
      const task = r as WithId<Task>;
      if (referenceType(task.focus) === 'Communication' && task.focus?.reference) {
        visit(task, task.focus.reference);
      }
    },
    log
  );
}
