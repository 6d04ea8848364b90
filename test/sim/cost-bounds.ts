// Invariant 7's bounds: the FHIR quota points a run may spend, from the figures the project
// publishes. Each row cites where the figure is written; the unit costs are the server's (read 1,
// search 20, write 100, a conditional create 20 + 100 when it creates).
//
// README.md, "Quota": "A patient message costs 40 points when nothing moves, 240 for a reroute; with
// RESPONSE_TASKS=on, about 200 to open and route a Task, 140 to complete it, nothing more for a
// follow-up; an hourly reminders run a few hundred to a few thousand, whatever the history of the
// threads (docs/design.md has the table)."
// docs/design.md, "Cost, quota and timeouts": the table the rows below restate.
//
// Reads are bounded by the published formula for what the run had to look at (counted by the
// oracle from the store when the run started, over a superset of what the bot may read); writes by
// the published cost of each write the run could have to make. An event retried after a conflict
// ("reading again", src/realtime/event.ts) may read twice.

/** One row of the published table, and the bound the simulation applies. */
export interface CostRow {
  run: string;
  published: string;
  source: string;
  bound: string;
}

export const COST_TABLE: CostRow[] = [
  {
    run: 'event: a patient writes, a Task is open',
    published: '40 when nothing moves, 240 for a reroute (+ Task patch 100, header patch 100)',
    source: 'README "Quota"; docs/design.md rows "OOO event, owner available" and "OOO event that reroutes one Task"',
    bound: 'reads 40 + 40 when covers are read; writes 100 per open Task of the thread + 100 for the header',
  },
  {
    run: 'event: a patient writes, no response Task open',
    published: '201 (+ header read 1, messages 20, Schedules 20, conditional create 120)',
    source: 'README "Quota" ("about 200 to open and route a Task"); docs/design.md row "Lifecycle: a patient writes"',
    bound: 'reads 81 + 40 when covers are read + 20 per further 1,000 messages; writes as above + 120',
  },
  {
    run: 'event: the care team writes',
    published: '140 to complete (Task search, messages, patch)',
    source: 'README "Quota"; docs/design.md row "Lifecycle: the care team replies"',
    bound: 'reads 41 + 20 per further 1,000 messages; writes 100 per open response Task',
  },
  {
    run: 'event: another sender',
    published: 'nothing (ignored)',
    source: 'README "Troubleshooting": the sender must be a Patient or RelatedPerson',
    bound: 'reads 20 (the Task search, when the message is read at all); no writes',
  },
  {
    run: 'sweep (every 15 minutes)',
    published: 'Task scan 20 per 1,000 open Tasks; 40 per 100 threads read; per 50 owners of waiting threads 40; 200 per reroute',
    source: 'docs/design.md row "OOO sweep"; the lifecycle rows for opens (120) and completions (100)',
    bound:
      'reads 20 per 1,000 open Tasks + 20 per 1,000 messages of the last day (the lifecycle\'s look-back) + per 100 candidate threads 40 and 80 for owners and covers + 20 per 1,000 of their messages; writes 200 per Task, 120 per waiting thread',
  },
  {
    run: 'reminders, hourly (incremental)',
    published: '20 per page of the window\'s messages, 20 for the open reminders, 60 per 100 threads involved',
    source: 'docs/design.md row "Stale run, incremental (hourly)"; rows "Reminder created" (120) and "escalated, closed or cancelled" (100)',
    bound: 'reads as published over the last 14 days\' messages (a superset of any window) + 20 per 1,000 of the threads\' messages; writes 120 per thread + 100 per open reminder',
  },
  {
    run: 'reminders, daily full reconcile',
    published: 'about 20 per 1,000 open threads and per 1,000 messages (three scans)',
    source: 'docs/design.md row "Stale run, full reconcile (daily)"',
    bound: 'reads 20 per 1,000 open headers + 20 per 1,000 of their messages + 20 per 1,000 open Tasks; writes as incremental',
  },
];

/** What a run had to look at, counted by the oracle when it started. */
export type CostFacts =
  | { kind: 'event'; role: 'patient' | 'care-team' | 'other'; openTasks: number; openResponse: boolean; covers: boolean; messages: number }
  | { kind: 'sweep'; openTasks: number; recentMessages: number; candidates: number; candidateMessages: number; waiting: number }
  | {
      kind: 'stale';
      full: boolean;
      windowMessages: number;
      openReminders: number;
      threads: number;
      threadMessages: number;
      openHeaders: number;
      openThreadMessages: number;
      openTasks: number;
    };

const pages = (n: number): number => Math.max(1, Math.ceil(n / 1000));

/**
 * The points a run may spend.
 * @param facts - What it had to look at.
 * @param attempts - Event attempts (2 after a conflict).
 * @returns The bound on reads and on writes.
 */
export function costBound(facts: CostFacts, attempts = 1): { reads: number; writes: number } {
  switch (facts.kind) {
    case 'event': {
      if (facts.role === 'other') {
        return { reads: 20, writes: 0 };
      }
      const extraPages = 20 * (pages(facts.messages) - 1);
      if (facts.role === 'care-team') {
        return { reads: attempts * (41 + extraPages), writes: attempts * 100 * facts.openTasks };
      }
      const covers = facts.covers ? 40 : 0;
      const reads = facts.openResponse ? 40 + covers : 81 + covers + extraPages;
      return { reads: attempts * reads, writes: attempts * (100 * facts.openTasks + 100 + (facts.openResponse ? 0 : 120)) };
    }
    case 'sweep': {
      const chunks = Math.max(1, Math.ceil(facts.candidates / 100));
      const reads = 20 * pages(facts.openTasks) + 20 * pages(facts.recentMessages) + chunks * (40 + 80) + 20 * (pages(facts.candidateMessages) - 1);
      return { reads, writes: 200 * facts.openTasks + 120 * facts.waiting };
    }
    case 'stale': {
      const writes = 120 * facts.threads + 100 * facts.openReminders;
      if (facts.full) {
        return { reads: 20 * (pages(facts.openHeaders) + pages(facts.openThreadMessages) + pages(facts.openTasks)), writes };
      }
      const chunks = Math.max(1, Math.ceil(facts.threads / 100));
      return { reads: 20 * pages(facts.windowMessages) + 20 * pages(facts.openReminders) + 60 * chunks + 20 * (pages(facts.threadMessages) - 1), writes };
    }
  }
}
