// Every invariant has teeth: for each, a deliberately planted bug (a patch applied to a copy of
// src/, built into a bundle of its own; never in the shipped code) that the short simulation must
// catch. `npm run test:sim -- --planted` runs the short simulation once as it is (the baseline), then
// once per planted bug, and prints the table: invariant, planted bug, caught at which step. A bug is
// caught when its run reports a violation of its invariant that the baseline does not have (same
// check, same thread or run kind): violations the bots have today (known-failures.ts) do not count.
import type { SourcePatch } from './bundles';
import { buildBots, removeBuild } from './bundles';
import { simulate } from './driver';
import { INVARIANTS } from './invariant-names';
import type { Violation } from './oracle/invariants';

export interface PlantedBug {
  invariant: number;
  bug: string;
  patches: SourcePatch[];
}

export const PLANTED_BUGS: PlantedBug[] = [
  {
    invariant: 1,
    bug: 'a Task stays with an owner who was off shift when the patient wrote and still is (only absences hand off)',
    patches: [{ file: 'lib/reroute-plan.ts', find: "if (written.state === 'unavailable') {", replace: 'if (false) {' }],
  },
  {
    invariant: 2,
    bug: 'the end of a shift hands the Task off (any unavailability now moves it)',
    patches: [{ file: 'lib/reroute-plan.ts', find: "if (now.reason === 'absent') {", replace: "if (now.state === 'unavailable') {" }],
  },
  {
    invariant: 3,
    bug: "the bots ignore a person's choice of owner (a Task given back after a reroute is rerouted again for the same message)",
    patches: [
      { file: 'lib/reroute-plan.ts', find: 'if (thread.trigger && earlier?.from === owner && earlier.trigger === thread.trigger) {', replace: 'if (false) {' },
      { file: 'lib/reroute-plan.ts', find: 'if (assignedByPersonSince(task, thread)) {', replace: 'if (false) {' },
    ],
  },
  {
    invariant: 3,
    bug: 'reminders are created unconditionally (a dismissed reminder comes back for the same episode)',
    patches: [{ file: 'stale/plan.ts', find: "ifNoneExist: `identifier=${names.join(',')}`", replace: 'ifNoneExist: undefined' }],
  },
  {
    invariant: 4,
    bug: 'reminders count wall-clock hours although BUSINESS_HOURS is set',
    patches: [{ file: 'stale/settings.ts', find: "clock: hours && 'hours' in hours ? businessClock(hours.hours) : WALL_CLOCK,", replace: 'clock: WALL_CLOCK,' }],
  },
  {
    invariant: 5,
    bug: "a response Task's question is the thread's beginning: any earlier care-team message completes it",
    patches: [{ file: 'lib/response-lifecycle.ts', find: "return { kind: 'message', message: c.points[index] };", replace: "return { kind: 'hand-off', since: 0 };" }],
  },
  {
    invariant: 6,
    bug: 'writes ignore the quota the server says is left (batches sent into a spent minute)',
    patches: [{ file: 'lib/fhir.ts', find: 'let points = (quotaLeft(medplum)?.points ?? Infinity) - (options.reserve ?? 0);', replace: 'let points = Infinity;' }],
  },
  {
    invariant: 7,
    bug: "the event path searches the thread's Tasks twice",
    patches: [
      {
        file: 'realtime/event.ts',
        find: 'async function readThread(',
        replace:
          'async function readThread(...args: Parameters<typeof readThreadOnce>): ReturnType<typeof readThreadOnce> {\n  await readThreadOnce(...args);\n  return readThreadOnce(...args);\n}\nasync function readThreadOnce(',
      },
    ],
  },
];

export interface PlantedRow {
  invariant: number;
  bug: string;
  caughtAt?: number;
  at?: string;
  check?: string;
  error?: string;
}

/** The short run the planted bugs are judged on (the same as short.test.ts). */
export const PLANTED_RUN = { seed: 1, days: 4, providers: 16 };

const key = (v: Violation): string => `${v.invariant}|${v.code}|${v.thread ?? v.key}`;

/**
 * Runs the baseline and every planted bug.
 * @param options - Where to print; which commit's src/ (default the working tree); which bugs.
 * @returns One row per planted bug.
 */
export async function plantedTable(options: { log: (line: string) => void; ref?: string; bugs?: PlantedBug[] }): Promise<PlantedRow[]> {
  const { log } = options;
  log(`baseline: seed ${PLANTED_RUN.seed}, ${PLANTED_RUN.days} days, ${PLANTED_RUN.providers} providers, src/ ${options.ref ? `at ${options.ref}` : 'as it is'}`);
  const baseline = await simulate({ ...PLANTED_RUN, ref: options.ref });
  const known = new Set(baseline.violations.map(key));
  log(`baseline: ${baseline.violations.length} violations, of kinds ${[...new Set(baseline.violations.map((v) => `${v.invariant} ${v.code}`))].join(', ') || 'none'}`);
  const rows: PlantedRow[] = [];
  for (const planted of options.bugs ?? PLANTED_BUGS) {
    const row: PlantedRow = { invariant: planted.invariant, bug: planted.bug };
    try {
      const bundles = await buildBots(`planted-${rows.length + 1}`, planted.patches, options.ref);
      try {
        const result = await simulate({ ...PLANTED_RUN, bundles, stopOnViolation: (v) => v.invariant === planted.invariant && !known.has(key(v)) });
        const caught = result.violations.find((v) => v.invariant === planted.invariant && !known.has(key(v)));
        if (caught) {
          row.caughtAt = caught.step;
          row.at = new Date(caught.at).toISOString();
          row.check = caught.code;
        }
      } finally {
        removeBuild(bundles);
      }
    } catch (err) {
      row.error = (err as Error).message;
    }
    rows.push(row);
    log(`  ${row.invariant} | ${row.bug} | ${row.caughtAt !== undefined ? `step ${row.caughtAt} (${row.at}, ${row.check})` : row.error ? `ERROR ${row.error}` : 'NOT CAUGHT'}`);
  }
  log('\n| invariant | planted bug | caught at |\n|---|---|---|');
  for (const row of rows) {
    const caught = row.caughtAt !== undefined ? `step ${row.caughtAt} (${row.at?.replace(':00.000Z', 'Z')}), \`${row.check}\`` : row.error ? `error: ${row.error}` : '**not caught**';
    log(`| ${row.invariant} (${INVARIANTS[row.invariant]}) | ${row.bug} | ${caught} |`);
  }
  return rows;
}
