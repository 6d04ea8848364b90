// The in-memory server the simulation runs on: test/harness/server-mock.ts (paging, quota, faults,
// the request log), plus three things a month of clinic needs and the harness does not give:
// - ids that do not depend on chance, so a seed replays exactly (bots' creates get `b<n>`);
// - searches narrowed before the repository's own matching, as narrowReferenceSearches does for one
//   reference: lists of references and ids, and `_lastUpdated` / `sent` lower and upper bounds. The
//   repository still matches every filter on what is left, so results are unchanged; without this a
//   month of sweeps scans every message of the clinic with FHIRPath four times a quarter hour;
// - a read-only view of what is stored, for the oracle (no request, no quota).
import { getSearchParameter, Operator } from '@medplum/core';
import type { SearchRequest } from '@medplum/core';
import type { Bundle, Communication, Resource, Task } from '@medplum/fhirtypes';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

interface RepoInternals {
  resources: Map<string, Map<string, Resource>>;
  searchSync(request: SearchRequest): Bundle;
  generateId(): string;
}

/** The server and a view of its store. */
export interface SimServer {
  server: ServerMock;
  /** Stored resources of a type, by id (the store's own objects: never change them). */
  all<T extends Resource>(resourceType: T['resourceType']): ReadonlyMap<string, T>;
  task(id: string): Task | undefined;
  communication(id: string): Communication | undefined;
}

/**
 * Creates the simulation's server.
 * @returns The server and its store view.
 */
export function createSimServer(): SimServer {
  const server = createServerMock();
  const repo = (server.medplum as unknown as { repo: RepoInternals }).repo;
  let created = 0;
  repo.generateId = () => `b${++created}`;
  narrowRanges(repo);
  const empty = new Map<string, Resource>();
  const all = <T extends Resource>(type: string): ReadonlyMap<string, T> => (repo.resources.get(type) ?? empty) as unknown as ReadonlyMap<string, T>;
  return {
    server,
    all,
    task: (id) => all<Task>('Task').get(id),
    communication: (id) => all<Communication>('Communication').get(id),
  };
}

const DAY_MS = 86_400_000;

function narrowRanges(repo: RepoInternals): void {
  const searchSync = repo.searchSync.bind(repo);
  repo.searchSync = (request: SearchRequest): Bundle => {
    const all = repo.resources.get(request.resourceType);
    const tests = (request.filters ?? []).flatMap((f) => superset(request.resourceType, f) ?? []);
    if (!all || !tests.length) {
      return searchSync(request);
    }
    const subset = new Map([...all].filter(([, r]) => tests.every((t) => t(r))));
    repo.resources.set(request.resourceType, subset);
    try {
      return searchSync(request);
    } finally {
      repo.resources.set(request.resourceType, all);
    }
  };
}

type Filter = NonNullable<SearchRequest['filters']>[number];

/**
 * A cheap test that keeps every resource the filter can match (and maybe more).
 * @param resourceType - The searched type.
 * @param filter - One filter.
 * @returns The test, or undefined when the filter is not narrowed here.
 */
function superset(resourceType: string, filter: Filter): ((r: Resource) => boolean) | undefined {
  const { code, operator, value } = filter;
  if (code === '_id' && operator === Operator.EQUALS) {
    const ids = new Set(value.split(','));
    return (r) => ids.has(r.id ?? '');
  }
  if (code === '_lastUpdated' || code === 'sent') {
    const bound = Date.parse(value);
    if (Number.isNaN(bound)) {
      return undefined;
    }
    const read = (r: Resource): number =>
      Date.parse((code === 'sent' ? (r as Communication).sent : r.meta?.lastUpdated) ?? '');
    // A day's margin either side: date search compares at the value's precision.
    if (operator === Operator.GREATER_THAN_OR_EQUALS || operator === Operator.GREATER_THAN || operator === Operator.STARTS_AFTER) {
      return (r) => !(read(r) < bound - DAY_MS);
    }
    if (operator === Operator.LESS_THAN_OR_EQUALS || operator === Operator.LESS_THAN || operator === Operator.ENDS_BEFORE) {
      return (r) => !(read(r) > bound + DAY_MS);
    }
    return undefined;
  }
  const field = operator === Operator.EQUALS && value.includes(',') ? referenceField(resourceType, code) : undefined;
  if (field) {
    const ids = new Set(value.split(',').map((v) => v.split('/').pop()));
    return (r) =>
      [(r as unknown as Record<string, unknown>)[field]].flat().some((ref) => ids.has((ref as { reference?: string } | undefined)?.reference?.split('/').pop()));
  }
  return undefined;
}

function referenceField(resourceType: string, code: string): string | undefined {
  const param = getSearchParameter(resourceType, code);
  const match = param?.type === 'reference' ? new RegExp(`^${resourceType}\\.([a-zA-Z]+)$`).exec(param.expression ?? '') : null;
  return match?.[1];
}
