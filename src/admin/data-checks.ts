// Data checks for `npm run status`: the owners of open Tasks whose availability rests on a fallback
// (no Schedule, a Schedule without working hours, no or an invalid time zone, unreadable rules),
// judged from their Schedules as data, so the answer is the same at any hour.
import type { MedplumClient } from '@medplum/core';
import { fallbackReasons } from '../lib/availability';
import type { AvailabilityReason } from '../lib/availability';
import { scanOpenThreadTasks } from '../lib/read-guard';
import { isReroutableOwner } from '../lib/reroute-plan';
import { OwnerDirectory } from '../realtime/owners';

/** How to fix each reason, in words for an admin. */
const FIX: Partial<Record<AvailabilityReason, string>> = {
  'no-time-zone': 'add the time-zone extension (http://hl7.org/fhir/StructureDefinition/timezone, valueCode an IANA zone such as America/New_York) to the owner',
  'invalid-time-zone': 'use an IANA zone code (America/New_York, not "Eastern") in the owner\'s time-zone extension',
  'no-working-hours': 'add working hours (scheduling-parameters availability) to their Schedule, as in examples/schedule.json',
  'unreadable-rules': 'give each scheduling-parameters set a duration, and each availability days, times of day and a duration',
  'no-schedule': 'give them an active Schedule with working hours, as in examples/schedule.json',
};

/** What the bots do for each reason, in words for an admin. */
const EFFECT: Partial<Record<AvailabilityReason, string>> = {
  'no-schedule': 'their Tasks are always kept',
  'no-working-hours': 'a Schedule without hours means not working: their Tasks move when a patient writes, unless another Schedule has them on shift',
  'no-time-zone': 'treated as available unless a vacation block covers now',
  'invalid-time-zone': 'their Tasks are always kept',
  'unreadable-rules': 'their Tasks are always kept',
};

/** Owners whose availability cannot be judged, by reason. */
export interface UnjudgedOwners {
  reason: AvailabilityReason;
  /** What the bots do for these owners. */
  effect: string;
  fix: string;
  owners: { owner: string; openTasks: number }[];
}

/**
 * Finds the owners of open Tasks on threads whose working hours the bots cannot judge.
 * @param medplum - A client of the Project.
 * @param serviceTypes - OOO_SERVICE_TYPE, as the bot reads it.
 * @returns One entry per reason, owners with the most open Tasks first.
 */
export async function unjudgedOwners(medplum: MedplumClient, serviceTypes: string[] = []): Promise<UnjudgedOwners[]> {
  const tasksPerOwner = new Map<string, number>();
  await scanOpenThreadTasks(
    medplum,
    'focus,owner',
    { nearDeadline: () => false },
    (task) => {
      const owner = task.owner?.reference;
      if (isReroutableOwner(owner)) {
        tasksPerOwner.set(owner, (tasksPerOwner.get(owner) ?? 0) + 1);
      }
    },
    { warn: () => undefined }
  );
  const directory = new OwnerDirectory();
  const now = Date.now();
  await directory.read(medplum, [...tasksPerOwner.keys()], { start: now, end: now + 1 }, { nearDeadline: () => false });
  // Judged over the owner's week (their Schedules as data), not at the hour status runs.
  const byReason = new Map<AvailabilityReason, UnjudgedOwners>();
  for (const [owner, openTasks] of tasksPerOwner) {
    for (const reason of fallbackReasons(directory.facts(owner), serviceTypes)) {
      const entry = byReason.get(reason) ?? { reason, effect: EFFECT[reason] ?? '', fix: FIX[reason] ?? '', owners: [] };
      entry.owners.push({ owner, openTasks });
      byReason.set(reason, entry);
    }
  }
  return [...byReason.values()].map((e) => ({ ...e, owners: e.owners.sort((a, b) => b.openTasks - a.openTasks) }));
}

/**
 * The data problems as lines for status: counts and ids, then the fix.
 * @param found - From `unjudgedOwners`.
 * @param verbose - List every owner, not only the first five.
 * @returns Problem lines.
 */
export function describeUnjudged(found: UnjudgedOwners[], verbose = false): string[] {
  return found.map((e) => {
    const tasks = e.owners.reduce((n, o) => n + o.openTasks, 0);
    const shown = verbose ? e.owners : e.owners.slice(0, 5);
    const list = shown.map((o) => `${o.owner} (${o.openTasks})`).join(', ') + (shown.length < e.owners.length ? `, and ${e.owners.length - shown.length} more` : '');
    return `${e.owners.length} owner(s) of ${tasks} open Task(s) whose working hours cannot be judged (${e.reason}): ${e.effect}. ${list}. Fix: ${e.fix}`;
  });
}
