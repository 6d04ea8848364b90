// What a test that touches a real Project removes at its end: every resource it made, and every
// resource the bots made because of it. The bots make two kinds there (src/lib/response-lifecycle.ts,
// src/stale/plan.ts, src/stale/reconcile.ts):
// - Tasks on the test's threads (response Tasks when RESPONSE_TASKS is on, the stale bot's reminders),
//   whose `focus` is a thread the test made and whose `for` is a patient it made. They are found by
//   those references, so a Task the test never read (a response Task its message opened) goes too.
//   A bot run a message started may still write after the test's last check: the search is repeated
//   until it has found nothing twice in a row, a few seconds apart.
// - The stale bot's progress marker (a Basic found by its identifier), when there was none before the
//   test: its `$execute` runs made it. One that was there before is the Project's, and stays.
// AuditEvents of the bots' runs are the server's record and stay. Nothing else is deleted: a Task on a
// thread the test did not make is not the test's, whoever made it.
import type { MedplumClient } from '@medplum/core';
import type { Resource, Task } from '@medplum/fhirtypes';
import { readMarker } from '../../src/stale/reconcile';

/** References per search (`focus=Communication/a,Communication/b,...`): a URL of a few kB. */
const REFS_PER_SEARCH = 40;

/** What the clean-up needs from its surroundings. */
export interface CleanupOptions {
  /** Whether the stale bot's marker existed before the test. */
  markerBefore: boolean;
  /** Runs a write within the quota (the test's pacer); a plain call by default. */
  pace?: <T>(points: number, fn: () => Promise<T>) => Promise<T>;
  /** Waits between the searches for late writes. */
  sleep?: (ms: number) => Promise<void>;
  /** How long the bots are given to finish a run between two searches. */
  quietMs?: number;
  /** At most this many searches for late writes. */
  rounds?: number;
  log?: (line: string) => void;
}

/** What the clean-up did. */
export interface CleanupReport {
  /** Resources the test made, deleted. */
  deleted: number;
  /** Resources the bots made for the test, deleted (Tasks and the marker). */
  botMade: string[];
  /** What could not be deleted, with why. */
  failed: string[];
}

const key = (r: Resource): string => `${r.resourceType}/${r.id}`;

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) {
    out.push(items.slice(i, i + size));
  }
  return out;
}

/**
 * The Tasks on the test's threads or for its patients that the test did not record as its own.
 * @param medplum - A Project admin client.
 * @param made - What the test made.
 * @returns The Tasks (ids and references only).
 */
export async function tasksMadeFor(medplum: MedplumClient, made: Resource[]): Promise<Task[]> {
  const own = new Set(made.map(key));
  const threads = [...new Set(made.filter((r) => r.resourceType === 'Communication').map(key))];
  const patients = [...new Set(made.filter((r) => r.resourceType === 'Patient').map(key))];
  const found = new Map<string, Task>();
  const searches = [...chunks(threads, REFS_PER_SEARCH).map((refs) => ({ focus: refs.join(',') })), ...chunks(patients, REFS_PER_SEARCH).map((refs) => ({ subject: refs.join(',') }))];
  for (const params of searches) {
    const tasks = await medplum.searchResources('Task', { ...params, _count: '1000', _elements: 'id,focus,for' }, { cache: 'no-cache' });
    for (const task of tasks) {
      if (!own.has(key(task))) {
        found.set(key(task), task);
      }
    }
  }
  return [...found.values()];
}

/**
 * What remains of the test's resources and of those the bots made for it.
 * @param medplum - A Project admin client.
 * @param made - What the test made.
 * @param markerBefore - Whether the stale bot's marker existed before the test.
 * @returns References still on the server.
 */
export async function remainingOf(medplum: MedplumClient, made: Resource[], markerBefore: boolean): Promise<string[]> {
  const byType = new Map<string, string[]>();
  for (const r of made) {
    byType.set(r.resourceType, [...new Set([...(byType.get(r.resourceType) ?? []), r.id as string])]);
  }
  const left: string[] = [];
  for (const [type, ids] of byType) {
    for (const group of chunks(ids, REFS_PER_SEARCH)) {
      const found = await medplum.searchResources(type as Resource['resourceType'], { _id: group.join(','), _count: '1000', _elements: 'id' }, { cache: 'no-cache' });
      left.push(...found.map(key));
    }
  }
  left.push(...(await tasksMadeFor(medplum, made)).map(key));
  const marker = markerBefore ? undefined : await readMarker(medplum);
  return marker ? [...left, key(marker)] : left;
}

/**
 * Deletes what the test made and what the bots made because of it (see the file comment).
 * @param medplum - A Project admin client.
 * @param made - What the test made, in the order made (deleted in reverse).
 * @param options - The marker's state before the test, pacing, waits.
 * @returns What was deleted.
 */
export async function removeTestData(medplum: MedplumClient, made: Resource[], options: CleanupOptions): Promise<CleanupReport> {
  const pace = options.pace ?? (<T>(_points: number, fn: () => Promise<T>): Promise<T> => fn());
  const sleep = options.sleep ?? ((ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms)));
  const log = options.log ?? ((): void => undefined);
  const report: CleanupReport = { deleted: 0, botMade: [], failed: [] };
  const remove = async (r: Resource): Promise<boolean> => {
    try {
      await pace(100, () => medplum.deleteResource(r.resourceType, r.id as string));
      return true;
    } catch (err) {
      report.failed.push(`${key(r)}: ${(err as Error).message}`);
      return false;
    }
  };
  const removeBotMade = async (): Promise<number> => {
    const tasks = await tasksMadeFor(medplum, made);
    for (const task of tasks) {
      if (await remove(task)) {
        report.botMade.push(key(task));
      }
    }
    return tasks.length;
  };
  await removeBotMade();
  const seen = new Set<string>();
  for (const r of [...made].reverse()) {
    if (!seen.has(key(r))) {
      seen.add(key(r));
      report.deleted += (await remove(r)) ? 1 : 0;
    }
  }
  // A run a message started may land after its thread is gone: search until two searches in a row,
  // some seconds apart, find nothing.
  for (let round = 0, quiet = 0; quiet < 2 && round < (options.rounds ?? 10); round++) {
    await sleep(options.quietMs ?? 3000);
    const late = await removeBotMade();
    quiet = late ? 0 : quiet + 1;
    if (late) {
      log(`${late} Task(s) the bots made for the test's threads after they were deleted: deleted too`);
    }
  }
  if (!options.markerBefore) {
    const marker = await readMarker(medplum);
    if (marker && (await remove(marker))) {
      report.botMade.push(key(marker));
    }
  }
  return report;
}
