import type { Slot } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { combineSchedules, decideSchedule, hasFreeSlotOverlapping, slotsFromFindResponse } from '../../src/lib/owner-availability';
import type { ScheduleFacts } from '../../src/lib/owner-availability';

const NOW = Date.parse('2026-11-27T15:17:00Z');
const window = { start: NOW, end: NOW + 3_600_000 };
const slot = (start: string, end: string, status: Slot['status'] = 'free'): Slot => ({ resourceType: 'Slot', schedule: { reference: 'Schedule/s' }, start, end, status });
const free = slot('2026-11-27T15:00:00Z', '2026-11-27T15:30:00Z');
// A full page of 20 slots, all before the window (an overnight shift queried from its start).
const earlier = Array.from({ length: 20 }, (_, i) => {
  const start = Date.parse('2026-11-27T00:00:00Z') + i * 30 * 60_000;
  return slot(new Date(start).toISOString(), new Date(start + 30 * 60_000).toISOString());
});
const nothingNow = { booked: false, freeSlot: false };

describe('decideSchedule', () => {
  test.each<[string, Omit<ScheduleFacts, 'schedule'>, string, string]>([
    ['a free slot overlapping the window', { find: { slots: [free] } }, 'available', 'free-slot'],
    ['$find failing (5xx): not known', { find: { error: 'failed', detail: '' } }, 'unknown', 'find-failed'],
    ['the Slot search failing: not known', { find: { slots: [] } }, 'unknown', 'slots-not-read'],
    ['a vacation block now', { find: { slots: [] }, slotsNow: { ...nothingNow, blocked: 'Slot/v' }, working: true }, 'unavailable', 'blocked:Slot/v'],
    ['booked now, in working hours', { find: { slots: [] }, slotsNow: { ...nothingNow, booked: true }, working: true }, 'available', 'booked'],
    ['booked now, hours unknown', { find: { error: 'refused', detail: '' }, slotsNow: { ...nothingNow, booked: true } }, 'available', 'booked'],
    ['booked now, outside working hours', { find: { slots: [] }, slotsNow: { ...nothingNow, booked: true }, working: false }, 'unavailable', 'no-free-slot:Schedule/s'],
    ['blocked and booked: the block wins', { find: { slots: [] }, slotsNow: { blocked: 'Slot/v', booked: true, freeSlot: false }, working: true }, 'unavailable', 'blocked:Slot/v'],
    ['nothing free, nothing now, $find page not full', { find: { slots: [] }, slotsNow: nothingNow, working: true }, 'unavailable', 'no-free-slot:Schedule/s'],
    ['a full page before the window, working now', { find: { slots: earlier }, slotsNow: nothingNow, working: true }, 'available', 'working-hours'],
    ['a full page before the window, an extra free Slot now', { find: { slots: earlier }, slotsNow: { ...nothingNow, freeSlot: true }, working: false }, 'available', 'working-hours'],
    ['a full page before the window, off hours', { find: { slots: earlier }, slotsNow: nothingNow, working: false }, 'unavailable', 'off-hours:Schedule/s'],
    ['no $find on the server, working now', { find: { error: 'refused', detail: '' }, slotsNow: nothingNow, working: true }, 'available', 'working-hours'],
    ['$find refused (400), off hours', { find: { error: 'refused', detail: '' }, slotsNow: nothingNow, working: false }, 'unavailable', 'off-hours:Schedule/s'],
    ['$find refused, hours unknown, no block', { find: { error: 'refused', detail: '' }, slotsNow: nothingNow }, 'available', 'no-block-fallback'],
  ])('%s', (_name, facts, state, reason) => {
    expect(decideSchedule({ schedule: 'Schedule/s', ...facts }, window)).toEqual({ state, reason });
  });
});

describe('combineSchedules', () => {
  test('available if any is; unknown beats unavailable; no Schedule is unknown', () => {
    const away = { state: 'unavailable' as const, reason: 'a' };
    expect(combineSchedules([away, { state: 'available', reason: 'b' }])).toEqual({ state: 'available', reason: 'b' });
    expect(combineSchedules([away, { state: 'unknown', reason: 'c' }])).toEqual({ state: 'unknown', reason: 'a,c' });
    expect(combineSchedules([away, { state: 'unavailable', reason: 'd' }])).toEqual({ state: 'unavailable', reason: 'a,d' });
    expect(combineSchedules([])).toEqual({ state: 'unknown', reason: 'no-active-schedule' });
  });
});

describe('reading $find', () => {
  test('overlap is strict: a slot ending at the window start or starting at its end does not count', () => {
    expect(hasFreeSlotOverlapping([slot('2026-11-27T14:47:00Z', '2026-11-27T15:17:00Z')], window)).toBe(false);
    expect(hasFreeSlotOverlapping([slot('2026-11-27T16:17:00Z', '2026-11-27T16:47:00Z')], window)).toBe(false);
    expect(hasFreeSlotOverlapping([slot('2026-11-27T16:16:00Z', '2026-11-27T16:46:00Z')], window)).toBe(true);
    expect(hasFreeSlotOverlapping([slot('2026-11-27T15:00:00Z', '2026-11-27T15:30:00Z', 'busy')], window)).toBe(false);
  });
  test('a Bundle, a Bundle wrapped in Parameters, or anything else', () => {
    const bundle = { resourceType: 'Bundle' as const, type: 'searchset' as const, entry: [{ resource: free }, { resource: { resourceType: 'Patient' } as never }] };
    expect(slotsFromFindResponse(bundle)).toEqual([free]);
    expect(slotsFromFindResponse({ resourceType: 'Parameters', parameter: [{ name: 'return', resource: bundle }] })).toEqual([free]);
    expect(slotsFromFindResponse(undefined)).toEqual([]);
    expect(slotsFromFindResponse({ resourceType: 'Parameters' })).toEqual([]);
  });
});
