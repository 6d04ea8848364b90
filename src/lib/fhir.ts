// FHIR plumbing shared by the bots: the one paged read (by cursor), batch writes, JSON Patch entries.
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
 * Deepest `_offset` a Medplum server answers: past it, `400 Search offset exceeds maximum`. The
 * reader below never asks for more; it pages by cursor, or starts again from an instant.
 */
export const MAX_SEARCH_OFFSET = 10_000;
/** What a read does when it cannot go on by cursor (logged by scans). */
export interface ReadOptions {
  /** Told when a page of resources sharing one lastUpdated instant had to be read by offset. */
  warn?: (message: string) => void;
}

/**
 * Reads every page of a search: the one way this code pages. Results come in `meta.lastUpdated`
 * order (`_sort=_lastUpdated`, added here: a caller may not sort, page by `_offset` or pass a
 * `_cursor`), which makes the server page by cursor, with no offset limit. Where the server still
 * gives `_offset` links (a `_count` under 20, an `_include` on some servers), they are followed
 * only up to MAX_SEARCH_OFFSET; then the search starts again at the last instant read (the
 * resources of that instant already given are left out). A cursor page that cannot make progress
 * (more resources share one lastUpdated instant than a page holds: a bulk import) is read as that
 * one instant by offset, and the search goes on after it. Each page is one request (two or three
 * in that rare case); a caller stops by leaving the loop.
 * @param medplum - The client.
 * @param resourceType - Resource type to search.
 * @param query - Search parameters; `_count` defaults to the server maximum (1000).
 * @param options - Where to say a fallback happened.
 * @yields Each page's Bundle (match entries already given on an earlier page are removed).
 */
export async function* readPages(
  medplum: MedplumClient,
  resourceType: ResourceType,
  query: SearchQuery,
  options: ReadOptions = {}
): AsyncGenerator<Bundle> {
  const base = Array.isArray(query) ? query.map(([k, v]) => [k, v]) : Object.entries(query);
  const refused = base.find(([name]) => ['_sort', '_offset', '_cursor'].includes(name));
  if (refused) {
    throw new Error(`readPages orders and pages by itself (by _lastUpdated, with a cursor); ${refused[0]} is not accepted`);
  }
  if (!base.some(([name]) => name === '_count')) {
    base.push(['_count', String(MAX_PAGE_SIZE)]);
  }
  /** Where the current attempt starts (inclusive), and which resources of that instant were given. */
  let from: number | undefined;
  let givenAtFrom = new Set<string>();
  for (;;) {
    const params = new URLSearchParams([...base, ['_sort', '_lastUpdated'], ...(from === undefined ? [] : [['_lastUpdated', `ge${iso(from)}`]])]);
    const tracker = new InstantTracker(from, givenAtFrom);
    let resumeAt: number | undefined;
    try {
      let bundle: Bundle = await medplum.search(resourceType, params, { cache: 'no-cache' });
      for (;;) {
        yield tracker.take(bundle);
        const next = nextLink(bundle);
        if (!next) {
          return;
        }
        if (offsetOf(next) > MAX_SEARCH_OFFSET) {
          resumeAt = tracker.last;
          break;
        }
        bundle = await medplum.get<Bundle>(next, { cache: 'no-cache' });
      }
    } catch (err) {
      if (!/cursor fails to make progress/i.test(normalizeErrorString(err))) {
        throw err;
      }
      const stuck = tracker.last ?? (await firstInstant(medplum, resourceType, base, from));
      if (stuck === undefined) {
        return;
      }
      options.warn?.(`${resourceType} read: more resources share one lastUpdated instant than a page holds; that instant is read with offset paging`);
      yield* readInstant(medplum, resourceType, base, stuck, tracker);
      from = stuck + 1;
      givenAtFrom = new Set();
      continue;
    }
    if (resumeAt === undefined || resumeAt === from) {
      // The same instant again: more resources share it than offsets reach.
      throw new Error(`${resourceType} read: more than ${MAX_SEARCH_OFFSET} resources share one lastUpdated instant`);
    }
    from = resumeAt;
    givenAtFrom = tracker.givenAtLast;
  }
}

/** The latest lastUpdated instant a read has given, and the resources of that instant. */
class InstantTracker {
  last: number | undefined;
  givenAtLast: Set<string>;

  constructor(from: number | undefined, givenAtFrom: Set<string>) {
    this.last = from;
    this.givenAtLast = new Set(givenAtFrom);
  }

