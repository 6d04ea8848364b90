// Indexes over the in-memory store, so that a month of a clinic's searches does not scan every
// message for each one. Speed, not semantics: each index gives a superset of what a filter can
// match (exact for references and ids, a day's margin either side for instants), and the
// repository's own matching still runs on what is left, so results are those of the plain store.
//
// Indexed: reference equality on the fields the bots search (Communication.partOf, Task.focus,
// Slot.schedule, Schedule.actor), `_id`, Task.identifier values, and `_lastUpdated` / `sent` bounds
// (resources bucketed by day). The index follows every write through the repository's one store
// path (createResourceSync, which updates and patches go through too) and deletes.
import { Operator } from '@medplum/core';
import type { SearchRequest } from '@medplum/core';
import type { Bundle, Resource } from '@medplum/fhirtypes';

const DAY_MS = 86_400_000;

/** The repository's internals the index uses (MemoryRepository of @medplum/fhir-router). */
export interface RepoInternals {
  resources: Map<string, Map<string, Resource>>;
  searchSync(request: SearchRequest): Bundle;
  createResourceSync(resource: Resource, options?: unknown, assignedId?: boolean): Resource;
  deleteResource(resourceType: string, id: string, options?: unknown): Promise<void>;
}

/** Search code → field, per type: the reference searches worth an index. */
const REFERENCE_FIELDS: Record<string, Record<string, string>> = {
  Communication: { 'part-of': 'partOf' },
  Task: { focus: 'focus' },
  Slot: { schedule: 'schedule' },
  Schedule: { actor: 'actor' },
};

type Filter = NonNullable<SearchRequest['filters']>[number];

class Postings {
  private readonly map = new Map<string, Set<string>>();

  add(key: string, id: string): void {
    let set = this.map.get(key);
    if (!set) {
      set = new Set();
      this.map.set(key, set);
    }
    set.add(id);
  }

  remove(key: string, id: string): void {
    this.map.get(key)?.delete(id);
  }

  get(key: string): Set<string> | undefined {
    return this.map.get(key);
  }

  keys(): IterableIterator<string> {
    return this.map.keys();
  }
}

/**
 * Installs the indexes on a repository and narrows its searches with them.
 * @param repo - The repository.
 * @param profile - Collects time per kind of search, when given.
 */
