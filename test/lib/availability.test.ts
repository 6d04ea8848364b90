// The one definition of available, decided from facts alone.
import type { Schedule } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { availabilityAt, describeAvailability, fallbackReasons, isJudgedWithoutHours } from '../../src/lib/availability';
import type { AvailabilityReason, OwnerFacts, ScheduleFacts } from '../../src/lib/availability';
import { parseRuleSets } from '../../src/lib/schedule-rules';

const SP = 'http://medplum.com/fhir/StructureDefinition/scheduling-parameters';
const ALL = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const video = { url: 'serviceType', valueCoding: { system: 'http://example.com/st', code: 'video' } };
const set = (from: string, hours: number, days = ALL, extra: object[] = []) => ({
  url: SP,
  extension: [
    { url: 'availability', valueTiming: { repeat: { dayOfWeek: days, timeOfDay: [from], duration: hours, durationUnit: 'h' } } },
    { url: 'duration', valueDuration: { value: 30, unit: 'min' } },
    ...extra,
  ],
});
const schedule = (extension: object[], blocks: ScheduleFacts['blocks'] = [], ref = 'Schedule/s'): ScheduleFacts => ({
  schedule: ref,
  rules: parseRuleSets({ resourceType: 'Schedule', actor: [], extension } as Schedule),
  blocks,
});
const owner = (schedules: ScheduleFacts[], timeZone: string | null = 'America/New_York'): OwnerFacts => ({ owner: 'Practitioner/a', timeZone: timeZone ?? undefined, schedules });
const at = (iso: string): number => Date.parse(iso);
const FRIDAY_1017_NY = '2026-11-27T15:17:00Z';
const block = (start: string, end: string) => ({ slot: 'Slot/vacation', start: at(start), end: at(end) });

describe('available at t: inside working hours, and no absence block covering t', () => {
  const nineToFive = owner([schedule([set('09:00:00', 8)])]);
  test('on shift', () => {
    expect(availabilityAt(nineToFive, at(FRIDAY_1017_NY))).toEqual({ state: 'available', reason: 'on-shift' });
  });
  test('before and after the shift, and on a day without hours', () => {
    expect(availabilityAt(nineToFive, at('2026-11-27T13:59:00Z'))).toEqual({ state: 'unavailable', reason: 'off-shift' });
    expect(availabilityAt(nineToFive, at('2026-11-27T22:00:00Z'))).toEqual({ state: 'unavailable', reason: 'off-shift' });
    expect(availabilityAt(owner([schedule([set('09:00:00', 8, ['mon'])])]), at(FRIDAY_1017_NY)).reason).toBe('off-shift');
  });
  test('an overnight shift, after local midnight', () => {
    expect(availabilityAt(owner([schedule([set('20:00:00', 8)])], 'America/Anguilla'), at('2026-11-28T05:40:00Z')).reason).toBe('on-shift');
  });
  test('a vacation block covering t makes an on-shift provider absent; one that ended, or starts later, does not', () => {
    const away = owner([schedule([set('09:00:00', 8)], [block('2026-11-27T00:00:00Z', '2026-11-28T00:00:00Z')])]);
    expect(availabilityAt(away, at(FRIDAY_1017_NY))).toEqual({ state: 'unavailable', reason: 'absent', absence: 'Slot/vacation' });
    const later = owner([schedule([set('09:00:00', 8)], [block('2026-11-27T15:18:00Z', '2026-11-28T00:00:00Z'), block('2026-11-27T10:00:00Z', '2026-11-27T15:17:00Z')])]);
    expect(availabilityAt(later, at(FRIDAY_1017_NY)).reason).toBe('on-shift');
  });
  test('the block wins over a day without hours too: absence is what the sweep hands off on', () => {
    expect(availabilityAt(owner([schedule([set('09:00:00', 8, ['mon'])], [block('2026-11-27T00:00:00Z', '2026-11-28T00:00:00Z')])]), at(FRIDAY_1017_NY)).reason).toBe('absent');
  });
});

