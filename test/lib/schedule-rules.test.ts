import type { Schedule } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { declaredTimeZone, isWorkingAt, parseRuleSets, selectRuleSets, serviceTypesToRequest } from '../../src/lib/schedule-rules';
import type { RuleSet } from '../../src/lib/schedule-rules';

const SP = 'http://medplum.com/fhir/StructureDefinition/scheduling-parameters';
const ALL = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const set = (from: string, hours: number, extra: object[] = [], days = ALL) => ({
  url: SP,
  extension: [
    { url: 'availability', valueTiming: { repeat: { dayOfWeek: days, timeOfDay: [from], duration: hours, durationUnit: 'h' } } },
    { url: 'duration', valueDuration: { value: 30, unit: 'min' } },
    ...extra,
  ],
});
const video = { url: 'serviceType', valueCoding: { system: 'http://example.com/st', code: 'video' } };

function sets(...extension: object[]): RuleSet[] {
  const parsed = parseRuleSets({ resourceType: 'Schedule', actor: [], extension } as Schedule);
  if ('error' in parsed) {
    throw new Error(parsed.error);
  }
  return parsed.sets;
}

describe('working hours, whichever day the shift began', () => {
  const overnight = sets(set('20:00:00', 8));
  test('an overnight shift from 20:00 for 8 hours covers 01:00 local (America/Anguilla, 2026-11-28 05:40Z)', () => {
    expect(isWorkingAt(overnight, 'America/Anguilla', Date.parse('2026-11-28T05:40:00Z'))).toBe(true);
    expect(isWorkingAt(overnight, 'America/Anguilla', Date.parse('2026-11-28T08:00:00Z'))).toBe(false); // 04:00 local: ended
    expect(isWorkingAt(overnight, 'America/Anguilla', Date.parse('2026-11-28T23:59:00Z'))).toBe(false); // 19:59 local: before the next shift
  });
  test('east of UTC too (Asia/Tokyo, 02:00 local is 17:00Z the day before)', () => {
    expect(isWorkingAt(overnight, 'Asia/Tokyo', Date.parse('2026-11-27T17:00:00Z'))).toBe(true);
  });
  test('only on the listed days: a Friday shift does not run into Saturday night', () => {
    const fridays = sets(set('20:00:00', 8, [], ['fri']));
    expect(isWorkingAt(fridays, 'America/Anguilla', Date.parse('2026-11-28T05:40:00Z'))).toBe(true); // Friday's shift, Saturday 01:40
    expect(isWorkingAt(fridays, 'America/Anguilla', Date.parse('2026-11-29T05:40:00Z'))).toBe(false); // Sunday 01:40: Saturday had none
  });
});

describe('times of day as FHIR writes them', () => {
  test('fractional seconds are read, not a reason to ignore the rules', () => {
    const withFraction = sets(set('09:00:00.000', 8));
    expect(isWorkingAt(withFraction, 'UTC', Date.parse('2026-11-27T10:00:00Z'))).toBe(true);
    expect(isWorkingAt(withFraction, 'UTC', Date.parse('2026-11-27T08:59:00Z'))).toBe(false);
    expect(isWorkingAt(sets(set('09:00:30.5', 8)), 'UTC', Date.parse('2026-11-27T09:00:00Z'))).toBe(false);
  });
});

describe('service types', () => {
  test('the server rule: matching sets, else the sets tied to no service type', () => {
    const both = sets(set('09:00:00', 8), set('13:00:00', 2, [video]));
    expect(selectRuleSets(both, []).map((s) => s.availability[0].minutesOfDay[0])).toEqual([540]);
    expect(selectRuleSets(both, ['http://example.com/st|video']).map((s) => s.availability[0].minutesOfDay[0])).toEqual([780]);
    expect(selectRuleSets(both, ['http://example.com/st|phone']).map((s) => s.availability[0].minutesOfDay[0])).toEqual([540]);
  });
  test('what to ask $find: the configured types; none when a set applies to any service; else all the Schedule has', () => {
    expect(serviceTypesToRequest(sets(set('09:00:00', 8), set('13:00:00', 2, [video])), [])).toEqual([]);
    expect(serviceTypesToRequest(sets(set('13:00:00', 2, [video])), [])).toEqual(['http://example.com/st|video']);
    expect(serviceTypesToRequest(sets(set('13:00:00', 2, [video])), ['a|b'])).toEqual(['a|b']);
    expect(serviceTypesToRequest([], [])).toEqual([]);
  });
});

describe('parseRuleSets refuses what $find refuses', () => {
  test.each<[string, object, string]>([
    ['a set without duration', { url: SP, extension: [] }, 'has no duration'],
    ['a time of day that is not HH:MM:SS', set('9am', 8), 'no valid time of day or duration'],
    ['an availability without duration', { ...set('09:00:00', 8), extension: [{ url: 'availability', valueTiming: { repeat: { dayOfWeek: ALL, timeOfDay: ['09:00:00'] } } }, { url: 'duration', valueDuration: { value: 30, unit: 'min' } }] }, 'no valid time of day or duration'],
  ])('%s', (_name, extension, message) => {
    const parsed = parseRuleSets({ resourceType: 'Schedule', actor: [], extension: [extension] } as Schedule);
    expect('error' in parsed && parsed.error).toContain(message);
  });
  test('units: min, h, d, wk; alignment 0 is on the hour', () => {
    const [s] = sets({ ...set('09:00:00', 1), extension: [...set('09:00:00', 1).extension, { url: 'alignmentInterval', valueDuration: { value: 0, unit: 'min' } }, { url: 'bufferBefore', valueDuration: { value: 1, unit: 'h' } }] });
    expect(s).toMatchObject({ durationMinutes: 30, alignmentMinutes: 60, bufferBeforeMinutes: 60, availability: [{ durationMinutes: 60, minutesOfDay: [540] }] });
  });
});

