// Pins each metric definition of src/sla/sla-metrics.ts on its own, with worlds where a slightly
// different definition gives a different answer.
import type { Task } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { computeRow, parseTargets, slaColumns, summarize } from '../../src/sla/sla-metrics';
import type { SlaRow, ThreadMessage } from '../../src/sla/sla-metrics';
import { at, NOW } from './sla-fixtures';

const version = (over: Partial<Task>, lastUpdated?: string): Task => ({
  resourceType: 'Task',
  id: 't',
  status: 'requested',
  intent: 'order',
  authoredOn: at(10),
  ...over,
  ...(lastUpdated ? { meta: { lastUpdated } } : {}),
});
const reply = (id: string, hoursAgo: number, sender = 'Practitioner/a'): ThreadMessage => ({ id, time: at(hoursAgo), sender: { reference: sender } });

describe('parseTargets', () => {
  test('a valid file is taken as it is, zero hours included', () => {
    const value = { firstReply: { routine: 24, stat: 0 }, claim: {}, complete: { urgent: 8 } };
    expect(parseTargets(value)).toEqual({ targets: value });
  });

  test('each kind of mistake is named', () => {
    const cases: [unknown, string][] = [
      [null, 'must be a JSON object like {"firstReply": {"routine": 24}}'],
      ['24', 'must be a JSON object like {"firstReply": {"routine": 24}}'],
      [[{ firstReply: {} }], 'must be a JSON object like {"firstReply": {"routine": 24}}'],
      [{ firstAnswer: {} }, 'unknown target "firstAnswer" (use firstReply, claim, complete)'],
      [{ claim: null }, 'claim must be an object of hours per priority'],
      [{ claim: 4 }, 'claim must be an object of hours per priority'],
      [{ claim: [4] }, 'claim must be an object of hours per priority'],
      [{ complete: { soon: 1 } }, 'complete.soon: unknown priority (use routine, urgent, asap, stat)'],
      [{ complete: { routine: '8' } }, 'complete.routine: "8" is not a number of hours'],
      [{ complete: { routine: -1 } }, 'complete.routine: -1 is not a number of hours'],
      [{ complete: { routine: Number.POSITIVE_INFINITY } }, 'complete.routine: null is not a number of hours'],
    ];
    for (const [value, error] of cases) {
      expect(parseTargets(value), JSON.stringify(value)).toEqual({ error });
    }
  });
});

test('slaColumns: every column in order, then three per target', () => {
  const fixed = [
    'id',
    'code',
    'thread_id',
    'patient_id',
    'priority',
    'status',
    'authored_on',
    'started_at',
    'first_claimed_at',
    'first_reply_at',
    'first_reply_message_id',
    'completed_at',
    'clock',
    'hours_to_claim',
    'hours_to_first_reply',
    'hours_to_complete',
    'reroute_count',
    'escalation_count',
  ];
  expect(slaColumns({})).toEqual(fixed);
  expect(slaColumns({ firstReply: {}, complete: {} })).toEqual([
    ...fixed,
    'target_firstReply_hours',
    'target_firstReply_elapsed_hours',
    'target_firstReply_status',
    'target_complete_hours',
    'target_complete_elapsed_hours',
    'target_complete_status',
  ]);
});

