import { describe, expect, test } from 'vitest';
import { addToTimeline, conversation, currentEpisode, firstReplyAfter, isLater, messagePoint, senderRole } from '../../src/lib/thread';
import type { Timeline } from '../../src/lib/thread';

describe('senderRole', () => {
  test.each([
    ['Patient/1', 'patient'],
    ['RelatedPerson/1', 'patient'],
    ['Practitioner/1', 'care-team'],
    ['PractitionerRole/1', 'care-team'],
    ['CareTeam/1', 'care-team'],
    ['Device/1', 'automated'],
    ['Organization/1', 'automated'],
    ['HealthcareService/1', 'automated'],
    ['Bot/1', 'automated'],
    ['ClientApplication/1', 'automated'],
    ['#contained', 'unknown'],
    ['https://example.com/Patient/1', 'unknown'],
    [undefined, 'unknown'],
  ])('%s is %s', (reference, role) => {
    expect(senderRole(reference ? { reference } : undefined)).toBe(role);
  });
});

describe('timeline', () => {
  const at = (id: string, sender: string | undefined, sent?: string, lastUpdated?: string) =>
    messagePoint({ resourceType: 'Communication', id, status: 'in-progress', sender: sender ? { reference: sender } : undefined, sent, meta: { lastUpdated } });

  test('people move it; automated and unknown senders are counted and skipped', () => {
    const t: Timeline = { ignored: 0 };
    addToTimeline(t, at('1', 'Patient/p', '2026-11-20T10:00:00Z'));
    addToTimeline(t, at('2', 'Practitioner/a', '2026-11-21T10:00:00Z'));
    addToTimeline(t, at('3', 'Patient/p', '2026-11-22T10:00:00Z'));
    addToTimeline(t, at('4', 'Device/auto-ack', '2026-11-22T10:00:05Z'));
    addToTimeline(t, at('5', undefined, '2026-11-23T10:00:00Z'));
    expect(t).toEqual({
      ignored: 2,
      last: { ref: 'Communication/3', time: Date.parse('2026-11-22T10:00:00Z'), role: 'patient', sender: 'Patient/p' },
      lastPatient: { ref: 'Communication/3', time: Date.parse('2026-11-22T10:00:00Z'), role: 'patient', sender: 'Patient/p' },
      lastCareTeam: { ref: 'Communication/2', time: Date.parse('2026-11-21T10:00:00Z'), role: 'care-team', sender: 'Practitioner/a' },
      // The patient messages the care team has not answered: message 1 was answered by 2.
      unanswered: [{ ref: 'Communication/3', time: Date.parse('2026-11-22T10:00:00Z'), role: 'patient', sender: 'Patient/p' }],
    });
  });

  test('order does not matter; sent before lastUpdated; ties go to the larger reference', () => {
    const t: Timeline = { ignored: 0 };
    addToTimeline(t, at('b', 'Patient/p', undefined, '2026-11-22T10:00:00Z'));
    addToTimeline(t, at('a', 'Practitioner/x', '2026-11-22T10:00:00Z', '2026-11-25T00:00:00Z'));
    expect(t.last?.ref).toBe('Communication/b');
    expect(isLater(at('b', 'Patient/p', '2026-11-22T10:00:00Z'), at('a', 'Patient/p', '2026-11-22T10:00:00Z'))).toBe(true);
    expect(at('x', 'Patient/p').time).toBe(0);
  });

  test('an earlier message never replaces a later one, whatever its reference', () => {
    const t: Timeline = { ignored: 0 };
    addToTimeline(t, at('a', 'Patient/p', '2026-11-22T10:00:00Z'));
    addToTimeline(t, at('z', 'Patient/p', '2026-11-21T10:00:00Z'));
    addToTimeline(t, at('b', 'Practitioner/x', '2026-11-20T10:00:00Z'));
    addToTimeline(t, at('y', 'Practitioner/x', '2026-11-19T10:00:00Z'));
    expect([t.last?.ref, t.lastPatient?.ref, t.lastCareTeam?.ref]).toEqual(['Communication/a', 'Communication/a', 'Communication/b']);
    expect(isLater(at('z', 'Patient/p', '2026-11-21T10:00:00Z'), at('a', 'Patient/p', '2026-11-22T10:00:00Z'))).toBe(false);
  });
});

describe('conversation and episodes', () => {
  const at = (id: string, sender: string, sent: string) => messagePoint({ resourceType: 'Communication', id, status: 'in-progress', sender: { reference: sender }, sent });
  test('people only, oldest first; the episode is what the patient wrote since the care team last spoke', () => {
    const c = conversation([
      at('3', 'Patient/p', '2026-11-22T10:00:00Z'),
      at('1', 'Patient/p', '2026-11-20T10:00:00Z'),
      at('auto', 'Device/d', '2026-11-22T11:00:00Z'),
      at('2', 'Practitioner/a', '2026-11-21T10:00:00Z'),
      at('4', 'RelatedPerson/r', '2026-11-23T10:00:00Z'),
    ]);
    expect(c.points.map((p) => p.ref.split('/')[1])).toEqual(['1', '2', '3', '4']);
    const episode = currentEpisode(c);
    expect([episode.boundary?.ref, episode.opening?.ref, episode.last?.ref]).toEqual(['Communication/2', 'Communication/3', 'Communication/4']);
    expect(firstReplyAfter(c, Date.parse('2026-11-20T10:00:00Z'))?.ref).toBe('Communication/2');
    expect(firstReplyAfter(c, Date.parse('2026-11-21T10:00:00Z'))).toBeUndefined();
  });
  test('before the care team ever wrote: no boundary; after it answered: no opening', () => {
    expect(currentEpisode(conversation([at('1', 'Patient/p', '2026-11-20T10:00:00Z')]))).toMatchObject({ boundary: undefined, opening: { ref: 'Communication/1' } });
    const answered = currentEpisode(conversation([at('1', 'Patient/p', '2026-11-20T10:00:00Z'), at('2', 'CareTeam/t', '2026-11-21T10:00:00Z')]));
    expect(answered).toMatchObject({ boundary: { ref: 'Communication/2' }, opening: undefined, last: { role: 'care-team' } });
    expect(currentEpisode(conversation([]))).toEqual({ boundary: undefined, opening: undefined, last: undefined });
  });
});
