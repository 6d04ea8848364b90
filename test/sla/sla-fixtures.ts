// The SLA test clinic: Tasks with version histories at chosen times, used by the tests and by
// `npm run sla-export:sample` (the README's sample summary).
import type { Task } from '@medplum/fhirtypes';
import { ref, REMINDER_CODE, seedMessage, seedPatient, seedPractitioner, seedThread } from '../harness/fixtures';
import type { ServerMock } from '../harness/server-mock';

export const NOW = new Date('2026-11-27T12:00:00.000Z');
const H = 3_600_000;
export const at = (hoursBeforeNow: number): string => new Date(NOW.getTime() - hoursBeforeNow * H).toISOString();
export const RESPOND = { system: 'https://medplum.com/task-codes', code: 'respond-to-message' };

/**
 * Seeds a Task and its later versions, each at its own time.
 * @param server - The server.
 * @param first - The first version.
 * @param firstAt - Its time.
 * @param later - Later changes with their times.
 * @returns The last version.
 */
export async function seedHistory(server: ServerMock, first: Partial<Task>, firstAt: string, later: [string, Partial<Task>][]): Promise<Task & { id: string }> {
  let task = await server.seed<Task>({ resourceType: 'Task', status: 'requested', intent: 'order', ...first, meta: { lastUpdated: firstAt } });
  for (const [when, change] of later) {
    task = (await server.seedVersion({ ...task, ...change, meta: { lastUpdated: when } })) as Task & { id: string };
  }
  return task;
}

/**
 * Seeds Tasks covering the metrics: met, breached, rerouted twice, completed without reply, escalated twice.
 * @param server - The server.
 * @returns The Task ids by case.
 */
export async function clinic(server: ServerMock): Promise<Record<string, string>> {
  const patient = ref(await seedPatient(server));
  const alice = ref(await seedPractitioner(server));
  const bob = ref(await seedPractitioner(server));
  const thread = async (): Promise<{ reference: string; id: string }> => {
    const t = await seedThread(server, { subject: patient });
    return { reference: `Communication/${t.id}`, id: t.id };
  };
  const base = (code: typeof RESPOND, authoredHoursAgo: number, focus: { reference: string }, priority: Task['priority'] = 'routine'): Partial<Task> => ({
    code: { coding: [code] },
    priority,
    focus,
    for: patient,
    authoredOn: at(authoredHoursAgo),
  });
  const ids: Record<string, string> = {};

  // Met: claimed after 1 h, answered after 2 h, completed after 4 h.
  const t1 = await thread();
  ids.met = (await seedHistory(server, base(RESPOND, 28, t1), at(28), [
    [at(27), { owner: alice, status: 'accepted' }],
    [at(24), { status: 'completed' }],
  ])).id;
  await seedMessage(server, { resourceType: 'Communication', id: t1.id, status: 'in-progress' }, patient, at(29));
  await seedMessage(server, { resourceType: 'Communication', id: t1.id, status: 'in-progress' }, alice, at(26));

  // Never claimed, no reply, urgent for 10 h: breached.
  ids.breached = (await seedHistory(server, base(RESPOND, 10, await thread(), 'urgent'), at(10), [])).id;

  // Rerouted twice by the out-of-office bot.
  const ooo = (text: string) => ({ authorString: 'ooo-reroute', text, time: at(0) });
  ids.rerouted = (await seedHistory(server, base(RESPOND, 20, await thread()), at(20), [
    [at(19), { owner: alice, status: 'accepted' }],
    [at(15), { owner: undefined, status: 'requested', note: [ooo('returned to the pool')] }],
    [at(14), { owner: bob, status: 'accepted' }],
    [at(12), { owner: alice, status: 'requested', note: [ooo('returned to the pool'), ooo('reassigned')] }],
  ])).id;

  // Completed without a reply, 5 h ago, routine: first reply open (within 24 h).
  ids.noReply = (await seedHistory(server, base(RESPOND, 5, await thread()), at(5), [
    [at(4), { owner: bob, status: 'in-progress' }],
    [at(2), { status: 'completed' }],
  ])).id;

  // A reminder escalated twice; only the patient wrote.
  const t5 = await thread();
  ids.reminder = (await seedHistory(server, base(REMINDER_CODE, 50, t5, 'urgent'), at(50), [
    [at(26), { priority: 'asap' }],
    [at(2), { priority: 'stat' }],
  ])).id;
  await seedMessage(server, { resourceType: 'Communication', id: t5.id, status: 'in-progress' }, patient, at(1));
  return ids;
}

