// The harness's emulations of server behaviour, tested on their own.
import type { Bundle, Parameters, Patient, Schedule, Slot, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { ref, seedBlock, seedPractitioner, seedSchedule } from './fixtures';
import { createServerMock } from './server-mock';

async function find(server: ReturnType<typeof createServerMock>, scheduleId: string, start: string, end: string): Promise<Slot[]> {
  const bundle = await server.medplum.get<Bundle>(`fhir/R4/Schedule/${scheduleId}/$find?start=${start}&end=${end}`);
  return (bundle.entry ?? []).map((e) => e.resource as Slot);
}

describe('paging', () => {
  test('a search returns 20 by default with a next link, and the next pages reach every match', async () => {
    const server = createServerMock();
    for (let i = 0; i < 45; i++) {
      await server.seed<Patient>({ resourceType: 'Patient', name: [{ family: 'Pager' }] });
    }
    const first = await server.medplum.search('Patient', { family: 'Pager' });
    expect(first.entry).toHaveLength(20);
    expect(first.total).toBeUndefined();
    const next = first.link?.find((l) => l.relation === 'next')?.url as string;
    expect(next).toBe('https://example.com/fhir/R4/Patient?_count=20&_offset=20&family=Pager');
    const second = await server.medplum.get<Bundle>(next);
    const third = await server.medplum.get<Bundle>(second.link?.find((l) => l.relation === 'next')?.url as string);
    expect(second.entry).toHaveLength(20);
    expect(third.entry).toHaveLength(5);
    expect(third.link?.some((l) => l.relation === 'next')).toBe(false);
    const ids = new Set([first, second, third].flatMap((b) => b.entry?.map((e) => e.resource?.id)));
    expect(ids.size).toBe(45);
  });

  test('_count is capped at 1000 and _total=accurate adds the total', async () => {
    const server = createServerMock();
    for (let i = 0; i < 1001; i++) {
      await server.seed<Patient>({ resourceType: 'Patient', name: [{ family: 'Cap' }] });
    }
    const page = await server.medplum.search('Patient', { family: 'Cap', _count: '5000', _total: 'accurate' });
    expect(page.entry).toHaveLength(1000);
    expect(page.total).toBe(1001);
    expect(page.link?.find((l) => l.relation === 'self')?.url).toContain('_count=1000');
    expect(page.link?.some((l) => l.relation === 'next')).toBe(true);
  });

  test('_sort=_lastUpdated pages with cursor links, past any offset limit', async () => {
    const server = createServerMock();
    for (let i = 0; i < 45; i++) {
      const lastUpdated = new Date(Date.UTC(2026, 10, 1) + Math.floor(i / 2) * 1000).toISOString(); // pairs share an instant
      await server.seed<Patient>({ resourceType: 'Patient', name: [{ family: 'Cursor' }], meta: { lastUpdated } });
    }
    const seen: string[] = [];
    let bundle: Bundle = await server.medplum.search('Patient', { family: 'Cursor', _sort: '_lastUpdated', _count: '20' });
    for (;;) {
      seen.push(...(bundle.entry ?? []).map((e) => e.resource?.id as string));
      const next = bundle.link?.find((l) => l.relation === 'next')?.url;
      if (!next) {
        break;
      }
      expect(next).toMatch(/_cursor=2-\d+/);
      bundle = await server.medplum.get<Bundle>(next);
    }
    expect(seen).toHaveLength(45);
    expect(new Set(seen).size).toBe(45);
  });

  test('a cursor page that cannot make progress is a server error, as on the server', async () => {
    const server = createServerMock();
    for (let i = 0; i < 21; i++) {
      await server.seed<Patient>({ resourceType: 'Patient', name: [{ family: 'Same' }], meta: { lastUpdated: '2026-11-01T00:00:00.000Z' } });
    }
    server.faults.length = 0;
    await expect(server.medplum.search('Patient', { family: 'Same', _sort: '_lastUpdated', _count: '20' })).rejects.toThrow(
      'Cursor fails to make progress'
    );
  });

  test('_elements keeps only the listed elements with id and meta', async () => {
    const server = createServerMock();
    await server.seed<Patient>({ resourceType: 'Patient', gender: 'female', name: [{ family: 'Elem' }] });
    const page = await server.medplum.search('Patient', { family: 'Elem', _elements: 'gender' });
    const patient = page.entry?.[0].resource as Patient;
    expect(patient.gender).toBe('female');
    expect(patient.name).toBeUndefined();
    expect(patient.meta?.lastUpdated).toBeDefined();
  });
});

describe('$find', () => {
  // Friday 2026-11-27 15:17 UTC = 10:17 in New York; available 09:00-17:00 local, 30-minute slots on the hour.
  const now = '2026-11-27T15:17:00.000Z';

  test('answers the Bundle directly with whole aligned slots inside the window', async () => {
    const server = createServerMock();
    const practitioner = await seedPractitioner(server);
    const schedule = await seedSchedule(server, [ref(practitioner)]);
    const slots = await find(server, schedule.id, '2026-11-27T15:00:00Z', '2026-11-27T17:00:00Z');
    expect(slots.map((s) => [s.start, s.end, s.status])).toEqual([
      ['2026-11-27T15:00:00.000Z', '2026-11-27T15:30:00.000Z', 'free'],
      ['2026-11-27T16:00:00.000Z', '2026-11-27T16:30:00.000Z', 'free'],
    ]);
  });

  test('finds nothing from 10:17 to 11:17 for a provider on duty all day (the docs example trap)', async () => {
    const server = createServerMock();
    const practitioner = await seedPractitioner(server);
    const schedule = await seedSchedule(server, [ref(practitioner)]);
    const bundle = await server.medplum.get<Bundle>(`fhir/R4/Schedule/${schedule.id}/$find?start=${now}&end=2026-11-27T16:17:00.000Z`);
    expect(bundle).toEqual({ resourceType: 'Bundle', type: 'searchset' });
  });

  test('busy-unavailable Slots remove availability and free Slots add it', async () => {
    const server = createServerMock();
    const practitioner = await seedPractitioner(server);
    const schedule = await seedSchedule(server, [ref(practitioner)]);
    await seedBlock(server, schedule, '2026-11-27T14:00:00Z', '2026-11-27T16:10:00Z');
    await server.seed<Slot>({ resourceType: 'Slot', schedule: ref(schedule), status: 'free', start: '2026-11-27T23:00:00Z', end: '2026-11-28T00:00:00Z' });
    const slots = await find(server, schedule.id, '2026-11-27T14:00:00Z', '2026-11-28T00:00:00Z');
    expect(slots.map((s) => s.start)).toEqual([
      '2026-11-27T17:00:00.000Z',
      '2026-11-27T18:00:00.000Z',
      '2026-11-27T19:00:00.000Z',
      '2026-11-27T20:00:00.000Z',
      '2026-11-27T21:00:00.000Z',
      '2026-11-27T23:00:00.000Z',
    ]);
  });

  test('returns at most 20 slots', async () => {
    const server = createServerMock();
    const practitioner = await seedPractitioner(server);
    const schedule = await seedSchedule(server, [ref(practitioner)]);
    expect(await find(server, schedule.id, '2026-11-23T00:00:00Z', '2026-11-30T00:00:00Z')).toHaveLength(20);
  });

  test('expands local days from the UTC date of start, as the server does', async () => {
    const server = createServerMock();
    const practitioner = await seedPractitioner(server);
    const schedule = await seedSchedule(server, [ref(practitioner)], { availability: [{ from: '00:00:00', hours: 24 }], durationMinutes: 60 });
    // 00:00Z-06:00Z on the 28th is 19:00-01:00 in New York: the server skips the evening of the 27th.
    const slots = await find(server, schedule.id, '2026-11-28T00:00:00Z', '2026-11-28T06:00:00Z');
    expect(slots.map((s) => s.start)).toEqual(['2026-11-28T05:00:00.000Z']);
  });

  test('can answer wrapped in Parameters, as Medplum docs show', async () => {
    const server = createServerMock({ find: 'parameters' });
    const practitioner = await seedPractitioner(server);
    const schedule = await seedSchedule(server, [ref(practitioner)]);
    const body = await server.medplum.get<Parameters>(`fhir/R4/Schedule/${schedule.id}/$find?start=2026-11-27T15:00:00Z&end=2026-11-27T16:00:00Z`);
    expect(body.resourceType).toBe('Parameters');
    expect((body.parameter?.[0].resource as Bundle).entry).toHaveLength(1);
  });

  test.each([
    ['POST', 'bundle'],
    ['GET', 'absent'],
  ] as const)('%s with find=%s answers 404', async (method, find) => {
    const server = createServerMock({ find });
    const practitioner = await seedPractitioner(server);
    const schedule = await seedSchedule(server, [ref(practitioner)]);
    const url = `fhir/R4/Schedule/${schedule.id}/$find?start=2026-11-27T15:00:00Z&end=2026-11-27T16:00:00Z`;
    const call = method === 'POST' ? server.medplum.post(url, {}) : server.medplum.get(url);
    await expect(call).rejects.toThrow('Not found');
  });

  test('answers 400 as the server does', async () => {
    const server = createServerMock();
    const withZone = await seedPractitioner(server);
    const noZone = await seedPractitioner(server, null);
    const cases: [string, string, string][] = [
      [(await seedSchedule(server, [ref(noZone)])).id, '2026-11-27T16:00:00Z', 'No timezone specified'],
      [(await seedSchedule(server, [ref(withZone)], { durationMinutes: null })).id, '2026-11-27T16:00:00Z', 'without required `duration`'],
      [(await seedSchedule(server, [ref(withZone), ref(noZone)])).id, '2026-11-27T16:00:00Z', 'exactly one actor'],
      [(await seedSchedule(server, [ref(withZone)])).id, '2026-12-29T16:00:00Z', 'cannot exceed 31 days'],
    ];
    for (const [id, end, message] of cases) {
      await expect(server.medplum.get(`fhir/R4/Schedule/${id}/$find?start=2026-11-27T15:00:00Z&end=${end}`)).rejects.toThrow(message);
    }
  });
});

describe('$find: service types, rule sets, zones and limits', () => {
  const sp = 'http://medplum.com/fhir/StructureDefinition/scheduling-parameters';
  const allDay = { url: 'availability', valueTiming: { repeat: { dayOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], timeOfDay: ['09:00:00'], duration: 2, durationUnit: 'h' } } };
  const rules = (duration: number, serviceType?: string, from = '09:00:00') => ({
    url: sp,
    extension: [
      { ...allDay, valueTiming: { repeat: { ...allDay.valueTiming.repeat, timeOfDay: [from] } } },
      { url: 'duration', valueDuration: { value: duration, unit: 'min' } },
      ...(serviceType ? [{ url: 'serviceType', valueCoding: { system: 'http://example.com/st', code: serviceType } }] : []),
    ],
  });
  const window = 'start=2026-11-27T14:00:00Z&end=2026-11-27T20:00:00Z'; // 09:00-15:00 in New York

  async function schedule(server: ReturnType<typeof createServerMock>, extension: unknown[], timeZone = 'America/New_York'): Promise<string> {
    const practitioner = await seedPractitioner(server, timeZone);
    return (await server.seed<Schedule>({ resourceType: 'Schedule', active: true, actor: [ref(practitioner)], extension: extension as Schedule['extension'] })).id;
  }
  const starts = async (server: ReturnType<typeof createServerMock>, id: string, query: string): Promise<string[]> =>
    ((await server.medplum.get<Bundle>(`fhir/R4/Schedule/${id}/$find?${query}`)).entry ?? []).map((e) => (e.resource as Slot).start.slice(11, 16));

  test('without service-type only the rule sets tied to no service type count; a set per service type is used when asked', async () => {
    const server = createServerMock();
    const id = await schedule(server, [rules(60), rules(60, 'video', '13:00:00')]);
    expect(await starts(server, id, window)).toEqual(['14:00', '15:00']);
    expect(await starts(server, id, `${window}&service-type=http://example.com/st|video`)).toEqual(['18:00', '19:00']);
    // An unknown service type falls back to the sets tied to none.
    expect(await starts(server, id, `${window}&service-type=http://example.com/st|phone`)).toEqual(['14:00', '15:00']);
  });

  test('a Schedule whose rule sets are all tied to service types has no slots without service-type', async () => {
    const server = createServerMock();
    const id = await schedule(server, [rules(60, 'video')]);
    expect(await starts(server, id, window)).toEqual([]);
    expect(await starts(server, id, `${window}&service-type=http://example.com/st|video`)).toEqual(['14:00', '15:00']);
  });

  test('several rule sets: the first set fills the page first', async () => {
    const server = createServerMock();
    const id = await schedule(server, [rules(30, undefined, '12:00:00'), rules(60)]);
    expect(await starts(server, id, window)).toEqual(['17:00', '18:00', '14:00', '15:00']);
  });

  test('a time zone that is not an IANA zone is a 400, but only once a day has to be expanded', async () => {
    const server = createServerMock();
    const bad = await schedule(server, [rules(60)], 'Eastern');
    await expect(server.medplum.get(`fhir/R4/Schedule/${bad}/$find?${window}`)).rejects.toThrow('Invalid time zone specified: EASTERN');
    const noRules = await schedule(server, [], 'Eastern');
    expect(await starts(server, noRules, window)).toEqual([]);
  });

  test('1000 Slots in the window is a 400', async () => {
    const server = createServerMock();
    const id = await schedule(server, [rules(60)]);
    for (let i = 0; i < 1000; i++) {
      const start = new Date(Date.parse('2026-11-27T14:00:00Z') + i * 1000).toISOString();
      await server.seed<Slot>({ resourceType: 'Slot', schedule: { reference: `Schedule/${id}` }, status: 'busy', start, end: start });
    }
    await expect(server.medplum.get(`fhir/R4/Schedule/${id}/$find?${window}`)).rejects.toThrow('Too many slots found in range');
  });

  test('a booked (busy) Slot removes time as a vacation does', async () => {
    const server = createServerMock();
    const id = await schedule(server, [rules(60)]);
    await server.seed<Slot>({ resourceType: 'Slot', schedule: { reference: `Schedule/${id}` }, status: 'busy', start: '2026-11-27T14:00:00Z', end: '2026-11-27T15:00:00Z' });
    expect(await starts(server, id, window)).toEqual(['15:00']);
  });

  test('an overnight shift that began the previous local day is missing after the UTC date turns', async () => {
    const server = createServerMock();
    // Every day from 20:00 for 8 hours in Anguilla (UTC-4); 01:00 local on the 28th is 05:00Z.
    const overnight = { ...rules(30), extension: [{ ...allDay, valueTiming: { repeat: { ...allDay.valueTiming.repeat, timeOfDay: ['20:00:00'], duration: 8 } } }, { url: 'duration', valueDuration: { value: 30, unit: 'min' } }] };
    const id = await schedule(server, [overnight], 'America/Anguilla');
    expect(await starts(server, id, 'start=2026-11-28T04:30:00Z&end=2026-11-28T06:30:00Z')).toEqual([]);
    // Starting before the UTC midnight brings the previous local day in.
    expect(await starts(server, id, 'start=2026-11-27T23:59:00Z&end=2026-11-28T06:30:00Z')).toEqual(['00:00', '01:00', '02:00', '03:00', '04:00', '05:00', '06:00']);
  });
});

