// Least privilege: the rights each bot uses, derived from the harness's request log over its
// scenarios, must be exactly what its AccessPolicy (written by `npm run setup`) grants.
import type { AccessPolicy, Schedule } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, test, vi } from 'vitest';
import { BOT_WIRING } from '../../src/admin/project-setup';
import { handler as oooHandler } from '../../src/ooo-reroute';
import { MARKER_REFRESH_MS } from '../../src/realtime/sweep-marker';
import { handler as staleHandler } from '../../src/stale-thread-reminders';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import {
  botEvent,
  message,
  ref,
  REMINDER_CODE,
  seedBlock,
  seedClinic,
  seedPatient,
  seedPractitioner,
  seedSchedule,
  seedTask,
  seedThread,
} from '../harness/fixtures';
import { createServerMock, indexDefinitions } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

beforeAll(() => indexDefinitions(), 60_000); // the FHIR definitions, once, outside any test's time

const NOW = Date.parse('2026-11-27T15:17:00.000Z');
const DAY = 86_400_000;
useFixedTimeAndQuietConsole(NOW);

type Rights = Record<string, Set<string>>;

/**
 * The rights a request log shows a bot using. A search needs `search` on its type and `read` on
 * every type it returns (matches and includes); `$find` reads the Schedule, searches its Slots and
 * reads its actor under the caller's rights (as the server's implementation does); a batch PATCH is
 * an `update`; a batch create is conditional (`If-None-Exist`), so it is a `create` and a `search`.
 * @param server - The server the bot ran against.
 * @returns Interactions by resource type.
 */
async function usedRights(server: ServerMock): Promise<Rights> {
  const rights: Rights = {};
  const grant = (type: string, ...interactions: string[]): void => {
    rights[type] ??= new Set();
    interactions.forEach((i) => rights[type].add(i));
  };
  for (const r of server.requests) {
    const [type, id, operation] = r.path.split('/');
    if (r.method === 'GET' && operation === '$find') {
      const schedule = await server.read<Schedule>('Schedule', id);
      grant('Schedule', 'read');
      grant('Slot', 'search', 'read');
      schedule.actor?.forEach((a) => grant(a.reference?.split('/')[0] as string, 'read'));
    } else if (r.method === 'GET' && operation === '_history') {
      grant(type, 'history');
    } else if (r.method === 'GET') {
      grant(type, id ? 'read' : 'search');
      r.responseTypes?.forEach((t) => grant(t, 'read'));
    }
    for (const entry of r.batchEntries ?? []) {
      const [method, url] = entry.split(' ');
      grant(url.split('/')[0], ...(method === 'PATCH' || method === 'PUT' ? ['update'] : method === 'POST' ? ['create', 'search'] : ['read']));
    }
  }
  return rights;
}

function granted(policy: AccessPolicy): Record<string, string[]> {
  return Object.fromEntries((policy.resource ?? []).map((r) => [r.resourceType, [...(r.interaction ?? [])].sort()]));
}

function sorted(rights: Rights): Record<string, string[]> {
  return Object.fromEntries(Object.entries(rights).map(([type, set]) => [type, [...set].sort()]));
}

function merge(all: Rights[]): Rights {
  const out: Rights = {};
  for (const rights of all) {
    for (const [type, set] of Object.entries(rights)) {
      out[type] = new Set([...(out[type] ?? []), ...set]);
    }
  }
  return out;
}