describe('computeRow', () => {
  test('identity columns: code as system|code, thread id, patient; absent ones are null', () => {
    const full = version({
      code: { coding: [{ system: 'https://medplum.com/task-codes', code: 'respond-to-message' }] },
      focus: { reference: 'Communication/thread-1' },
      for: { reference: 'Patient/p1' },
    }, at(10));
    expect(computeRow([full], [], {}, NOW)).toMatchObject({ id: 't', code: 'https://medplum.com/task-codes|respond-to-message', thread_id: 'thread-1', patient_id: 'Patient/p1', priority: 'routine', status: 'requested' });
    const bare = version({ code: { text: 'call back' } }, at(10));
    expect(computeRow([bare], [], {}, NOW)).toMatchObject({ code: null, thread_id: null, patient_id: null });
  });

  test('without authoredOn the oldest version is the start, whatever order the versions come in', () => {
    const history = [version({ authoredOn: undefined, status: 'completed' }, at(2)), version({ authoredOn: undefined }, at(6)), version({ authoredOn: undefined, owner: { reference: 'Practitioner/a' } }, at(5))];
    expect(computeRow(history, [], {}, NOW)).toMatchObject({ authored_on: at(6), status: 'completed', first_claimed_at: at(5), hours_to_claim: 1, hours_to_complete: 4 });
  });

  test('no start at all: no hours, no target verdict', () => {
    const row = computeRow([version({ authoredOn: undefined })], [reply('r', 1)], { firstReply: { routine: 2 } }, NOW);
    expect(row).toMatchObject({ authored_on: null, first_reply_at: null, hours_to_claim: null, hours_to_first_reply: null, hours_to_complete: null });
    expect(row).toMatchObject({ target_firstReply_hours: 2, target_firstReply_elapsed_hours: null, target_firstReply_status: null });
  });

  test('a version without a time sorts first and does not break the row', () => {
    const history = [version({ status: 'completed' }, at(4)), version({})];
    expect(computeRow(history, [], {}, NOW)).toMatchObject({ status: 'completed', completed_at: at(4) });
  });

  test('events not reached have no hours', () => {
    expect(computeRow([version({}, at(10))], [], {}, NOW)).toMatchObject({ first_claimed_at: null, hours_to_claim: null, first_reply_at: null, hours_to_first_reply: null, completed_at: null, hours_to_complete: null });
  });

  test('the first reply is the earliest in time, whatever order the messages come in; one sent at authoredOn is not after it', () => {
    const messages = [reply('third', 4), reply('at-start', 10), reply('first', 8), reply('second', 6)];
    expect(computeRow([version({}, at(10))], messages, {}, NOW)).toMatchObject({ first_reply_message_id: 'first', first_reply_at: at(8), hours_to_first_reply: 2 });
  });

  test('a priority without a target has no target columns; elapsed runs to now while open', () => {
    const targets = { firstReply: { routine: 24 } };
    expect(computeRow([version({ priority: 'stat' }, at(10))], [], targets, NOW)).toMatchObject({ target_firstReply_hours: null, target_firstReply_elapsed_hours: 10, target_firstReply_status: null });
    expect(computeRow([version({}, at(10))], [], targets, NOW)).toMatchObject({ target_firstReply_hours: 24, target_firstReply_elapsed_hours: 10, target_firstReply_status: 'open' });
    expect(computeRow([version({}, at(10))], [reply('r', 7)], targets, NOW)).toMatchObject({ target_firstReply_elapsed_hours: 3, target_firstReply_status: 'met' });
  });

  test('a person changing the owner while the bot\'s note is the last is not a reroute', () => {
    const ooo = { authorString: 'ooo-reroute', text: 'returned to the pool' };
    const history = [
      version({ owner: { reference: 'Practitioner/a' }, note: [ooo] }, at(9)),
      version({ owner: { reference: 'Practitioner/b' }, note: [ooo] }, at(8)),
      version({ owner: undefined, note: [ooo] }, at(7)),
    ];
    expect(computeRow(history, [], {}, NOW).reroute_count).toBe(0);
  });

  test('an escalation is a step up in priority; absent counts as routine; a step down is none', () => {
    const priorities = (...list: (Task['priority'] | undefined)[]): Task[] => list.map((priority, i) => version({ priority }, at(10 - i)));
    expect(computeRow(priorities(undefined, 'routine', undefined), [], {}, NOW).escalation_count).toBe(0);
    expect(computeRow(priorities(undefined, 'urgent', 'asap', 'urgent', 'stat'), [], {}, NOW).escalation_count).toBe(3);
    expect(computeRow(priorities('asap', 'urgent'), [], {}, NOW).escalation_count).toBe(0);
  });
});

test('summarize: a line only for each priority present, in priority order', () => {
  const row = (priority: string): SlaRow => ({ priority, hours_to_claim: 1, hours_to_first_reply: null, hours_to_complete: null, reroute_count: 1, target_firstReply_status: 'met' }) as unknown as SlaRow;
  const lines = summarize([row('stat'), row('routine'), row('stat')]);
  expect(lines.map((l) => [l.priority, l.count, l.reroutes])).toEqual([
    ['routine', 1, 1],
    ['stat', 2, 2],
  ]);
  expect(lines[0]).toMatchObject({ claim: { p50: 1, p90: 1 }, firstReply: { p50: null, p90: null }, breachRate: 0 });
});

