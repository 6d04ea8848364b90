import type { Schedule } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { findQueryWindow, isWorkingAt, parseRuleSets, selectRuleSets, serviceTypesToRequest } from '../../src/lib/schedule-rules';
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

describe('the $find query window', () => {
  test('starts on the UTC date of the local day the current shift began, at 23:59Z', () => {
    const window = findQueryWindow(Date.parse('2026-11-28T05:40:00Z'), 60, sets(set('20:00:00', 8)), 'America/Anguilla');
    expect(new Date(window.start).toISOString()).toBe('2026-11-27T23:59:00.000Z');
    expect(window.end).toBeGreaterThan(Date.parse('2026-11-28T06:40:00Z'));
  });
  test('west of UTC late in the local evening: the shift began today, whose UTC date is already tomorrow', () => {
    // 23:30 in New York on the 27th is 04:30Z on the 28th; the shift runs 12:00-24:00 local.
    const window = findQueryWindow(Date.parse('2026-11-28T04:30:00Z'), 60, sets(set('12:00:00', 12)), 'America/New_York');
    expect(new Date(window.start).toISOString()).toBe('2026-11-27T23:59:00.000Z');
    // Earlier that evening the query starts on the 27th anyway: no change.
    const early = findQueryWindow(Date.parse('2026-11-28T01:30:00Z'), 60, sets(set('12:00:00', 12)), 'America/New_York');
    expect(new Date(early.start).toISOString()).toBe('2026-11-27T23:30:00.000Z');
  });
  test('an ordinary day: a slot span and an alignment step before now, the same after the window', () => {
    const now = Date.parse('2026-11-27T15:17:00Z');
    const window = findQueryWindow(now, 60, sets(set('09:00:00', 8)), 'America/New_York');
    expect(window).toEqual({ start: now - 120 * 60_000, end: now + 180 * 60_000 });
  });
  test('without rules or time zone, still the widened window', () => {
    const now = Date.parse('2026-11-27T15:17:30Z');
    expect(findQueryWindow(now, 60, [], undefined)).toEqual({ start: Date.parse('2026-11-27T13:17:00Z'), end: Date.parse('2026-11-27T18:18:00Z') });
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
