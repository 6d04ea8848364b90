// The bots never undo a person (issue #28, simulation invariant 3, seed 4 th15): a Task the bot
// routed before the current waiting episode, given by hand to a doctor after the patient's latest
// message, is the person's choice for that message, even though the bot's notes cannot say who
// changed it (the server gives a Project's bots no meta.author). The Task's history can: read only
// then (10 points), and only for a Task that would move.
import type { Task } from '@medplum/fhirtypes';
import type { WithId } from '@medplum/core';
import { describe, expect, test } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import type { RerouteSummary, SweepSummary } from '../../src/ooo-reroute';
import { OOO_BOT_NAME, ownerChangeOf, planThread, REROUTE_RECORD_URL } from '../../src/lib/reroute-plan';
import type { OwnerFacts } from '../../src/lib/availability';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedMessage, seedOwnedThread, seedPractitioner } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

// Friday 2026-11-27 in New York (UTC-5).
const local = (hhmm: string): string => `2026-11-27T${String(Number(hhmm.slice(0, 2)) + 5).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;
const NOW = Date.parse(local('12:00'));
const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };
useFixedTimeAndQuietConsole(NOW);

/** The bot's note when it sent the Task to the pool (the lifecycle's route, or a reroute). */
const poolNote = (time: string, from?: string) => ({
  time,
  authorString: OOO_BOT_NAME,
  text: 'Returned to the team pool.',
  extension: [{ url: REROUTE_RECORD_URL, extension: [...(from ? [{ url: 'from', valueReference: { reference: from } }] : []), { url: 'reason', valueCode: 'absent' }] }],
});

/**
 * Dr A away all week (a vacation block). 03:04: the bot sent the Task to the pool. 07:04: the care
 * team replied (stored late), then the patient wrote at 09:00 and 09:05. `versions` are the later
 * changes of the Task, each [time, owner, by the bot?].
 */
async function world(versions: [string, 'drA' | 'none', 'person' | 'bot'][]) {
  const server = createServerMock();
  const t = await seedOwnedThread(server, { away: true, task: { owner: undefined, status: 'requested', authoredOn: local('03:04'), note: [poolNote(local('03:04'))], meta: { lastUpdated: local('03:04') } } });
  const colleague = ref(await seedPractitioner(server));
  await seedMessage(server, t.thread, t.patient, local('03:00'));
  await seedMessage(server, t.thread, colleague, local('07:04'), { meta: { lastUpdated: local('08:30') } });
  await seedMessage(server, t.thread, t.patient, local('09:00'));
  const latest = await seedMessage(server, t.thread, t.patient, local('09:05'));
  let task = await server.read<WithId<Task>>('Task', t.task.id);
  for (const [time, owner, by] of versions) {
    const note = by === 'bot' ? [...(task.note ?? []), poolNote(time, ref(t.owner).reference)] : task.note;
    task = await server.seedVersion<WithId<Task>>({ ...task, owner: owner === 'drA' ? ref(t.owner) : undefined, note, meta: { lastUpdated: time } });
  }
  server.resetCounts();
  return { server, t, latest };
}

async function sweep(server: ServerMock): Promise<SweepSummary> {
  return (await handler(server.medplum, botEvent(CRON, { BOT_TIMEOUT_SECONDS: '60' }))) as SweepSummary;
}

const historyReads = (server: ServerMock): number => server.count((r) => r.path.endsWith('/_history'));

describe('a Task given by hand to an absent doctor after the patient\'s latest message', () => {
  test('the sweep keeps it: the history shows a person gave it after the message (one history read)', async () => {
    const { server, t } = await world([[local('11:57'), 'drA', 'person']]);
    const summary = await sweep(server);
    expect(summary).toMatchObject({ waiting: 1, rerouted: 0, failed: 0 });
    expect((await server.read<Task>('Task', t.task.id)).owner).toEqual(ref(t.owner));
    expect(historyReads(server)).toBe(1);
    expect(server.points((r) => r.path.endsWith('/_history'))).toBe(10);
  });

  test('the event path for a late copy of the latest message keeps it too', async () => {
    const { server, t, latest } = await world([[local('11:57'), 'drA', 'person']]);
    const summary = (await handler(server.medplum, botEvent(latest))) as RerouteSummary;
    expect(summary).toMatchObject({ rerouted: 0 });
    expect(summary.decisions).toEqual([expect.objectContaining({ action: 'kept', reason: 'assigned by a person after the patient wrote' })]);
    expect((await server.read<Task>('Task', t.task.id)).owner).toEqual(ref(t.owner));
  });

  test('given to them before the latest message, and only accepted after it: handed off (the history says when the owner changed)', async () => {
    const { server, t } = await world([
      [local('09:02'), 'drA', 'person'],
      [local('11:00'), 'drA', 'person'],
    ]);
    expect(await sweep(server)).toMatchObject({ rerouted: 1 });
    expect((await server.read<Task>('Task', t.task.id)).owner).toBeUndefined();
    expect(historyReads(server)).toBe(1);
  });

  test('not changed since the latest message: handed off, no history read', async () => {
    const { server, t } = await world([[local('09:02'), 'drA', 'person']]);
    expect(await sweep(server)).toMatchObject({ rerouted: 1 });
    expect((await server.read<Task>('Task', t.task.id)).owner).toBeUndefined();
    expect(historyReads(server)).toBe(0);
  });
});

describe('ownerChangeOf and planThread (pure)', () => {
  const v = (id: string, time: string, owner: string | undefined, botNotes: number, extra: Partial<Task> = {}): WithId<Task> => ({
    resourceType: 'Task',
    id: 't',
    meta: { versionId: id, lastUpdated: time },
    status: 'requested',
    intent: 'order',
    owner: owner ? { reference: owner } : undefined,
    note: Array.from({ length: botNotes }, () => ({ authorString: OOO_BOT_NAME, text: 'x' })),
    ...extra,
  });
  const A = 'Practitioner/a';

  test('the version that gave the owner: a person\'s (no new bot note) or the bot\'s', () => {
    const person = [v('3', '2026-11-27T16:00:00Z', A, 1), v('2', '2026-11-27T15:00:00Z', A, 1), v('1', '2026-11-27T08:00:00Z', undefined, 1)];
    expect(ownerChangeOf(person[0], person, true)).toEqual({ at: Date.parse('2026-11-27T15:00:00Z'), by: 'person' });
    const bot = [v('2', '2026-11-27T15:00:00Z', A, 2), v('1', '2026-11-27T08:00:00Z', undefined, 1)];
    expect(ownerChangeOf(bot[0], bot, true)).toEqual({ at: Date.parse('2026-11-27T15:00:00Z'), by: 'bot' });
  });

  test('owner since the Task was made: its authoredOn; a history cut short: at most the oldest version read, a person\'s', () => {
    const made = [v('2', '2026-11-27T16:00:00Z', A, 0, { authoredOn: '2026-11-20T09:00:00Z' }), v('1', '2026-11-27T15:00:00Z', A, 0, { authoredOn: '2026-11-20T09:00:00Z' })];
    expect(ownerChangeOf(made[0], made, true)).toEqual({ at: Date.parse('2026-11-20T09:00:00Z'), by: 'person', made: true });
    expect(ownerChangeOf(made[0], made, false)).toEqual({ at: Date.parse('2026-11-27T15:00:00Z'), by: 'person' });
  });

  test('a history not read keeps a Task that would move, saying so; a bot\'s change after the message does not', () => {
    const nowMs = Date.parse('2026-11-27T17:00:00Z');
    const absent: OwnerFacts = { owner: A, timeZone: 'America/New_York', schedules: [{ schedule: 'Schedule/s', rules: { sets: [] }, blocks: [{ slot: 'Slot/s', start: nowMs - 3_600_000, end: nowMs + 3_600_000 }] }] };
    const route = { now: nowMs, owner: (r: string) => (r === A ? absent : undefined), coverage: {}, serviceTypes: [] };
    const task = v('2', '2026-11-27T16:00:00Z', A, 0);
    const thread = { thread: 'Communication/h', tasks: [task], trigger: 'Communication/m', triggerTime: Date.parse('2026-11-27T15:00:00Z'), waitingOnCareTeam: true };
    const unread = planThread({ ...thread, ownerChanges: new Map([['Task/t', { unread: 'quota' }]]) }, route);
    expect(unread.decisions[0]).toMatchObject({ action: 'kept', reason: 'owner changed after the patient wrote; its history not read (quota)' });
    const byBot = planThread({ ...thread, ownerChanges: new Map([['Task/t', { at: Date.parse('2026-11-27T16:00:00Z'), by: 'bot' as const }]]) }, route);
    expect(byBot.decisions[0]).toMatchObject({ action: 'to-pool' });
  });
});