describe('writes, counters and faults', () => {
  test('concurrent version-guarded patches: exactly one applies', async () => {
    const server = createServerMock();
    const task = await server.seed<Task>({ resourceType: 'Task', status: 'requested', intent: 'order' });
    const patch = (status: Task['status']): Promise<unknown> =>
      server.medplum.patchResource('Task', task.id, [
        { op: 'test', path: '/meta/versionId', value: task.meta?.versionId },
        { op: 'replace', path: '/status', value: status },
      ]);
    const results = await Promise.allSettled([patch('accepted'), patch('cancelled')]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
  });

  test('counts requests by key and injects faults', async () => {
    const server = createServerMock();
    const task = await server.seed<Task>({ resourceType: 'Task', status: 'requested', intent: 'order' });
    server.faults.push({ match: /^GET Task\//, status: 503, times: Infinity });
    await expect(server.medplum.readResource('Task', task.id)).rejects.toThrow();
    // MedplumClient retries a 503 twice before giving up.
    expect(server.countByKey()).toEqual({ 'GET Task/:id': 3 });
  });
});

describe('FHIR quota', () => {
  const rateLimit = (server: ReturnType<typeof createServerMock>, caller = server.medplum) =>
    caller.rateLimitStatus().find((r) => r.name === 'fhirInteractions');

  test('charges read 1, search 20, history 10, write 100, $find 22, and says what is left on every response', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-11-27T15:17:00.000Z'));
    try {
      const server = createServerMock({ quota: { perCaller: 1000 } });
      const practitioner = await seedPractitioner(server);
      const schedule = await seedSchedule(server, [ref(practitioner)]);
      const task = await server.medplum.createResource<Task>({ resourceType: 'Task', status: 'requested', intent: 'order' });
      expect(rateLimit(server)).toMatchObject({ remainingUnits: 900, secondsUntilReset: 60 });
      await server.medplum.readResource('Task', task.id);
      await server.medplum.search('Task', { status: 'requested' });
      await server.medplum.get(`fhir/R4/Task/${task.id}/_history`);
      await find(server, schedule.id, '2026-11-27T15:00:00Z', '2026-11-27T16:00:00Z');
      expect(server.requests.map((r) => r.points)).toEqual([100, 1, 20, 10, 22]);
      expect(rateLimit(server)?.remainingUnits).toBe(1000 - 153);
      // The header as the server sends it: its per-IP request limit first, then the FHIR quota.
      expect(server.medplum.rateLimitStatus().map((r) => r.name)).toEqual(['requests', 'fhirInteractions']);
    } finally {
      vi.useRealTimers();
    }
  });

  test('past the budget: 429 too-many-requests with the reset time; a new minute starts afresh', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-11-27T15:17:00.000Z'));
    try {
      const server = createServerMock({ quota: { perCaller: 250 } });
      await server.medplum.createResource<Patient>({ resourceType: 'Patient' });
      await server.medplum.createResource<Patient>({ resourceType: 'Patient' });
      vi.setSystemTime(new Date('2026-11-27T15:17:20.000Z'));
      const refused = await server.medplum.createResource<Patient>({ resourceType: 'Patient' }).catch((err) => err);
      expect(refused.outcome).toMatchObject({ id: 'too-many-requests', issue: [{ code: 'throttled' }] });
      expect(JSON.parse(refused.outcome.issue[0].diagnostics)).toMatchObject({ msBeforeNext: 40_000, limit: 250 });
      expect(rateLimit(server)).toMatchObject({ remainingUnits: 0, secondsUntilReset: 40 });
      // Refused and not retried: the wait (40 s) is longer than MedplumClient's maxRetryTime.
      expect(server.count()).toBe(3);
      expect(await server.searchAll('Patient')).toHaveLength(2);

      vi.setSystemTime(new Date('2026-11-27T15:18:00.000Z'));
      await server.medplum.createResource<Patient>({ resourceType: 'Patient' });
      expect(rateLimit(server)?.remainingUnits).toBe(150);
    } finally {
      vi.useRealTimers();
    }
  });

  test('batch entries are charged one by one: those past the budget answer 429, earlier ones apply', async () => {
    const server = createServerMock({ quota: { perCaller: 350 } });
    const existing = await server.seed<Task>({ resourceType: 'Task', status: 'requested', intent: 'order', identifier: [{ system: 's', value: 'a' }] });
    const create = (value: string) => ({
      request: { method: 'POST' as const, url: 'Task', ifNoneExist: `identifier=s|${value}` },
      resource: { resourceType: 'Task' as const, status: 'requested' as const, intent: 'order' as const, identifier: [{ system: 's', value }] },
    });
    const response = await server.medplum.executeBatch({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [create('a'), create('b'), create('c'), create('d'), { request: { method: 'GET', url: `Task/${existing.id}` } }],
    });
    // a exists: search only (20); b and c: search + write (120 each); d would pass 350: refused, and so is the rest.
    expect(response.entry?.map((e) => e.response?.status.split(' ')[0])).toEqual(['200', '201', '201', '429', '429']);
    expect(response.entry?.[3].response?.outcome).toMatchObject({ id: 'too-many-requests' });
    expect(server.requests[0].points).toBe(20 + 120 + 120 + 120);
    expect(await server.searchAll('Task')).toHaveLength(3);
  });

  test('each caller has its own budget, and the Project has ten times one', async () => {
    const server = createServerMock({ quota: { perCaller: 100 } });
    await server.medplum.createResource<Patient>({ resourceType: 'Patient' });
    const user = server.clientAs('user');
    await user.createResource<Patient>({ resourceType: 'Patient' });
    expect(rateLimit(server, user)?.remainingUnits).toBe(0);
    expect(server.quota.remaining('user')).toBe(0);
    expect(server.quota.perProject).toBe(1000);
    expect(server.requests.map((r) => r.caller)).toEqual(['bot', 'user']);
  });
});