describe('AccessPolicies grant exactly what the bots use', () => {
  test('ooo-reroute: event path and sweep', async () => {
    const scenarios: ServerMock[] = [];
    // Owner away with an available cover; an owner on duty; a PractitionerRole owner; a server without $find (never asked).
    for (const variant of ['cover', 'on-duty', 'role', 'no-find'] as const) {
      const server = createServerMock({ find: variant === 'no-find' ? 'absent' : 'bundle' });
      const practitioner = await seedPractitioner(server);
      const owner = variant === 'role' ? await server.seed({ resourceType: 'PractitionerRole', practitioner: ref(practitioner), extension: practitioner.extension }) : practitioner;
      const schedule = await seedSchedule(server, [ref(owner)]);
      if (variant !== 'on-duty') {
        await seedBlock(server, schedule, new Date(NOW - DAY).toISOString(), new Date(NOW + DAY).toISOString());
      }
      const cover = await seedPractitioner(server);
      await seedSchedule(server, [ref(cover)]);
      const patient = ref(await seedPatient(server));
      const thread = await seedThread(server, { subject: patient, recipient: [patient, ref(owner)] });
      await seedTask(server, thread, { owner: ref(owner) });
      server.resetCounts();
      const secrets: Record<string, string> = variant === 'cover' ? { OOO_COVERAGE: JSON.stringify({ [ref(owner).reference]: ref(cover).reference }) } : {};
      await oooHandler(server.medplum, botEvent({ ...message(thread, patient), id: 'm1' }, secrets));
      scenarios.push(server);
    }
    // The sweep (cron run): reads open threads and their messages, finishes a half-done reroute.
    const server = createServerMock();
    const owner = await seedPractitioner(server);
    const schedule = await seedSchedule(server, [ref(owner)]);
    await seedBlock(server, schedule, new Date(NOW - DAY).toISOString(), new Date(NOW + DAY).toISOString());
    const patient = ref(await seedPatient(server));
    for (const rerouted of [false, true]) {
      const thread = await seedThread(server, { subject: patient, recipient: [patient, ref(owner)] });
      await server.seed({ ...message(thread, patient), sent: new Date(NOW - 60_000).toISOString() });
      const record = { url: 'urn:medplum-messaging-bots:ooo-reroute', extension: [{ url: 'from', valueReference: ref(owner) }, { url: 'header-version', valueId: thread.meta?.versionId }, { url: 'reason', valueCode: 'absent' }] };
      const note = { authorString: 'ooo-reroute', text: 'Returned to the team pool.', extension: [record] };
      // Stored before the patient wrote and not changed since: no history to read.
      await seedTask(server, thread, rerouted ? { note: [note] } : { owner: ref(owner), meta: { lastUpdated: new Date(NOW - DAY).toISOString() } });
    }
    // A Task the bot sent to the pool, given back to the owner after the patient wrote: its history says by whom.
    const handedBack = await seedThread(server, { subject: patient, recipient: [patient, ref(owner)] });
    // Sent and stored a minute ago; the Task given back half a minute later, knowing the message.
    await server.seed({ ...message(handedBack, patient), sent: new Date(NOW - 60_000).toISOString(), meta: { lastUpdated: new Date(NOW - 60_000).toISOString() } });
    const pooled = { authorString: 'ooo-reroute', text: 'Returned to the team pool.', time: new Date(NOW - DAY).toISOString(), extension: [{ url: 'urn:medplum-messaging-bots:ooo-reroute', extension: [{ url: 'from', valueReference: ref(owner) }, { url: 'reason', valueCode: 'absent' }] }] };
    const given = await seedTask(server, handedBack, { note: [pooled], meta: { lastUpdated: new Date(NOW - DAY).toISOString() } });
    await server.seedVersion({ ...given, owner: ref(owner), meta: { lastUpdated: new Date(NOW - 30_000).toISOString() } });
    server.resetCounts();
    expect(await oooHandler(server.medplum, botEvent({ resourceType: 'Bot', id: 'ooo' }, { BOT_TIMEOUT_SECONDS: '60' }))).toMatchObject({ rerouted: 1, repaired: 1 });
    expect(server.count((r) => r.path.endsWith('/_history'))).toBe(1);
    scenarios.push(server);

    // The response lifecycle: a patient opens a Task (its header read by id), a reply completes it,
    // the sweep opens one for a lost event and cancels one on a closed thread.
    const lifecycle = createServerMock();
    const on = { RESPONSE_TASKS: 'on', BOT_TIMEOUT_SECONDS: '60' };
    const nurse = await seedPractitioner(lifecycle);
    await seedSchedule(lifecycle, [ref(nurse)]);
    const someone = ref(await seedPatient(lifecycle));
    const conversation = await seedThread(lifecycle, { subject: someone, recipient: [someone, ref(nurse)] });
    const asked = await lifecycle.seed({ ...message(conversation, someone), sent: new Date(NOW - 60_000).toISOString() });
    expect(await oooHandler(lifecycle.medplum, botEvent(asked, on))).toMatchObject({ opened: 1 });
    const answered = await lifecycle.seed({ ...message(conversation, ref(nurse)), sent: new Date(NOW).toISOString() });
    expect(await oooHandler(lifecycle.medplum, botEvent(answered, on))).toMatchObject({ completed: 1 });
    const lost = await seedThread(lifecycle, { subject: someone, recipient: [someone, ref(nurse)] });
    await lifecycle.seed({ ...message(lost, someone), sent: new Date(NOW - 60_000).toISOString() });
    await seedTask(lifecycle, await seedThread(lifecycle, { subject: someone, status: 'completed' }), { owner: ref(nurse) });
    expect(await oooHandler(lifecycle.medplum, botEvent({ resourceType: 'Bot', id: 'ooo' }, on))).toMatchObject({ opened: 1, cancelled: 1 });
    // A sweep six hours later records itself on the marker the first one made (src/realtime/sweep-marker.ts).
    vi.setSystemTime(NOW + MARKER_REFRESH_MS);
    expect(await oooHandler(lifecycle.medplum, botEvent({ resourceType: 'Bot', id: 'ooo' }, on))).toMatchObject({ stoppedEarly: false });
    scenarios.push(lifecycle);

    const used = merge(await Promise.all(scenarios.map(usedRights)));
    expect(sorted(used)).toEqual(granted(BOT_WIRING['ooo-reroute'].accessPolicy));
  });

  test('stale-thread-reminders', async () => {
    const server = createServerMock();
    await seedClinic(server, NOW, 200); // creates reminders, and finds reminders already open
    const patient = ref(await seedPatient(server));
    const provider = ref(await seedPractitioner(server));
    const thread = await seedThread(server, { subject: patient, meta: { lastUpdated: new Date(NOW - 30 * DAY).toISOString() } });
    const reminder = { code: { coding: [REMINDER_CODE] }, status: 'requested' as const };
    await seedTask(server, thread, { ...reminder, authoredOn: new Date(NOW - 2 * DAY).toISOString() }); // escalates
    const answered = await seedThread(server, { subject: patient });
    await seedTask(server, answered, { ...reminder, authoredOn: new Date(NOW - 2 * DAY).toISOString() });
    await server.seed({ ...message(answered, provider), sent: new Date(NOW - DAY).toISOString() }); // closes it
    server.resetCounts();
    const summary = await staleHandler(server.medplum, botEvent({}, { BOT_TIMEOUT_SECONDS: '600' }));
    expect(summary).toMatchObject({ escalated: 1, closed: 1 });
    expect(summary.created).toBeGreaterThan(0);
    // A second run finds the reconcile's marker the first made, and records its progress on it.
    await staleHandler(server.medplum, botEvent({}, { BOT_TIMEOUT_SECONDS: '600' }));
    expect(sorted(await usedRights(server))).toEqual(granted(BOT_WIRING['stale-thread-reminders'].accessPolicy));
  });
});