describe('metric definitions', () => {
  const ooo = { authorString: 'ooo-reroute', text: 'rerouted' };
  const nurse = { authorString: 'nurse', text: 'handed over' };

  test('a reroute is a version where the owner was removed or replaced and the out-of-office bot added its note', () => {
    const alice = { reference: 'Practitioner/a' };
    const bob = { reference: 'Practitioner/b' };
    const history = [
      version({ owner: alice }, at(10)),
      version({ owner: undefined, note: [ooo] }, at(9)), // reroute to the pool
      version({ owner: alice, note: [ooo] }, at(8)),
      version({ owner: bob, note: [ooo, ooo] }, at(7)), // reroute to a cover
      version({ owner: alice, note: [ooo, ooo, nurse] }, at(6)), // a person handing over: not a reroute
      version({ owner: alice, note: [ooo, ooo, nurse, ooo] }, at(5)), // the bot's note, owner unchanged: not a reroute
    ];
    expect(computeRow(history, [], {}, NOW).reroute_count).toBe(2);
  });

  test('completed is the first completed version; claim the first version with an owner', () => {
    const history = [
      version({}, at(10)),
      version({ owner: { reference: 'Practitioner/a' } }, at(9)),
      version({ status: 'completed', owner: { reference: 'Practitioner/a' } }, at(7)),
      version({ status: 'in-progress' }, at(6)), // reopened
      version({ status: 'completed' }, at(4)),
    ];
    expect(computeRow(history, [], {}, NOW)).toMatchObject({ first_claimed_at: at(9), completed_at: at(7), hours_to_complete: 3 });
  });

  test('the first reply is the first message of a person of the care team after authoredOn', () => {
    const messages = [
      { id: 'before', time: at(11), sender: { reference: 'Practitioner/a' } },
      { id: 'auto', time: at(9), sender: { reference: 'Device/auto-ack' } },
      { id: 'org', time: at(8.5), sender: { reference: 'Organization/clinic' } },
      { id: 'patient', time: at(8), sender: { reference: 'Patient/p' } },
      { id: 'error', time: at(7), sender: { reference: 'Practitioner/a' }, status: 'entered-in-error' },
      { id: 'reply', time: at(6), sender: { reference: 'PractitionerRole/r' } },
    ];
    expect(computeRow([version({}, at(10))], messages, {}, NOW)).toMatchObject({ first_reply_message_id: 'reply', hours_to_first_reply: 4 });
  });

  test('breach rate: breached over met plus breached; open targets left out', () => {
    const row = (status: string): SlaRow => ({ priority: 'routine', target_firstReply_status: status, reroute_count: 0 }) as unknown as SlaRow;
    const [line] = summarize([row('met'), row('breached'), row('breached'), row('open'), row('open'), row('open')]);
    expect(line.breachRate).toBeCloseTo(2 / 3);
    expect(summarize([row('open')])[0].breachRate).toBeNull();
  });

  test('a target exactly reached is met; open until then, breached after', () => {
    const targets = { firstReply: { routine: 2 } };
    const reply = (hoursAfter: number) => [{ id: 'r', time: at(10 - hoursAfter), sender: { reference: 'Practitioner/a' } }];
    expect(computeRow([version({}, at(10))], reply(2), targets, NOW).target_firstReply_status).toBe('met');
    expect(computeRow([version({}, at(10))], reply(2.01), targets, NOW).target_firstReply_status).toBe('breached');
    expect(computeRow([version({ authoredOn: at(1) }, at(1))], [], targets, NOW).target_firstReply_status).toBe('open');
  });
});

describe('response Tasks opened from a patient message (RESPONSE_TASKS=on)', () => {
  test('the clock starts at the patient message the Task names, not when the sweep created it; an unknown or retracted message falls back to authoredOn', () => {
    const opened = version({ authoredOn: at(2), input: [{ type: { text: 'Patient message' }, valueReference: { reference: 'Communication/p1' } }] }, at(2));
    const thread: ThreadMessage[] = [{ id: 'p1', time: at(6), sender: { reference: 'Patient/x' } }, reply('r1', 1)];
    expect(computeRow([opened], thread, { firstReply: { routine: 4 } }, NOW)).toMatchObject({
      authored_on: at(2),
      started_at: at(6),
      first_reply_message_id: 'r1',
      hours_to_first_reply: 5,
      target_firstReply_status: 'breached',
    });
    expect(computeRow([opened], [reply('r1', 1)], {}, NOW)).toMatchObject({ started_at: at(2), hours_to_first_reply: 1 });
    const retracted: ThreadMessage[] = [{ ...thread[0], status: 'entered-in-error' }, reply('r1', 1)];
    expect(computeRow([opened], retracted, {}, NOW)).toMatchObject({ started_at: at(2) });
  });

  test('a reply between the patient message and the Task\'s creation counts as the first reply (the lifecycle\'s Task, opened late)', () => {
    const opened = version(
      {
        authoredOn: at(2),
        identifier: [{ system: 'urn:medplum-messaging-bots:response-episode', value: 'h:after:start' }],
        input: [{ type: { text: 'Patient message' }, valueReference: { reference: 'Communication/p1' } }],
      },
      at(2)
    );
    const row = computeRow([opened], [{ id: 'p1', time: at(6), sender: { reference: 'Patient/x' } }, reply('r0', 4), reply('r1', 1)], {}, NOW);
    expect(row).toMatchObject({ first_reply_message_id: 'r0', hours_to_first_reply: 2 });
  });

  test('a hand-off a person made after the nurse wrote "I\'ll ask Dr B": timed from the Task, answered by the next reply, as the lifecycle reads it', () => {
    const handOff = version({ authoredOn: at(2), input: [{ type: { text: 'Patient message' }, valueReference: { reference: 'Communication/p1' } }] }, at(2));
    const messages = [{ id: 'p1', time: at(6), sender: { reference: 'Patient/x' } }, reply('r0', 4)];
    expect(computeRow([handOff], messages, {}, NOW)).toMatchObject({ started_at: at(2), first_reply_message_id: null, first_reply_at: null });
    expect(computeRow([handOff], [...messages, reply('r1', 1)], {}, NOW)).toMatchObject({ started_at: at(2), first_reply_message_id: 'r1', hours_to_first_reply: 1 });
  });
});
