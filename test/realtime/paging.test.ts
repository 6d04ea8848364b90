// The one way the bots page (readPages): by cursor, never past the server's offset limit.
import type { MedplumClient } from '@medplum/core';
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { MAX_SEARCH_OFFSET, readLatest, readPages } from '../../src/lib/fhir';
import { searchGuarded, UNGUARDED } from '../../src/lib/read-guard';
import { createServerMock } from '../harness/server-mock';

const T0 = Date.UTC(2026, 10, 1);
const at = (ms: number): string => new Date(T0 + ms).toISOString();

async function collect(pages: AsyncGenerator<Bundle>): Promise<string[]> {
  const ids: string[] = [];
  for await (const page of pages) {
    ids.push(...(page.entry ?? []).map((e) => e.resource?.id as string));
  }
  return ids;
}

describe('the server mock refuses what the server refuses', () => {
  test('an offset past 10,000: 400 with the server text', async () => {
    const server = createServerMock();
    await expect(server.medplum.search('Patient', { _count: '20', _offset: '10001' })).rejects.toThrow(
      'Search offset exceeds maximum (got 10001, max 10000)'
    );
    await expect(server.medplum.search('Patient', { _count: '20', _offset: '10000' })).resolves.toMatchObject({ resourceType: 'Bundle' });
  });
});

describe('readPages', () => {
  test('sorts by _lastUpdated (so the server pages by cursor) and refuses a caller who sorts or pages', async () => {
    const server = createServerMock();
    for (let i = 0; i < 45; i++) {
      await server.seed<Patient>({ resourceType: 'Patient', name: [{ family: 'Pager' }], meta: { lastUpdated: at(44 - i) } });
    }
    const ids = await collect(readPages(server.medplum, 'Patient', { family: 'Pager', _count: '20' }));
    expect(ids).toHaveLength(45);
    expect(new Set(ids).size).toBe(45);
    const urls = server.requests.map((r) => new URL(r.url).searchParams);
    expect(urls.every((p) => p.get('_sort') === '_lastUpdated' && !p.has('_offset'))).toBe(true);
    expect(urls.slice(1).every((p) => p.has('_cursor'))).toBe(true);
    for (const bad of ['_sort', '_offset', '_cursor']) {
      await expect(collect(readPages(server.medplum, 'Patient', { [bad]: '1' }))).rejects.toThrow(`${bad} is not accepted`);
    }
  });

  test('more resources at one instant than a page holds: that instant is read by offset, then the cursor goes on; each resource once', async () => {
    const server = createServerMock();
    const seeded: string[] = [];
    for (let i = 0; i < 10; i++) {
      seeded.push((await server.seed<Patient>({ resourceType: 'Patient', name: [{ family: 'Bulk' }], meta: { lastUpdated: at(i) } })).id);
    }
    for (let i = 0; i < 45; i++) {
      seeded.push((await server.seed<Patient>({ resourceType: 'Patient', name: [{ family: 'Bulk' }], meta: { lastUpdated: at(100) } })).id); // a bulk import
    }
    for (let i = 0; i < 25; i++) {
      seeded.push((await server.seed<Patient>({ resourceType: 'Patient', name: [{ family: 'Bulk' }], meta: { lastUpdated: at(200 + i) } })).id);
    }
    const warnings: string[] = [];
    const ids = await collect(readPages(server.medplum, 'Patient', { family: 'Bulk', _count: '20' }, { warn: (m) => warnings.push(m) }));
    expect(ids.sort()).toEqual(seeded.sort());
    expect(warnings).toEqual(['Patient read: more resources share one lastUpdated instant than a page holds; that instant is read with offset paging']);
  });

  test('the same when the very first page cannot make progress', async () => {
    const server = createServerMock();
    const seeded: string[] = [];
    for (let i = 0; i < 21; i++) {
      seeded.push((await server.seed<Patient>({ resourceType: 'Patient', name: [{ family: 'Same' }], meta: { lastUpdated: at(0) } })).id);
    }
    seeded.push((await server.seed<Patient>({ resourceType: 'Patient', name: [{ family: 'Same' }], meta: { lastUpdated: at(5) } })).id);
    expect((await collect(readPages(server.medplum, 'Patient', { family: 'Same', _count: '20' }))).sort()).toEqual(seeded.sort());
  });

  test('offset links (a server that will not page this search by cursor) are followed up to 10,000, then the read starts again at the last instant', async () => {
    // 12,500 resources, three to an instant, paged by offset 1000 at a time as some servers page an _include search.
    const all = Array.from({ length: 12_500 }, (_, i) => ({ id: `p${i}`, lastUpdated: at(Math.floor(i / 3)) }));
    const asked: URLSearchParams[] = [];
    const answer = (params: URLSearchParams): Bundle => {
      asked.push(params);
      const offset = Number(params.get('_offset') ?? 0);
      if (offset > MAX_SEARCH_OFFSET) {
        throw new Error(`Search offset exceeds maximum (got ${offset}, max ${MAX_SEARCH_OFFSET})`);
      }
      const from = params.getAll('_lastUpdated').find((v) => v.startsWith('ge'))?.slice(2);
      const matches = all.filter((r) => !from || r.lastUpdated >= from);
      const count = Number(params.get('_count'));
      const page = matches.slice(offset, offset + count);
      const next = new URLSearchParams(params);
      next.set('_offset', String(offset + count));
      return {
        resourceType: 'Bundle',
        type: 'searchset',
        entry: page.map((r) => ({ search: { mode: 'match' }, resource: { resourceType: 'Patient', id: r.id, meta: { lastUpdated: r.lastUpdated } } })),
        link: offset + count < matches.length ? [{ relation: 'next', url: `https://x/fhir/R4/Patient?${next}` }] : [],
      };
    };
    const medplum = {
      search: async (_type: string, params: URLSearchParams) => answer(new URLSearchParams(params)),
      get: async (url: string) => answer(new URL(url).searchParams),
    } as unknown as MedplumClient;
    const ids = await collect(readPages(medplum, 'Patient', { _include: 'Patient:organization' }));
    expect(ids).toHaveLength(12_500);
    expect(new Set(ids).size).toBe(12_500);
    expect(Math.max(...asked.map((p) => Number(p.get('_offset') ?? 0)))).toBeLessThanOrEqual(MAX_SEARCH_OFFSET);
    expect(asked.some((p) => p.getAll('_lastUpdated').length)).toBe(true);
  });

  test('searchGuarded and readLatest go through the same rules', async () => {
    const server = createServerMock();
    for (let i = 0; i < 5; i++) {
      await server.seed<Patient>({ resourceType: 'Patient', name: [{ family: 'Few' }], meta: { lastUpdated: at(i) } });
    }
    expect(await searchGuarded(server.medplum, 'Patient', { family: 'Few' }, UNGUARDED)).toHaveLength(5);
    const latest = await readLatest(server.medplum, 'Patient', { family: 'Few' }, 2);
    expect(latest.resources.map((p) => p.meta?.lastUpdated)).toEqual([at(4), at(3)]);
    expect(latest.more).toBe(true);
    expect((await readLatest(server.medplum, 'Patient', { family: 'Few' }, 5)).more).toBe(false);
    await expect(readLatest(server.medplum, 'Patient', { _offset: '3' }, 2)).rejects.toThrow('_offset is not accepted');
  });
});