export function indexStore(repo: RepoInternals, profile?: Map<string, [number, number, number]>): void {
  const postings = new Map<string, Postings>(); // per type
  const keysOf = new Map<string, string[]>(); // `${type}/${id}` → its keys
  const order = new Map<string, number>(); // `${type}/${id}` → when first stored (the store's own order)
  const postingsOf = (type: string): Postings => {
    let p = postings.get(type);
    if (!p) {
      p = new Postings();
      postings.set(type, p);
    }
    return p;
  };
  const unindex = (type: string, id: string): void => {
    const p = postingsOf(type);
    for (const key of keysOf.get(`${type}/${id}`) ?? []) {
      p.remove(key, id);
    }
    keysOf.delete(`${type}/${id}`);
  };
  const index = (resource: Resource): void => {
    const type = resource.resourceType;
    const id = resource.id as string;
    unindex(type, id);
    if (!order.has(`${type}/${id}`)) {
      order.set(`${type}/${id}`, order.size);
    }
    const keys: string[] = [];
    for (const [code, field] of Object.entries(REFERENCE_FIELDS[type] ?? {})) {
      for (const ref of [(resource as unknown as Record<string, unknown>)[field]].flat()) {
        const reference = (ref as { reference?: string } | undefined)?.reference;
        if (reference) {
          keys.push(`ref|${code}|${reference}`);
        }
      }
    }
    for (const identifier of (resource as { identifier?: { value?: string }[] }).identifier ?? []) {
      if (identifier.value) {
        keys.push(`identifier|${identifier.value}`);
      }
    }
    const lastUpdated = Date.parse(resource.meta?.lastUpdated ?? '');
    keys.push(Number.isNaN(lastUpdated) ? 'lu|none' : `lu|${Math.floor(lastUpdated / DAY_MS)}`);
    const sent = Date.parse((resource as { sent?: string }).sent ?? '');
    if (!Number.isNaN(sent)) {
      keys.push(`sent|${Math.floor(sent / DAY_MS)}`);
    }
    const p = postingsOf(type);
    for (const key of keys) {
      p.add(key, id);
    }
    keysOf.set(`${type}/${id}`, keys);
  };

  const create = repo.createResourceSync.bind(repo);
  repo.createResourceSync = (resource, options, assignedId) => {
    const stored = create(resource, options, assignedId);
    index(stored);
    return stored;
  };
  const remove = repo.deleteResource.bind(repo);
  repo.deleteResource = async (type, id, options) => {
    await remove(type, id, options);
    unindex(type, id);
  };
  for (const map of repo.resources.values()) {
    for (const resource of map.values()) {
      index(resource);
    }
  }

  /** The ids a filter can match, or undefined when the index cannot say. */
  const candidates = (type: string, filter: Filter): Set<string> | undefined => {
    const p = postingsOf(type);
    const { code, operator, value } = filter;
    if (code === '_id' && operator === Operator.EQUALS) {
      return new Set(value.split(','));
    }
    if (operator === Operator.EQUALS && REFERENCE_FIELDS[type]?.[code]) {
      const values = value.split(',');
      if (values.some((v) => !v.includes('/'))) {
        return undefined;
      }
      return union(values.map((v) => p.get(`ref|${code}|${v}`)));
    }
    if (code === 'identifier' && operator === Operator.EQUALS) {
      return union(value.split(',').map((v) => p.get(`identifier|${v.split('|').pop()}`)));
    }
    if (code === '_lastUpdated' || code === 'sent') {
      const bound = Date.parse(value);
      if (Number.isNaN(bound)) {
        return undefined;
      }
      const day = Math.floor(bound / DAY_MS);
      const prefix = code === 'sent' ? 'sent|' : 'lu|';
      const lower = ([Operator.GREATER_THAN_OR_EQUALS, Operator.GREATER_THAN, Operator.STARTS_AFTER] as Operator[]).includes(operator);
      const upper = ([Operator.LESS_THAN_OR_EQUALS, Operator.LESS_THAN, Operator.ENDS_BEFORE] as Operator[]).includes(operator);
      if (!lower && !upper) {
        return undefined;
      }
      // A day's margin either side: date search compares at the value's precision.
      const keys = [...p.keys()].filter((k) => {
        if (!k.startsWith(prefix)) {
          return false;
        }
        const d = Number(k.slice(prefix.length));
        return Number.isNaN(d) || (lower ? d >= day - 1 : d <= day + 1);
      });
      return union(keys.map((k) => p.get(k)));
    }
    return undefined;
  };

  const searchSync = repo.searchSync.bind(repo);
  repo.searchSync = (request: SearchRequest): Bundle => {
    const began = profile ? performance.now() : 0;
    const all = repo.resources.get(request.resourceType);
    let ids: Set<string> | undefined;
    const rest: Filter[] = [];
    for (const filter of request.filters ?? []) {
      const found = candidates(request.resourceType, filter);
      if (found) {
        ids = ids ? new Set([...ids].filter((id) => found.has(id))) : found;
      }
      // Equality on full references is answered exactly by the index (the server compares the
      // reference strings); every other filter is matched by the repository as usual.
      if (!(found && filter.code !== '_id' && REFERENCE_FIELDS[request.resourceType]?.[filter.code])) {
        rest.push(filter);
      }
    }
    // In the store's own order, so that results come back as the plain store gives them.
    const rank = (id: string): number => order.get(`${request.resourceType}/${id}`) ?? 0;
    const subset =
      all && ids
        ? new Map([...ids].filter((id) => all.has(id)).sort((a, b) => rank(a) - rank(b)).map((id) => [id, all.get(id) as Resource] as const))
        : undefined;
    if (all && subset) {
      repo.resources.set(request.resourceType, subset);
    }
    try {
      return searchSync(subset ? { ...request, filters: rest } : request);
    } finally {
      if (all && subset) {
        repo.resources.set(request.resourceType, all);
      }
      if (profile) {
        const key = `${request.resourceType}?${(request.filters ?? []).map((f) => `${f.code}:${f.operator}`).join('&')}`;
        const [n, ms, scanned] = profile.get(key) ?? [0, 0, 0];
        profile.set(key, [n + 1, ms + performance.now() - began, scanned + (subset ?? all ?? new Map()).size]);
      }
    }
  };
}

function union(sets: (Set<string> | undefined)[]): Set<string> {
  const out = new Set<string>();
  for (const set of sets) {
    for (const id of set ?? []) {
      out.add(id);
    }
  }
  return out;
}
