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

export const KNOWN_FAILURES: KnownFailure[] = [
  {
    invariant: 3,
    code: 'task-moved-after-person',
    why:
      'A person assigns a response Task to a colleague who is off shift (or hands it off to them); the next event or sweep ' +
      'judges that colleague unavailable when the patient wrote and now, and returns the Task to the pool. Only a Task given ' +
      'back to the owner a reroute took it from is protected (the "given back" rule in src/lib/reroute-plan.ts).',
    example: 'seed 1, 4 days, 16 providers: thread th15, Task/b12 reassigned to pr9 at 2026-10-29T15:14Z, sent to the pool by the sweep at 15:15Z',
  },
  {
    invariant: 3,
    code: 'given-back-task-moved-again',
    why:
      'The README\'s "Undo a reroute": a person gives a rerouted Task back to its owner. The bot keeps it only when the reroute\'s ' +
      'trigger is the thread\'s latest patient message; when the patient wrote a follow-up after the reroute (the Task already ' +
      'in the pool, so nothing moved) and the person gave it back after reading that follow-up, the next sweep, whose trigger is ' +
      'the follow-up, reroutes it again for the very message the person saw.',
    example: 'seed 1, 4 days, 16 providers: thread th15, Task/h1 rerouted for m706 at step 153, follow-up m707, given back at step 271, rerouted again by the sweep at step 345',
  },
  {
    invariant: 4,
    code: 'reminder-missing',
    why:
      'With BUSINESS_HOURS, the hourly run reads the threads whose patient message was sent in a window that starts at the ' +
      'instant the longest threshold was reached, less STALE_LOOKBACK_HOURS (24) wall hours. Across a weekend or a closed day ' +
      'that instant jumps back by more than 24 wall hours from one run to the next (Saturday noon to Monday 08:00 is 44 hours), ' +
      'so a message sent in the gap (Saturday afternoon, the evening before a holiday) crosses its threshold between two runs ' +
      'and neither window holds it: its reminder waits for the 03:00 UTC reconcile, hours after the run that should have made it.',
    example:
      'seed 1, 30 days: thread th35 (billing, 72 business hours; written Monday 17:05 EDT before the closed Tuesday 20 October) ' +
      'crosses on Friday 30 October at 19:05Z, reminded at 03:00Z; thread th147 (written Saturday 24 October 23:40 EDT), crosses 4 November 21:00Z, reminded at 03:00Z',
  },
  {
    invariant: 5,
    code: 'open-after-reply',
    why:
      'The lifecycle completes a response Task only when the care team spoke last. When the care team\'s reply is not seen by ' +
      'an event (lost, or the bot off) and the patient writes again before the next sweep, the answered Task stays open and ' +
      'stands for the new question: its record shows the first reply, the new question gets no Task of its own, and it is ' +
      'completed only by the next reply.',
    example:
      'seed 1, 30 days (the real-time bot off from 29 October): thread th197, Task/b2679 (question m1575) answered by m1580 ' +
      'while the bot was off, the patient wrote m1581 and m1584, the sweep of 30 October 15:00Z leaves it open until m1585',
  },
  {
    invariant: 5,
    code: 'episode-without-task',
    why:
      'Events lost, the sweep opens the missing response Tasks only for threads with a message stored in the last 24 hours ' +
      '(src/realtime/sweep.ts, LIFECYCLE_LOOKBACK_MS). When the real-time bot is switched off for a day (Subscription and cron), ' +
      'a patient who wrote in its first quarter hour is over 24 hours old at the first sweep after it is back on: the ' +
      'episode never gets a Task, and no later sweep looks at the thread again until someone writes in it.',
    example: 'seed 3, 30 days: thread th238, m1348 stored 29 October 17:13Z while the bot was off; no response Task by the end of the run',
  },
  {
    invariant: 6,
    code: 'throttled',
    why:
      'A run sends a search after the RateLimit header said fewer points are left than a search costs: the sweep\'s ' +
      'recent-message scan (part-of:missing, _lastUpdated) and the reminders run\'s chunk message read (part-of, _lastUpdated) ' +
      'and reminder search. The server refuses it (429) and the run stops early; the quota is checked only before owner reads and write batches.',
    example: 'seed 1, 4 days, 16 providers: step 56 (stale run 49) and step 310 (sweep run 225), each right after a burst left 10 points',
  },
  {
    invariant: 7,
    code: 'cost-over-bound',
    why:
      'Runs that read more than the published table allows for what they had to look at. Seen: a patient\'s follow-up in a ' +
      'thread whose Task was moved at the end of a shift costs 60 points where the README says 40 "when nothing moves" (the ' +
      'provider stays on the header, so ownersToCheck reads their Schedule for a repair an off-shift reroute never needs).',
    example: 'seed 1, 4 days, 16 providers: thread th31, event for m773 at step 405 (GET Task, GET Schedule, GET Slot)',
  },
];

/** Whether a violation is a known one. */
export function isKnown(v: { invariant: number; code: string }): boolean {
  return KNOWN_FAILURES.some((k) => k.invariant === v.invariant && k.code === v.code);
}
