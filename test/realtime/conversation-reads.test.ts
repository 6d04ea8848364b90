// readConversations reads a thread back only as far as the decisions look: everything they decide
// from the partial read must be what they decide from the whole history.
import type { WithId } from '@medplum/core';
import type { Communication, Task } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { conversationOf, lifecycleNeeds, readConversations, threadToReroute } from '../../src/lib/conversation-reads';
import { answerOf, DEFAULT_RESPONSE_CODE, isResponseTask, lastCareTeamWriter, openedAt } from '../../src/lib/response-lifecycle';
import { currentEpisode, firstReplyAfter } from '../../src/lib/thread';
import type { Conversation } from '../../src/lib/thread';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { ref, seedMessage, seedPatient, seedPractitioner, seedThread } from '../harness/fixtures';
import type { Ref } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

const NOW = Date.parse('2026-11-27T15:17:00.000Z');
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const iso = (t: number): string => new Date(t).toISOString();

useFixedTimeAndQuietConsole(NOW);

/** A small deterministic random source. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

/** What every decision reads of a conversation. */
function decisions(talk: Conversation, tasks: Task[]): unknown {
  const episode = currentEpisode(talk);
  const reroute = threadToReroute({ thread: 'x', tasks: [] }, talk, true);
  return {
    boundary: episode.boundary?.ref,
    opening: episode.opening?.ref,
    last: episode.last?.ref,
    // The trigger is decided on only while the patient waits.
    trigger: reroute.waitingOnCareTeam ? reroute.trigger : 'not waiting',
    triggerTime: reroute.waitingOnCareTeam ? reroute.triggerTime : 'not waiting',
    waiting: reroute.waitingOnCareTeam,
    writer: lastCareTeamWriter(talk),
    replies: tasks.map((t) => firstReplyAfter(talk, openedAt(t, talk))?.ref ?? null),
    answers: tasks.map((t) => answerOf(t, talk)?.ref ?? null),
  };
}

describe('a partial read decides what the whole history decides', () => {
  test('threads of every shape: late deliveries, read receipts, team inboxes, devices, entered-in-error, open response Tasks', { timeout: 300_000 }, async () => {
    const server = createServerMock();
    const next = random(7);
    const patient = ref(await seedPatient(server));
    const nurse = ref(await seedPractitioner(server));
    const inbox: Ref = { reference: 'CareTeam/inbox' };
    const device: Ref = { reference: 'Device/auto-ack' };
    const threads: { header: WithId<Communication>; tasks: Task[] }[] = [];
    for (let i = 0; i < 150; i++) {
      const header = (await seedThread(server, i % 3 === 0 ? { sender: patient, sent: iso(NOW - 90 * DAY) } : {})) as WithId<Communication>;
      const messages: WithId<Communication>[] = [];
      const count = Math.floor(next() * 60);
      // Spread over minutes to months.
      const span = [60 * MINUTE, 6 * 60 * MINUTE, DAY, 10 * DAY, 60 * DAY][i % 5];
      for (let j = 0; j < count; j++) {
        const r = next();
        const sender = r < 0.5 ? patient : r < 0.75 ? nurse : r < 0.9 ? inbox : device;
        const sent = NOW - Math.floor(next() * span);
        const late = next() < 0.15 ? Math.floor(next() * 2 * DAY) : 0; // stored late, or read later
        const stored = Math.min(NOW, sent + late);
        messages.push(
          (await seedMessage(server, header, sender, iso(sent), {
            meta: { lastUpdated: iso(stored) },
            ...(next() < 0.05 ? { status: 'entered-in-error' } : {}),
          })) as WithId<Communication>
        );
      }
      const tasks: Task[] = [];
      if (messages.length && next() < 0.5) {
        const opening = messages[Math.floor(next() * messages.length)];
        const authoredOn = iso(Math.min(NOW, Date.parse(opening.sent as string) + Math.floor(next() * DAY)));
        tasks.push({ resourceType: 'Task', status: 'requested', intent: 'order', code: { coding: [DEFAULT_RESPONSE_CODE] }, authoredOn, input: [{ type: { text: 'Patient message' }, valueReference: { reference: `Communication/${opening.id}` } }] });
      }
      if (next() < 0.2) {
        tasks.push({ resourceType: 'Task', status: 'requested', intent: 'order', code: { coding: [DEFAULT_RESPONSE_CODE] }, authoredOn: iso(NOW - Math.floor(next() * 20 * DAY)) });
      }
      if (next() < 0.1) {
        // A hand-off a person made, known only by when it was stored.
        tasks.push({ resourceType: 'Task', status: 'requested', intent: 'order', code: { coding: [DEFAULT_RESPONSE_CODE] }, meta: { lastUpdated: iso(NOW - Math.floor(next() * 5 * DAY)) } });
      }
      threads.push({ header, tasks });
    }
    const all = await server.searchAll<Communication>('Communication', 'part-of:missing=false&_count=100000');
    server.resetCounts();
    const read = await readConversations(
      server.medplum,
      threads.map(({ header, tasks }) => ({ thread: `Communication/${header.id}`, header, ...lifecycleNeeds(tasks, (t) => isResponseTask(t, DEFAULT_RESPONSE_CODE)) })),
      { writer: true }
    );
    let shorter = 0;
    for (const { header, tasks } of threads) {
      const ref = `Communication/${header.id}`;
      const whole = conversationOf(header, all.filter((m) => m.partOf?.[0]?.reference === ref) as WithId<Communication>[]);
      const partial = read.get(ref)?.conversation as Conversation;
      expect(decisions(partial, tasks), ref).toEqual(decisions(whole, tasks));
      shorter += partial.points.length < whole.points.length ? 1 : 0;
    }
    expect(shorter).toBeGreaterThan(25); // many threads were read only in part
    expect(server.requests.every((r) => !new URL(r.url).searchParams.has('_offset'))).toBe(true);
  });
});

