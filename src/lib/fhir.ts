// FHIR plumbing shared by the bots: paged search, batch writes, JSON Patch entries.
import { encodeBase64, getReferenceString, normalizeErrorString } from '@medplum/core';
import type { MedplumClient, WithId } from '@medplum/core';
import type { Bundle, BundleEntry, OperationOutcome, Reference, Resource, ResourceType, Task } from '@medplum/fhirtypes';

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
 * Whether a sender is on the patient's side of a thread.
 * @param sender - Communication.sender.
 * @returns True for a Patient or RelatedPerson.
 */
export function isPatientSide(sender: Reference | undefined): boolean {
  const type = referenceType(sender);
  return type === 'Patient' || type === 'RelatedPerson';
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

/** The outcome of one batch entry. */
export interface EntryResult {
  ok: boolean;
  /** HTTP status code as the server reports it ("200", "201", "400"...), or "error" when the batch itself failed. */
  status: string;
  resource?: Resource;
  error?: string;
}

/**
 * Sends entries as FHIR `batch` Bundles, in chunks. Each entry succeeds or fails on its own;
 * a chunk whose request fails (after the client's retries) marks all its entries failed.
 * @param medplum - The client.
 * @param entries - Batch entries.
 * @param chunkSize - Entries per Bundle.
 * @param shouldStop - Checked before each chunk; entries of chunks not sent are returned as undefined.
 * @returns One result per entry, in order (undefined where not sent).
 */
export async function executeBatch(
  medplum: MedplumClient,
  entries: BundleEntry[],
  chunkSize = 250,
  shouldStop: () => boolean = () => false
): Promise<(EntryResult | undefined)[]> {
  const results: (EntryResult | undefined)[] = new Array(entries.length).fill(undefined);
  for (let offset = 0; offset < entries.length; offset += chunkSize) {
    if (shouldStop()) {
      break;
    }
    const chunk = entries.slice(offset, offset + chunkSize);
    try {
      const response = await medplum.executeBatch({ resourceType: 'Bundle', type: 'batch', entry: chunk });
      chunk.forEach((_, i) => {
        const entry = response.entry?.[i];
        const status = (entry?.response?.status ?? '').split(' ')[0];
        const ok = status.startsWith('2');
        results[offset + i] = {
          ok,
          status,
          resource: entry?.resource,
          error: ok ? undefined : outcomeText(entry?.response?.outcome as OperationOutcome | undefined),
        };
      });
    } catch (err) {
      const error = normalizeErrorString(err);
      chunk.forEach((_, i) => {
        results[offset + i] = { ok: false, status: 'error', error };
      });
    }
  }
  return results;
}

function outcomeText(outcome: OperationOutcome | undefined): string {
  return outcome ? normalizeErrorString(outcome) : 'no outcome';
}