describe('rule details', () => {
  const one = (extension: object[]): ReturnType<typeof parseRuleSets> => parseRuleSets({ resourceType: 'Schedule', actor: [], extension } as Schedule);

  test('only scheduling-parameters extensions are rules; every part is read with its unit', () => {
    const [s] = sets(
      { url: 'http://example.com/other', extension: [{ url: 'duration', valueDuration: { value: 5, unit: 'min' } }] },
      set('09:00:30', 1, [
        { url: 'bufferAfter', valueDuration: { value: 10, unit: 'min' } },
        { url: 'alignmentInterval', valueDuration: { value: 15, unit: 'min' } },
        { url: 'serviceType', valueCoding: { code: 'video' } },
      ])
    );
    expect(s).toEqual({
      availability: [{ days: ALL, minutesOfDay: [540.5], durationMinutes: 60 }],
      durationMinutes: 30,
      bufferBeforeMinutes: 0,
      bufferAfterMinutes: 10,
      alignmentMinutes: 15,
      serviceTypes: ['|video'],
    });
    expect(sets({ url: SP, extension: [{ url: 'duration', valueDuration: { value: 30, unit: 'min' } }] })).toEqual([
      { availability: [], durationMinutes: 30, bufferBeforeMinutes: 0, bufferAfterMinutes: 0, alignmentMinutes: 60, serviceTypes: [] },
    ]);
    expect(sets({ url: SP, extension: [{ url: 'duration', valueDuration: { value: 30, unit: 'min' } }, { url: 'availability', valueTiming: { repeat: { duration: 1, durationUnit: 'h' } } }] })[0].availability).toEqual([
      { days: [], minutesOfDay: [], durationMinutes: 60 },
    ]);
    expect(parseRuleSets({ resourceType: 'Schedule', actor: [] } as Schedule)).toEqual({ sets: [] });
  });

  test('times of day: HH:MM or HH:MM:SS exactly; durations need a known unit and must be positive', () => {
    expect(sets(set('09:00', 1))[0].availability[0].minutesOfDay).toEqual([540]);
    expect(sets(set('09:15:30', 1))[0].availability[0].minutesOfDay).toEqual([555.5]);
    for (const time of ['9:00:00', '09:00:00x', 'x09:00:00', '09:00:0']) {
      expect(one([set(time, 1)]), time).toEqual({ error: 'a scheduling-parameters availability has no valid time of day or duration' });
    }
    const withTimes = (times: string[]) => ({ url: SP, extension: [{ url: 'availability', valueTiming: { repeat: { dayOfWeek: ALL, timeOfDay: times, duration: 1, durationUnit: 'h' } } }, { url: 'duration', valueDuration: { value: 30, unit: 'min' } }] });
    expect(one([withTimes(['09:00:00', 'noon'])])).toMatchObject({ error: expect.any(String) });
    const withDuration = (duration: number, unit: string) => ({ url: SP, extension: [{ url: 'availability', valueTiming: { repeat: { dayOfWeek: ALL, timeOfDay: ['09:00:00'], duration, durationUnit: unit } } }, { url: 'duration', valueDuration: { value: 30, unit: 'min' } }] });
    expect(one([withDuration(0, 'h')])).toMatchObject({ error: expect.any(String) });
    expect(one([withDuration(2, 'mo')])).toMatchObject({ error: expect.any(String) });
    expect(one([{ url: SP, extension: [{ url: 'duration', valueDuration: { value: 30, unit: 'fortnight' } }] }])).toEqual({ error: 'a scheduling-parameters set has no duration' });
  });

  test('working at an instant: the start is in, the end is out', () => {
    const day = sets(set('09:00:00', 8, [], ['fri']));
    expect(isWorkingAt(day, 'UTC', Date.parse('2026-11-27T09:00:00Z'))).toBe(true);
    expect(isWorkingAt(day, 'UTC', Date.parse('2026-11-27T08:59:59.999Z'))).toBe(false);
    expect(isWorkingAt(day, 'UTC', Date.parse('2026-11-27T16:59:59.999Z'))).toBe(true);
    expect(isWorkingAt(day, 'UTC', Date.parse('2026-11-27T17:00:00Z'))).toBe(false);
  });

  test('a shift of several days is found from its first day', () => {
    // Thursday 00:00 for 3 days: Saturday noon is inside it.
    const long = sets(set('00:00:00', 72, [], ['thu']));
    expect(isWorkingAt(long, 'UTC', Date.parse('2026-11-28T12:00:00Z'))).toBe(true);
    expect(isWorkingAt(long, 'UTC', Date.parse('2026-11-29T00:00:00Z'))).toBe(false);
  });
});

test("the actor's declared time zone: its extension, else none", () => {
  expect(declaredTimeZone(undefined)).toBeUndefined();
  expect(declaredTimeZone({ extension: [] })).toBeUndefined();
  expect(declaredTimeZone({})).toBeUndefined();
  expect(declaredTimeZone({ extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/timezone', valueCode: 'Asia/Tokyo' }] })).toBe('Asia/Tokyo');
});
