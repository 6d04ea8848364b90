// `npm run test:find-conformance`: the harness's `$find` emulation against a real server's `$find`,
// case by case, on the same stored resources. Not part of `npm test` (it needs a server).
//
// For each case it creates a Practitioner (time zone), a Schedule and Slots on the server, asks the
// server's `$find`, and runs `emulateFind` with a store that reads those same resources from the
// server; the two answers (status, and each slot's start and end) must be equal. It deletes what it
// made in a finally.
import type { MedplumClient } from '@medplum/core';
import type { Bundle, Extension, OperationOutcome, Resource, Schedule, Slot } from '@medplum/fhirtypes';
import { connect, connectionEnv, loadDotEnv } from '../../src/admin/connect';
import { emulateFind } from '../harness/find-emulation';

const SP = 'http://medplum.com/fhir/StructureDefinition/scheduling-parameters';
const ALL = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

interface Case {
  name: string;
  timeZone: string;
  extension: Extension[];
  slots?: Pick<Slot, 'status' | 'start' | 'end'>[];
  query: string;
}

const rules = (from: string, hours: number, extra: Extension[] = [], days = ALL): Extension => ({
  url: SP,
  extension: [
    { url: 'availability', valueTiming: { repeat: { dayOfWeek: days as never, timeOfDay: [from], duration: hours, durationUnit: 'h' } } },
    { url: 'duration', valueDuration: { value: 30, unit: 'min' } },
    ...extra,
  ],
});
const video: Extension = { url: 'serviceType', valueCoding: { system: 'http://example.com/st', code: 'video' } };

const CASES: Case[] = [
  { name: 'an ordinary day, 30-minute slots on the hour', timeZone: 'America/New_York', extension: [rules('09:00:00', 8)], query: 'start=2026-11-27T13:00:00Z&end=2026-11-27T18:00:00Z' },
  { name: 'alignment 15, buffers, offset', timeZone: 'America/New_York', extension: [rules('09:00:00', 8, [
    { url: 'alignmentInterval', valueDuration: { value: 15, unit: 'min' } },
    { url: 'alignmentOffset', valueDuration: { value: 5, unit: 'min' } },
    { url: 'bufferBefore', valueDuration: { value: 10, unit: 'min' } },
    { url: 'bufferAfter', valueDuration: { value: 5, unit: 'min' } },
  ])], query: 'start=2026-11-27T14:00:00Z&end=2026-11-27T17:00:00Z' },
  { name: 'the overnight quirk: yesterday evening missing after the UTC date turns', timeZone: 'America/Anguilla', extension: [rules('20:00:00', 8)], query: 'start=2026-11-28T04:30:00Z&end=2026-11-28T07:00:00Z' },
  { name: 'the overnight workaround: start at 23:59Z of the shift day', timeZone: 'America/Anguilla', extension: [rules('20:00:00', 8)], query: 'start=2026-11-27T23:59:00Z&end=2026-11-28T07:00:00Z' },
  { name: 'east of UTC', timeZone: 'Asia/Tokyo', extension: [rules('09:00:00', 9)], query: 'start=2026-11-26T23:00:00Z&end=2026-11-27T10:00:00Z' },
  { name: 'busy and busy-unavailable remove, free adds', timeZone: 'America/New_York', extension: [rules('09:00:00', 8)], slots: [
    { status: 'busy', start: '2026-11-27T14:00:00Z', end: '2026-11-27T15:00:00Z' },
    { status: 'busy-unavailable', start: '2026-11-27T16:00:00Z', end: '2026-11-27T17:10:00Z' },
    { status: 'free', start: '2026-11-27T23:00:00Z', end: '2026-11-28T00:00:00Z' },
  ], query: 'start=2026-11-27T13:00:00Z&end=2026-11-28T01:00:00Z' },
  { name: 'several rule sets, no service type: untied sets only', timeZone: 'America/New_York', extension: [rules('09:00:00', 2), rules('13:00:00', 2, [video])], query: 'start=2026-11-27T13:00:00Z&end=2026-11-27T20:00:00Z' },
  { name: 'service-type video', timeZone: 'America/New_York', extension: [rules('09:00:00', 2), rules('13:00:00', 2, [video])], query: 'start=2026-11-27T13:00:00Z&end=2026-11-27T20:00:00Z&service-type=http://example.com/st|video' },
  { name: 'all sets tied to a service type, none asked', timeZone: 'America/New_York', extension: [rules('09:00:00', 8, [video])], query: 'start=2026-11-27T13:00:00Z&end=2026-11-27T20:00:00Z' },
  { name: 'the page of 20', timeZone: 'America/New_York', extension: [rules('00:00:00', 24)], query: 'start=2026-11-23T00:00:00Z&end=2026-11-30T00:00:00Z' },
  { name: 'spring forward in New York', timeZone: 'America/New_York', extension: [rules('01:00:00', 3)], query: 'start=2026-03-08T05:00:00Z&end=2026-03-08T10:00:00Z' },
  { name: 'fall back in Berlin', timeZone: 'Europe/Berlin', extension: [rules('02:00:00', 2)], query: 'start=2026-10-24T23:00:00Z&end=2026-10-25T04:00:00Z' },
  { name: 'a zone that is not IANA', timeZone: 'Eastern', extension: [rules('09:00:00', 8)], query: 'start=2026-11-27T13:00:00Z&end=2026-11-27T18:00:00Z' },
  { name: 'no scheduling parameters', timeZone: 'America/New_York', extension: [], query: 'start=2026-11-27T13:00:00Z&end=2026-11-27T18:00:00Z' },
  { name: 'rules without duration', timeZone: 'America/New_York', extension: [{ url: SP, extension: [rules('09:00:00', 8).extension?.[0] as Extension] }], query: 'start=2026-11-27T13:00:00Z&end=2026-11-27T18:00:00Z' },
];