describe('when the hours cannot be judged: the documented fallbacks', () => {
  test('an active Schedule without working hours: not working, at every hour and whatever the zone', () => {
    for (const instant of [at(FRIDAY_1017_NY), at(FRIDAY_1017_NY) + 11 * 3_600_000]) {
      expect(availabilityAt(owner([schedule([])]), instant)).toEqual({ state: 'unavailable', reason: 'no-working-hours' });
      expect(availabilityAt(owner([schedule([])], null), instant)).toEqual({ state: 'unavailable', reason: 'no-working-hours' });
      expect(availabilityAt(owner([schedule([])], 'Eastern'), instant)).toEqual({ state: 'unavailable', reason: 'no-working-hours' });
    }
  });
  test('a Schedule without hours next to one with hours: the one with hours decides', () => {
    const both = owner([schedule([]), schedule([set('09:00:00', 8)])]);
    expect(availabilityAt(both, at(FRIDAY_1017_NY)).reason).toBe('on-shift');
    expect(availabilityAt(both, at(FRIDAY_1017_NY) + 11 * 3_600_000).state).toBe('unavailable');
  });
  test('no time zone: available unless blocked', () => {
    expect(availabilityAt(owner([schedule([set('09:00:00', 8, ['mon'])])], null), at(FRIDAY_1017_NY))).toEqual({ state: 'available', reason: 'no-time-zone' });
    expect(availabilityAt(owner([schedule([], [block('2026-11-27T00:00:00Z', '2026-11-28T00:00:00Z')])], null), at(FRIDAY_1017_NY)).reason).toBe('absent');
  });
  test('an invalid zone, unreadable rules, no Schedule, facts not read: unknown', () => {
    expect(availabilityAt(owner([schedule([set('09:00:00', 8)])], 'Eastern'), at(FRIDAY_1017_NY))).toEqual({ state: 'unknown', reason: 'invalid-time-zone' });
    const noDuration = { url: SP, extension: [{ url: 'availability', valueTiming: { repeat: { dayOfWeek: ALL, timeOfDay: ['09:00:00'], duration: 8, durationUnit: 'h' } } }] };
    expect(availabilityAt(owner([schedule([noDuration])]), at(FRIDAY_1017_NY))).toEqual({ state: 'unknown', reason: 'unreadable-rules' });
    expect(availabilityAt(owner([]), at(FRIDAY_1017_NY))).toEqual({ state: 'unknown', reason: 'no-schedule' });
    expect(availabilityAt(undefined, at(FRIDAY_1017_NY))).toEqual({ state: 'unknown', reason: 'not-checked' });
  });
  test('which reasons status lists as "cannot judge working hours"', () => {
    const judged: AvailabilityReason[] = ['on-shift', 'off-shift', 'absent', 'not-checked'];
    for (const reason of ['no-working-hours', 'no-time-zone', 'invalid-time-zone', 'unreadable-rules', 'no-schedule', ...judged] as const) {
      expect(isJudgedWithoutHours({ state: 'unknown', reason })).toBe(!judged.includes(reason));
    }
  });
});

describe('several Schedules, service types', () => {
  test('available if any Schedule is; an unreadable one beside an off-shift one is unknown; absence named when any says so', () => {
    const day = schedule([set('09:00:00', 8)], [], 'Schedule/day');
    const night = schedule([set('20:00:00', 8)], [], 'Schedule/night');
    expect(availabilityAt(owner([night, day]), at(FRIDAY_1017_NY)).reason).toBe('on-shift');
    const broken = { ...night, rules: { error: 'x' } };
    expect(availabilityAt(owner([night, broken]), at(FRIDAY_1017_NY)).state).toBe('unknown');
    const blockedDay = { ...day, blocks: [block('2026-11-27T00:00:00Z', '2026-11-28T00:00:00Z')] };
    expect(availabilityAt(owner([night, blockedDay]), at(FRIDAY_1017_NY)).reason).toBe('absent');
  });
  test('configured service types choose the rule sets; without them, untied sets, or all when every set is tied', () => {
    const clinicAndVideo = owner([schedule([set('09:00:00', 2), set('13:00:00', 4, ALL, [video])])]);
    const at1400 = at('2026-11-27T19:00:00Z'); // 14:00 in New York
    expect(availabilityAt(clinicAndVideo, at1400).reason).toBe('off-shift');
    expect(availabilityAt(clinicAndVideo, at1400, ['http://example.com/st|video']).reason).toBe('on-shift');
    expect(availabilityAt(owner([schedule([set('13:00:00', 4, ALL, [video])])]), at1400).reason).toBe('on-shift');
  });
});

test('fallbacks an owner rests on, whatever the hour: each Schedule judged as data', () => {
  expect(fallbackReasons(owner([schedule([set('09:00:00', 8)])]))).toEqual([]);
  expect(fallbackReasons(owner([schedule([set('09:00:00', 8)]), schedule([])]))).toEqual(['no-working-hours']);
  expect(fallbackReasons(owner([schedule([set('09:00:00', 8)])], null))).toEqual(['no-time-zone']);
  expect(fallbackReasons(owner([schedule([set('09:00:00', 8)])], 'Eastern'))).toEqual(['invalid-time-zone']);
  expect(fallbackReasons(owner([]))).toEqual(['no-schedule']);
  expect(fallbackReasons(undefined)).toEqual([]);
  // Hours only for another service type count as none for the configured one.
  expect(fallbackReasons(owner([schedule([set('09:00:00', 8, ALL, [video])])]), ['http://example.com/st|phone'])).toEqual(['no-working-hours']);
  expect(fallbackReasons(owner([schedule([set('09:00:00', 8, ALL, [video])])]), ['http://example.com/st|video'])).toEqual([]);
});

test('reasons in words a clinician reads', () => {
  const words: Record<AvailabilityReason, string> = {
    'on-shift': 'on shift',
    'off-shift': 'outside their working hours',
    absent: 'away (vacation or leave on their schedule)',
    'no-working-hours': 'not working (their schedule has no working hours set)',
    'no-time-zone': 'available (no time zone on their profile, so working hours could not be read)',
    'invalid-time-zone': 'unknown (their time zone is not valid)',
    'unreadable-rules': 'unknown (their working hours cannot be read)',
    'no-schedule': 'unknown (no active schedule)',
    'not-checked': 'not checked',
  };
  for (const [reason, text] of Object.entries(words) as [AvailabilityReason, string][]) {
    expect(describeAvailability({ state: 'unknown', reason }), reason).toBe(text);
  }
});
