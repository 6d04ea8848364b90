// FHIR plumbing shared by the bots: paged search, batch writes, JSON Patch entries.
import { encodeBase64, getReferenceString, normalizeErrorString } from '@medplum/core';
import type { MedplumClient, WithId } from '@medplum/core';
import type { Bundle, BundleEntry, OperationOutcome, Reference, Resource, ResourceType, Task } from '@medplum/fhirtypes';
import { entryCost, isQuotaError, quotaLeft } from './quota';

/** Task statuses that mean the work is still to be done. */
export const OPEN_TASK_STATUSES: Task['status'][] = [
  'draft',
  'requested',
  'received',
  'accepted',
  'ready',
  'in-progress',
  'on-hold',
];

/** Search parameters; pairs allow a parameter to repeat (`_include`). */
export type SearchQuery = Record<string, string> | string[][];

/** Largest page a Medplum server returns (`_count` is capped there). */
export const MAX_PAGE_SIZE = 1000;

/**
 * Whether a Task still needs doing.
 * @param task - The Task.
 * @returns True for every status but completed, cancelled, failed, rejected and entered-in-error.
 */
export function isOpenTask(task: Task): boolean {
  return OPEN_TASK_STATUSES.includes(task.status);
}

/**
 * The resource type a reference points at, from its literal `Type/id` form.
 * @param ref - The reference.
 * @returns The type, or undefined for contained, absolute or missing references.
 */
export function referenceType(ref: Reference | undefined): string | undefined {
  const match = /^([A-Z][A-Za-z]+)\/[^/]+$/.exec(ref?.reference ?? '');
  return match?.[1];
}

/**
 * Runs a search and every page after it, following the server's `next` links (a Medplum server
 * returns 20 results by default and at most 1000 a page).
 * @param medplum - The client.
 * @param resourceType - Resource type to search.
 * @param query - Search parameters; `_count` defaults to the server maximum.
 * @yields Each page's Bundle.
 */
export async function* searchPages(
  medplum: MedplumClient,
  resourceType: ResourceType,
  query: SearchQuery
): AsyncGenerator<Bundle> {
  const params = new URLSearchParams(query);
  if (!params.has('_count')) {
    params.set('_count', String(MAX_PAGE_SIZE));
  }
  let bundle: Bundle = await medplum.search(resourceType, params, { cache: 'no-cache' });
  yield bundle;
  let next = nextLink(bundle);
  while (next) {
    bundle = await medplum.get<Bundle>(next, { cache: 'no-cache' });
    yield bundle;
    next = nextLink(bundle);
  }
}

function nextLink(bundle: Bundle): string | undefined {
  return bundle.link?.find((link) => link.relation === 'next')?.url;
}

/**
 * Collects every entry (matches and includes) of a paged search, de-duplicated by reference.
 * @param medplum - The client.
 * @param resourceType - Resource type to search.
 * @param query - Search parameters.
 * @returns The resources, matches first in server order.
 */
export async function searchAll(
  medplum: MedplumClient,
  resourceType: ResourceType,
  query: SearchQuery
): Promise<WithId<Resource>[]> {
  const byRef = new Map<string, WithId<Resource>>();
  for await (const page of searchPages(medplum, resourceType, query)) {
    for (const entry of page.entry ?? []) {
      const resource = entry.resource;
      if (resource?.id) {
        byRef.set(getReferenceString(resource as WithId<Resource>), resource as WithId<Resource>);
      }
    }
  }
  return [...byRef.values()];
}

/** A JSON Patch operation (RFC 6902). */
export interface PatchOperation {
  op: 'add' | 'remove' | 'replace' | 'test';
  path: string;
  value?: unknown;
}

/**
 * A batch entry that JSON-patches a resource only if nobody changed it since it was read:
 * the patch starts with a `test` of `/meta/versionId`, which the server runs in the same transaction.
 * @param resource - The resource as read (must have id and meta.versionId).
 * @param operations - The changes.
 * @returns The batch entry.
 */