describe('how far back it reads', () => {
  async function world(): Promise<{ server: ServerMock; patient: Ref; nurse: Ref; header: WithId<Communication> }> {
    const server = createServerMock();
    const patient = ref(await seedPatient(server));
    const nurse = ref(await seedPractitioner(server));
    const header = (await seedThread(server)) as WithId<Communication>;
    return { server, patient, nurse, header };
  }

  test('a thread nobody answered yet: one search, the whole thread', async () => {
    const w = await world();
    for (let j = 0; j < 3; j++) {
      await seedMessage(w.server, w.header, w.patient, iso(NOW - (j + 1) * DAY));
    }
    w.server.resetCounts();
    const read = (await readConversations(w.server.medplum, [{ thread: `Communication/${w.header.id}`, header: w.header }])).get(`Communication/${w.header.id}`);
    expect(read?.conversation.points).toHaveLength(3);
    expect(read?.readFrom).toBe(-Infinity);
    expect(w.server.count()).toBe(1);
  });

  test('a thread quiet for two months after hundreds of messages: a few pages back, not its history', { timeout: 120_000 }, async () => {
    const w = await world();
    for (let j = 0; j < 600; j++) {
      await seedMessage(w.server, w.header, j % 2 ? w.nurse : w.patient, iso(NOW - 200 * DAY + j * 10 * MINUTE));
    }
    await seedMessage(w.server, w.header, w.nurse, iso(NOW - 61 * DAY));
    for (let j = 0; j < 60; j++) {
      await seedMessage(w.server, w.header, w.patient, iso(NOW - 60 * DAY + j * DAY));
    }
    w.server.resetCounts();
    const read = (await readConversations(w.server.medplum, [{ thread: `Communication/${w.header.id}`, header: w.header }])).get(`Communication/${w.header.id}`);
    const episode = currentEpisode(read?.conversation as Conversation);
    expect(episode.boundary?.time).toBe(NOW - 61 * DAY);
    expect(episode.opening?.time).toBe(NOW - 60 * DAY);
    expect(w.server.count()).toBeLessThanOrEqual(2);
    expect(read?.conversation.points.length).toBeLessThan(200);
  });

  test('the lifecycle reads back to its open Task: its opening message and everything since, however old', { timeout: 120_000 }, async () => {
    const w = await world();
    const opening = await seedMessage(w.server, w.header, w.patient, iso(NOW - 40 * DAY));
    const early = await seedMessage(w.server, w.header, w.nurse, iso(NOW - 39.9 * DAY)); // answered before the Task was even made
    for (let j = 0; j < 400; j++) {
      await seedMessage(w.server, w.header, w.patient, iso(NOW - 39.89 * DAY + j * ((0.38 * DAY) / 400)));
    }
    // The Task, authored 39.5 days ago; then 148 patient messages and the care team's last word.
    for (let j = 0; j < 148; j++) {
      await seedMessage(w.server, w.header, w.patient, iso(NOW - 39.4 * DAY + j * ((38 * DAY) / 148)));
    }
    await seedMessage(w.server, w.header, w.nurse, iso(NOW - DAY));
    const task: Task = {
      resourceType: 'Task',
      status: 'requested',
      intent: 'order',
      code: { coding: [DEFAULT_RESPONSE_CODE] },
      authoredOn: iso(NOW - 39.5 * DAY),
      input: [{ valueReference: { reference: `Communication/${opening.id}` }, type: { text: 'Patient message' } }],
    };
    const ref = `Communication/${w.header.id}`;
    const episodeOnly = (await readConversations(w.server.medplum, [{ thread: ref, header: w.header }])).get(ref)?.conversation as Conversation;
    expect(episodeOnly.points.some((p) => p.ref === `Communication/${opening.id}`)).toBe(false);
    const withTask = (await readConversations(w.server.medplum, [{ thread: ref, header: w.header, ...lifecycleNeeds([task], () => true) }])).get(ref)?.conversation as Conversation;
    // The first reply after the opening message, though it came before the Task was authored.
    expect(firstReplyAfter(withTask, openedAt(task, withTask))?.ref).toBe(`Communication/${early.id}`);
  });
});