/**
 * Runs every case and prints whether server and emulation agree.
 * @returns The exit code: 0 when all agree.
 */
export async function main(): Promise<number> {
  loadDotEnv();
  const server = connectionEnv();
  const medplum = await connect(server);
  console.log(`$find conformance on ${server.MEDPLUM_BASE_URL}`);
  const created: Resource[] = [];
  let differ = 0;
  try {
    for (const c of CASES) {
      const practitioner = await medplum.createResource({ resourceType: 'Practitioner', extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/timezone', valueCode: c.timeZone }] });
      created.push(practitioner);
      const schedule = await medplum.createResource<Schedule>({ resourceType: 'Schedule', active: true, actor: [{ reference: `Practitioner/${practitioner.id}` }], extension: c.extension });
      created.push(schedule);
      for (const slot of c.slots ?? []) {
        created.push(await medplum.createResource<Slot>({ resourceType: 'Slot', schedule: { reference: `Schedule/${schedule.id}` }, ...slot }));
      }
      const real = await answer(() => medplum.get<Bundle>(`${medplum.fhirUrl('Schedule', schedule.id, '$find')}?${c.query}`, { cache: 'no-cache' }));
      const emulated = await emulateFind(store(medplum), schedule.id, new URLSearchParams(c.query), false);
      const same = JSON.stringify(real) === JSON.stringify(summary(emulated.status, emulated.body));
      differ += same ? 0 : 1;
      console.log(`${same ? 'same' : 'DIFF'} ${c.name}${same ? '' : `\n  server:   ${JSON.stringify(real)}\n  emulated: ${JSON.stringify(summary(emulated.status, emulated.body))}`}`);
    }
  } finally {
    for (const r of created.reverse()) {
      await medplum.deleteResource(r.resourceType, r.id as string).catch(() => undefined);
    }
  }
  console.log(differ ? `${differ} case(s) differ` : `all ${CASES.length} cases agree`);
  return differ ? 1 : 0;
}

async function answer(request: () => Promise<Bundle>): Promise<unknown> {
  try {
    return summary(200, await request());
  } catch (err) {
    return summary(400, (err as { outcome?: OperationOutcome }).outcome);
  }
}

function summary(status: number, body: unknown): unknown {
  if (status !== 200) {
    return { status, text: (body as OperationOutcome | undefined)?.issue?.[0]?.details?.text };
  }
  return { status, slots: ((body as Bundle).entry ?? []).map((e) => `${(e.resource as Slot).start} ${(e.resource as Slot).end}`) };
}

function store(medplum: MedplumClient): Parameters<typeof emulateFind>[0] {
  return {
    readSchedule: (id) => medplum.readResource('Schedule', id, { cache: 'no-cache' }),
    readReference: (ref) => medplum.readReference({ reference: ref }, { cache: 'no-cache' }) as Promise<Resource>,
    searchSlots: (scheduleRef) => medplum.searchResources('Slot', { schedule: scheduleRef, _count: '1000' }, { cache: 'no-cache' }),
  };
}