export function guardedPatchEntry(resource: WithId<Resource>, operations: PatchOperation[]): BundleEntry {
  const patch: PatchOperation[] = [
    { op: 'test', path: '/meta/versionId', value: resource.meta?.versionId },
    ...operations,
  ];
  return {
    request: { method: 'PATCH', url: getReferenceString(resource) },
    resource: {
      resourceType: 'Binary',
      contentType: 'application/json-patch+json',
      // encodeBase64 from @medplum/core: the bot sandbox has no Buffer.
      data: encodeBase64(JSON.stringify(patch)),
    },
  };
}

/** What became of one write. */
export type WriteOutcome =
  | { kind: 'applied'; status: string; resource?: Resource }
  /**
   * A version or value test failed (someone changed the resource since it was read), or the server
   * refused a concurrent write (409). For a conditional create, 412 means several resources match
   * its condition: one exists.
   */
  | { kind: 'conflict'; status: string; error: string }
  /** Not made: the quota could not cover it (or refused it), or the deadline was near. The next run makes it. */
  | { kind: 'deferred'; why: 'quota' | 'deadline' }
  | { kind: 'failed'; status: string; error: string };

/** How writes are sent. */
export interface WriteOptions {
  /** Largest batch Bundle, in entries (a larger group still goes alone). Default 250. */
  chunkSize?: number;
  /** Checked before each Bundle; when true, what is left is deferred for the deadline. */
  shouldStop?: () => boolean;
  /** Quota points to leave unspent (for other work sharing the caller's quota). */
  reserve?: number;
}

/**
 * Sends groups of writes as FHIR `batch` Bundles, spending the quota on purpose. A group (one
 * thread's changes) is never split across Bundles, and is not started when the quota the server
 * last announced cannot cover it: it is deferred, never sent to fail. Each entry succeeds or fails
 * on its own on the server; a 429 (per entry, when concurrent runs spend the same quota) is a
 * deferral, never a conflict or a failure.
 * @param medplum - The client.
 * @param groups - The writes, grouped.
 * @param options - Chunk size and deadline.
 * @returns One outcome per entry, grouped as given.
 */
export async function applyWrites(medplum: MedplumClient, groups: BundleEntry[][], options: WriteOptions = {}): Promise<WriteOutcome[][]> {
  const chunkSize = options.chunkSize ?? 250;
  const outcomes: WriteOutcome[][] = groups.map((g) => g.map(() => ({ kind: 'deferred', why: 'quota' }) as WriteOutcome));
  let next = 0;
  while (next < groups.length) {
    if (options.shouldStop?.()) {
      groups.slice(next).forEach((g, i) => (outcomes[next + i] = g.map(() => ({ kind: 'deferred', why: 'deadline' }))));
      break;
    }
    let points = (quotaLeft(medplum)?.points ?? Infinity) - (options.reserve ?? 0);
    const chunk: number[] = [];
    let entries = 0;
    for (let i = next; i < groups.length; i++) {
      const cost = groups[i].reduce((sum, e) => sum + entryCost(e), 0);
      if (cost > points || (chunk.length && entries + groups[i].length > chunkSize)) {
        break;
      }
      chunk.push(i);
      entries += groups[i].length;
      points -= cost;
    }
    if (!chunk.length) {
      break; // the next group costs more than is left this minute: it and the rest stay deferred
    }
    next = chunk[chunk.length - 1] + 1;
    const sent = chunk.flatMap((i) => groups[i]);
    // Empty groups (a thread with nothing to write) cost nothing and send nothing.
    const results = sent.length ? await sendBatch(medplum, sent) : [];
    let k = 0;
    for (const i of chunk) {
      outcomes[i] = groups[i].map(() => results[k++]);
    }
  }
  return outcomes;
}

