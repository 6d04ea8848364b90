// A recipient a person listed again after an absence reroute took them off is their choice: a
// follow-up costs what any follow-up costs when nothing moves (the README's 40 points), reads no
// Schedule for them, and leaves them on the thread (issue #28, simulation invariant 7, seed 2
// th258). A half-done reroute (the header patch did not apply, the header is the version the
// reroute read) is still finished.
import type { Communication, Task } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import type { RerouteSummary } from '../../src/ooo-reroute';
import { OOO_BOT_NAME, REROUTE_RECORD_URL } from '../../src/lib/reroute-plan';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedMessage, seedOwnedThread } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';

const NOW = Date.parse('2026-11-27T15:17:00.000Z');
useFixedTimeAndQuietConsole(NOW);

/**
 * Dr A away (a vacation block); at 15:00 the bot sent the Task to the pool for the patient's first
 * message, reading header version `read`. Then, when `readded`, the reroute's header patch applied
 * (A off the thread) and a person listed A again at 15:01; otherwise the header patch never applied.
 */
async function scenario(readded: boolean) {
  const server = createServerMock();
  const t = await seedOwnedThread(server, { away: true, task: { owner: undefined, status: 'requested' } });
  const first = await seedMessage(server, t.thread, t.patient, '2026-11-27T14:59:00.000Z');
  const read = t.thread.meta?.versionId as string;
  const note = {
    time: '2026-11-27T15:00:00.000Z',
    authorString: OOO_BOT_NAME,
    text: 'Returned to the team pool: Dr A is away.',
    extension: [
      {
        url: REROUTE_RECORD_URL,
        extension: [
          { url: 'from', valueReference: ref(t.owner) },
          { url: 'trigger', valueReference: ref(first) },
          { url: 'header-version', valueId: read },
          { url: 'reason', valueCode: 'absent' },
        ],
      },
    ],
  };
  await server.seedVersion<Task>({ ...t.task, owner: undefined, status: 'requested', note: [note], meta: { lastUpdated: '2026-11-27T15:00:00.000Z' } });
  if (readded) {
    const off = await server.seedVersion<Communication>({ ...t.thread, recipient: [t.patient], meta: { lastUpdated: '2026-11-27T15:00:00.000Z' } });
    await server.seedVersion<Communication>({ ...off, recipient: [t.patient, ref(t.owner)], meta: { lastUpdated: '2026-11-27T15:01:00.000Z' } });
  }
  const followUp = await seedMessage(server, t.thread, t.patient, new Date(NOW - 1_000).toISOString());
  server.resetCounts();
  const summary = (await handler(server.medplum, botEvent(followUp))) as RerouteSummary;
  const header = await server.read<Communication>('Communication', t.thread.id);
  return { server, summary, header, t };
}

describe('a follow-up after an absence reroute whose owner a person listed again', () => {
  test('costs 40 points at most and reads no Schedule for them; they stay on the thread', async () => {
    const { server, summary, header, t } = await scenario(true);
    expect(summary).toMatchObject({ outcome: 'done', rerouted: 0, repaired: 0 });
    expect(server.countByKey()).toEqual({ 'GET Task': 1 });
    expect(server.points()).toBeLessThanOrEqual(40);
    expect(header.recipient).toEqual([t.patient, ref(t.owner)]);
  });

  test('control: the reroute\'s header patch never applied (the header is the version it read): finished now', async () => {
    const { summary, header, t } = await scenario(false);
    expect(summary).toMatchObject({ outcome: 'done', rerouted: 0, repaired: 1 });
    expect(header.recipient).toEqual([t.patient]);
  });
});