  /**
   * Leaves out match entries given before (a restart at an instant repeats it) and records the rest.
   * @param bundle - A page.
   * @returns The page, without repeats.
   */
  take(bundle: Bundle): Bundle {
    const entries = (bundle.entry ?? []).filter((entry) => {
      if (entry.search?.mode === 'include' || !entry.resource?.id) {
        return true;
      }
      const at = Date.parse(entry.resource.meta?.lastUpdated ?? '');
      const key = getReferenceString(entry.resource as WithId<Resource>);
      if (Number.isNaN(at)) {
        return true;
      }
      if (this.last !== undefined && at < this.last) {
        return true; // out of order (an include-less server quirk): given, not tracked
      }
      if (at === this.last) {
        if (this.givenAtLast.has(key)) {
          return false;
        }
      } else {
        this.last = at;
        this.givenAtLast = new Set();
      }
      this.givenAtLast.add(key);
      return true;
    });
    return { ...bundle, entry: entries.length ? entries : undefined };
  }
}

/** The earliest lastUpdated of a search's matches at or after an instant (one small offset page). */
async function firstInstant(medplum: MedplumClient, resourceType: ResourceType, base: string[][], from: number | undefined): Promise<number | undefined> {
  const params = new URLSearchParams([
    ...base.filter(([name]) => name !== '_count'),
    ['_sort', '_lastUpdated'],
    ['_count', '1'], // under 20: an offset page, which the server answers whatever the instants
    ...(from === undefined ? [] : [['_lastUpdated', `ge${iso(from)}`]]),
  ]);
  const page = await medplum.search(resourceType, params, { cache: 'no-cache' });
  const first = page.entry?.find((e) => e.search?.mode !== 'include')?.resource?.meta?.lastUpdated;
  return first ? Date.parse(first) : undefined;
}

/** Every match of one lastUpdated instant, by offset pages (never past MAX_SEARCH_OFFSET). */
async function* readInstant(
  medplum: MedplumClient,
  resourceType: ResourceType,
  base: string[][],
  instant: number,
  tracker: InstantTracker
): AsyncGenerator<Bundle> {
  const params = new URLSearchParams([
    ...base,
    ['_lastUpdated', `ge${iso(instant)}`],
    ['_lastUpdated', `lt${iso(instant + 1)}`],
  ]);
  let bundle: Bundle = await medplum.search(resourceType, params, { cache: 'no-cache' });
  for (;;) {
    yield tracker.take(bundle);
    const next = nextLink(bundle);
    if (!next) {
      return;
    }
    if (offsetOf(next) > MAX_SEARCH_OFFSET) {
      throw new Error(`${resourceType} read: more than ${MAX_SEARCH_OFFSET} resources share one lastUpdated instant`);
    }
    bundle = await medplum.get<Bundle>(next, { cache: 'no-cache' });
  }
}

function iso(instant: number): string {
  return new Date(instant).toISOString();
}

function offsetOf(url: string): number {
  return Number(new URL(url, 'http://x').searchParams.get('_offset') ?? 0) || 0;
}

function nextLink(bundle: Bundle): string | undefined {
  return bundle.link?.find((link) => link.relation === 'next')?.url;
}

/**
 * One page of a search, newest first (`_sort=-_lastUpdated`, offset 0, its next page never
 * followed): the latest resources of a set. To read further back, ask again with `_lastUpdated=lt`
 * an instant (a key, never an offset).
 * @param medplum - The client.
 * @param resourceType - Resource type to search.
 * @param query - Search parameters (no `_sort`, `_offset`, `_cursor`, `_count`).
 * @param count - Page size (the server may give fewer: at most 1000).
 * @returns The page's match resources, newest first, and whether the server has more.
 */
export async function readLatest(
  medplum: MedplumClient,
  resourceType: ResourceType,
  query: SearchQuery,
  count: number
): Promise<{ resources: WithId<Resource>[]; more: boolean }> {
  const base = Array.isArray(query) ? query : Object.entries(query);
  const refused = base.find(([name]) => ['_sort', '_offset', '_cursor', '_count'].includes(name));
  if (refused) {
    throw new Error(`readLatest sorts and sizes its page itself; ${refused[0]} is not accepted`);
  }
  const params = new URLSearchParams([...base, ['_sort', '-_lastUpdated'], ['_count', String(Math.min(count, MAX_PAGE_SIZE))]]);
  const page = await medplum.search(resourceType, params, { cache: 'no-cache' });
  return {
    resources: (page.entry ?? []).filter((e) => e.search?.mode !== 'include' && e.resource?.id).map((e) => e.resource as WithId<Resource>),
    more: !!nextLink(page),
  };
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
 * The search of every open Task focused on something (the caller keeps those on a thread).
 * @param elements - `_elements`: the fields the caller decides on.
 * @returns Search parameters for readPages or a guarded scan (scanOpenThreadTasks in ./read-guard).
 */
export function openThreadTaskQuery(elements: string): Record<string, string> {
  return { status: OPEN_TASK_STATUSES.join(','), 'focus:missing': 'false', _elements: elements };
}