async function sendBatch(medplum: MedplumClient, entries: BundleEntry[]): Promise<WriteOutcome[]> {
  try {
    const response = await medplum.executeBatch({ resourceType: 'Bundle', type: 'batch', entry: entries });
    return entries.map((_, i) => entryOutcome(response.entry?.[i]));
  } catch (err) {
    const outcome: WriteOutcome = isQuotaError(err)
      ? { kind: 'deferred', why: 'quota' }
      : { kind: 'failed', status: 'error', error: normalizeErrorString(err) };
    return entries.map(() => outcome);
  }
}

function entryOutcome(entry: BundleEntry | undefined): WriteOutcome {
  const status = (entry?.response?.status ?? '').split(' ')[0];
  if (status.startsWith('2')) {
    return { kind: 'applied', status, resource: entry?.resource };
  }
  const outcome = entry?.response?.outcome as OperationOutcome | undefined;
  if (status === '429' || (outcome && isQuotaError(outcome))) {
    return { kind: 'deferred', why: 'quota' };
  }
  const error = outcome ? normalizeErrorString(outcome) : 'no outcome';
  // A failed JSON Patch `test` (the version or value guard) is a 400 "Test failed" on Medplum.
  if (status === '412' || status === '409' || /test failed/i.test(error)) {
    return { kind: 'conflict', status: status || '400', error };
  }
  return { kind: 'failed', status: status || 'none', error };
}

/**
 * Reads every page of a search, visiting each resource. `_sort=_lastUpdated` lets the server page
 * with a cursor (no offset limit on large projects); a cursor page whose resources all share one
 * lastUpdated instant (a bulk import) is refused by the server, and then the scan is read again
 * with offset paging, so visits must be idempotent.
 * @param medplum - The client.
 * @param resourceType - Type to search.
 * @param query - Search parameters.
 * @param visit - Called for each resource.
 * @param options - `nearDeadline`: checked after each page; `log`: for the cursor fallback.
 * @param options.nearDeadline - Stops the scan when true.
 * @param options.log - Logger.
 * @returns True when every page was read, false when the deadline stopped the scan.
 */
export async function scanAll(
  medplum: MedplumClient,
  resourceType: ResourceType,
  query: Record<string, string> | string[][],
  visit: (resource: WithId<Resource>) => void,
  options: { nearDeadline: () => boolean; log: { warn(message: string): void } }
): Promise<boolean> {
  for (const sorted of [true, false]) {
    try {
      const params = [...(Array.isArray(query) ? query : Object.entries(query)), ...(sorted ? [['_sort', '_lastUpdated']] : [])];
      for await (const page of searchPages(medplum, resourceType, params)) {
        page.entry?.forEach((e) => e.resource && visit(e.resource as WithId<Resource>));
        if (options.nearDeadline()) {
          return false;
        }
      }
      return true;
    } catch (err) {
      if (!sorted || !/cursor fails to make progress/i.test(normalizeErrorString(err))) {
        throw err;
      }
      options.log.warn(`${resourceType} scan: cursor paging cannot progress (shared lastUpdated); reading with offset paging`);
    }
  }
  return false;
}

/**
 * Scans every open Task focused on a thread (a Communication), each page asking only for `elements`.
 * @param medplum - The client.
 * @param elements - `_elements`: the fields the caller decides on.
 * @param visit - Called with each Task and its thread's reference (idempotent: see scanAll).
 * @param options - Deadline and logger, as for scanAll.
 * @param options.nearDeadline - Stops the scan when true.
 * @param options.log - Logger.
 * @returns True when every page was read.
 */
export async function scanOpenThreadTasks(
  medplum: MedplumClient,
  elements: string,
  visit: (task: WithId<Task>, thread: string) => void,
  options: { nearDeadline: () => boolean; log: { warn(message: string): void } }
): Promise<boolean> {
  return scanAll(
    medplum,
    'Task',
    { status: OPEN_TASK_STATUSES.join(','), 'focus:missing': 'false', _elements: elements },
    (r) => {
      const task = r as WithId<Task>;
      if (referenceType(task.focus) === 'Communication' && task.focus?.reference) {
        visit(task, task.focus.reference);
      }
    },
    options
  );
}
