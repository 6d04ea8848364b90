// Invariant 7's bounds: the FHIR quota points a run may spend, from the figures the project
// publishes. Each row cites where the figure is written; the unit costs are the server's (read 1,
// search 20, write 100, a conditional create 20 + 100 when it creates).
//
// README.md, "Operate" → "Quota": "A patient message costs 40 points when nothing moves, 240 for a
// reroute during an absence (140 at the end of a shift, which does not touch the thread), 20 more
// when a message that arrives late would move a Task ..., 10 more per Task that would move and
// changed after the patient wrote, unless the bot's notes or when it was made already say who set its owner ...; with RESPONSE_TASKS=on, about 200 to open
// and route a Task, 140 to complete it, nothing more for a follow-up unless it would move the open Task
// (20 more ...; if so it completes it ... and opens the new question's Task, about 320 ...); an hourly reminders run a few
// hundred to a few thousand, whatever the history of the threads (docs/design.md has the table)."
// docs/design.md, "Cost, quota and timeouts": the table the rows below restate.
//
// Reads are bounded by the published formula for what the run had to look at (counted by the
// oracle from the store when the run started, over a superset of what the bot may read); writes by
// the published cost of each write the run could have to make. Two allowances the table does not
// spell out are taken from its own unit costs: a cover is an owner like any other (a Schedule and a
// Slot search, 40, as "per 50 owners 40"), and an event retried after a conflict ("reading again",
// src/realtime/event.ts) may read twice.

/** One row of the published table, and the bound the simulation applies. */
export interface CostRow {
  run: string;
  published: string;
  source: string;
  bound: string;
}

export const COST_TABLE: CostRow[] = [
  {
    run: 'event: a patient writes, a response Task is open',
    published: '40 when nothing moves; 240 for an absence reroute (+ Task patch, header patch), 140 at the end of a shift (+ Task patch); + 20 for a late message that would move a Task; + 10 per Task that would move and changed after the message, unless its notes or creation say who set its owner (its history); with the lifecycle on, + 20 when the response Task would move (the messages), and when the care team already answered it, about 320 (its completion, the new question\'s Task opened and routed)',
    source: 'README "Quota"; docs/design.md rows "OOO event, owner available", "… reroutes one Task for an absence", "… at the end of a shift", "… for a late message", "Lifecycle: a follow-up while the Task is open", "… after a reply no event saw"',
    bound: 'reads 40, + 20 when the message was sent over 2 minutes before the run, + 40 when an owner who may lose the Task has a cover, + 10 per open Task of the thread (a history), + when a response Task\'s owner is unavailable (it may move) 20 per 1,000 of the thread\'s messages and 80 for the new Task\'s candidates and their covers; writes 100 per open Task of the thread + 100 for the header, + 120 when a response Task may move (the new question\'s Task)',
  },
  {
    run: 'event: a patient writes, no response Task open',
    published: '201 (+ header read 1, messages 20, Schedules 20, conditional create 120)',
    source: 'README "Quota" ("about 200 to open and route a Task"); docs/design.md row "Lifecycle: a patient writes, a Task is opened and routed"',
    bound: 'reads 81, + 20 late, + 40 when no candidate is available and one has a cover, + 10 per open Task (a history); writes as above + 120',
  },
  {
    run: 'event: the care team writes',
    published: '140 to complete (Task search, messages, patch)',
    source: 'README "Quota"; docs/design.md row "Lifecycle: the care team replies, the Task is completed"',
    bound: 'reads 40; writes 100 per open response Task',
  },
  {
    run: 'event: another sender',
    published: 'nothing (ignored)',
    source: 'README "Troubleshooting": the sender must be a Patient or RelatedPerson (or, with the lifecycle, a person of the care team)',
    bound: 'reads 20 (a Task search at most); no writes',
  },
  {
    run: 'sweep (every 15 minutes)',
    published:
      'Task scan 20 per 1,000 open Tasks; per 100 threads read, 20 for their headers and 20 per page of their latest messages; per 50 owners of waiting threads 40; 10 per Task that would move and changed after the message (unless its notes or creation say who set its owner); 200 per absence reroute, 100 per end-of-shift reroute; ' +
      'with the lifecycle on, 20 for its marker, 20 per 1,000 messages of the last day and per 1,000 older ones stored since the place the marker records (at most 14 days back), 100 to record a clean sweep when the one recorded is 6 hours old, or a catch-up that got further (120 the first time)',
    source:
      'docs/design.md row "OOO sweep" and "Sweep"; README "Quota"; the lifecycle rows for opening (120) and completing (100); threads with a message stored since the last clean sweep (at least the last day) are read',
    bound:
      'reads 20 for the marker + 20 per 1,000 open Tasks + 20 per 1,000 messages of the last day + 20 per 1,000 older messages stored since the last clean sweep recorded (the oracle\'s last clean sweep less 6 hours and 10 minutes: the marker is rewritten every 6 hours, and a catch-up only moves it further; at most 14 days) + per 100 candidate threads 40 and 80 for owners and covers + 20 per further 1,000 of their messages + 20 per thread with an open Task (a page further back) + 10 per open Task (a history); writes 200 per open Task + 120 per candidate thread + 120 for the marker',
  },
  {
    run: 'reminders run (hourly), and the reconcile pass it may go on with',
    published:
      'hourly part: 20 for the marker, 20 per page of the window\'s messages (two searches), 20 for the open reminders, 60 per 100 threads involved, 20 per reminder created; reconcile pass: per 100 open threads 20 per 1,000 of their messages, 2 for their headers, 20 for their Tasks; 100 for the marker',
    source: 'docs/design.md rows "Stale run, hourly part" and "Stale run, full reconcile (daily, in passes)"; "Reminder created" (120), "escalated, closed or cancelled" (100)',
    bound:
      'reads: the hourly part over the last 14 days\' messages (a superset of any window) with a create for every waiting thread involved, plus a whole pass over every open thread; writes 120 per waiting thread + 100 per open reminder + 220 for the marker (made with a conditional create, 120, and a pass\'s place recorded, 100)',
  },
];

