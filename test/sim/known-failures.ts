// Violations the simulation finds in the bots as they are today, while other work fixes them. The
// short run (test/sim/short.test.ts, part of `npm test`) fails on any violation NOT listed here, and
// says which listed ones no longer occur so the list can be emptied as fixes land. Each entry names
// the invariant and check code (as test/sim/oracle/invariants.ts reports them), why it happens, and a
// seed that shows it (`npm run test:sim -- --seed N --days D --trace <thread>`).
//
// TEMPORARY: this list is meant to become empty.

export interface KnownFailure {
  invariant: number;
  code: string;
  why: string;
  example: string;
}

export const KNOWN_FAILURES: KnownFailure[] = [];

/** Whether a violation is a known one. */
export function isKnown(v: { invariant: number; code: string }): boolean {
  return KNOWN_FAILURES.some((k) => k.invariant === v.invariant && k.code === v.code);
}