/** What a run had to look at, counted by the oracle when it started. */
export type CostFacts =
  | {
      kind: 'event';
      role: 'patient' | 'care-team' | 'other';
      openTasks: number;
      openResponse: boolean;
      /** An open response Task's owner is unavailable now: the reroute may move it, so the event reads the conversation and may complete it and open the new question's Task. */
      responseMayMove: boolean;
      covers: boolean;
      late: boolean;
      messages: number;
    }
  | {
      kind: 'sweep';
      openTasks: number;
      recentMessages: number;
      /** Messages stored before the last day and since the last clean sweep (read after a gap); 0 when none. */
      olderMessages: number;
      candidates: number;
      candidateMessages: number;
      waiting: number;
      withTask: number;
    }
  | {
      kind: 'stale';
      windowMessages: number;
      openReminders: number;
      threads: number;
      waiting: number;
      openHeaders: number;
      openThreadMessages: number;
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
      if (facts.role === 'care-team') {
        return { reads: attempts * 40, writes: attempts * 100 * facts.openTasks };
      }
      // A history (10) for each Task that would move and changed after the message.
      const extra = (facts.covers ? 40 : 0) + (facts.late ? 20 : 0) + 10 * facts.openTasks;
      // A response Task that may move: the messages, and when it was answered, the new Task's candidates (40) and their covers (40).
      const answered = facts.openResponse && facts.responseMayMove ? 20 * pages(facts.messages) + 80 : 0;
      const reads = (facts.openResponse ? 40 + answered : 81 + 20 * (pages(facts.messages) - 1)) + extra;
      const opens = !facts.openResponse || facts.responseMayMove;
      return { reads: attempts * reads, writes: attempts * (100 * facts.openTasks + 100 + (opens ? 120 : 0)) };
    }
    case 'sweep': {
      const chunks = Math.max(1, Math.ceil(facts.candidates / 100));
      // "20 per page of their latest messages (usually one)": a thread whose open Task's question lies
      // before that page takes one page more (src/lib/conversation-reads.ts).
      // The marker (20), and after a gap the older part of the look-back, read as a second scan.
      const older = facts.olderMessages ? 20 * pages(facts.olderMessages) : 0;
      const reads = 20 + 20 * pages(facts.openTasks) + 20 * pages(facts.recentMessages) + older + chunks * (40 + 80) + 20 * (pages(facts.candidateMessages) - 1) + 20 * facts.withTask + 10 * facts.openTasks;
      return { reads, writes: 200 * facts.openTasks + 120 * facts.waiting + 120 };
    }
    case 'stale': {
      const chunks = Math.max(1, Math.ceil(facts.threads / 100));
      const hourly = 20 + 2 * 20 * pages(facts.windowMessages) + 20 * pages(facts.openReminders) + 60 * chunks + 20 * facts.waiting;
      const openChunks = Math.max(1, Math.ceil(facts.openHeaders / 100));
      const pass = openChunks * (2 + 20) + 20 * (openChunks - 1 + pages(facts.openThreadMessages));
      // The marker: "100" in the table; the first run makes it with a conditional create (120), and a
      // pass records where it stopped (100).
      return { reads: hourly + pass, writes: 120 * facts.waiting + 100 * facts.openReminders + 120 + 100 };
    }
  }
}
