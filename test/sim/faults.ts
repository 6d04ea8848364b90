// The platform's faults, drawn from their own stream as the steps happen:
// - the Subscription loses about 10% of events (a failed run is never retried), delivers some twice
//   (seconds apart, or two at once), and some at the very moment of a sweep;
// - the reminders bot's cron run overlaps with a second run (an $execute by hand);
// - writes fail with 503 in the middle of a run (three times in a row, beyond MedplumClient's two
//   retries; or applied with the response lost);
// - a burst of the Bot's own work spends its quota in the middle of a minute (the script's drains);
// - the script also stores messages late (sent before they were stored) and without `sent`, and
//   switches each bot off for a day.
import type { FaultRule } from '../harness/server-mock';
import type { BotName } from './bundles';
import type { Rng } from './prng';
import type { SimServer } from './store';

export interface FaultCounts {
  lostEvents: number;
  duplicateEvents: number;
  eventsWithSweep: number;
  overlappingStaleRuns: number;
  writeFailures: number;
  quotaDrains: number;
  late: number;
  withoutSent: number;
  botOffDays: number;
}

export type Delivery =
  | { kind: 'lost' }
  | { kind: 'once'; at: number }
  | { kind: 'twice'; at: number; again: number }
  | { kind: 'concurrent-twice'; at: number }
  | { kind: 'with-sweep' };

export class FaultPlan {
  readonly counts: FaultCounts = {
    lostEvents: 0,
    duplicateEvents: 0,
    eventsWithSweep: 0,
    overlappingStaleRuns: 0,
    writeFailures: 0,
    quotaDrains: 0,
    late: 0,
    withoutSent: 0,
    botOffDays: 0,
  };

  constructor(
    private readonly rng: Rng,
    private readonly sim: SimServer
  ) {}

  /** How the Subscription delivers one new message. */
  delivery(now: number): Delivery {
    const roll = this.rng.float();
    const at = now + this.rng.int(200, 3000);
    if (roll < 0.1) {
      this.counts.lostEvents++;
      return { kind: 'lost' };
    }
    if (roll < 0.13) {
      this.counts.duplicateEvents++;
      return { kind: 'twice', at, again: at + this.rng.int(500, 20_000) };
    }
    if (roll < 0.15) {
      this.counts.duplicateEvents++;
      return { kind: 'concurrent-twice', at };
    }
    if (roll < 0.19) {
      this.counts.eventsWithSweep++;
      return { kind: 'with-sweep' };
    }
    return { kind: 'once', at };
  }

  /** Whether a second reminders run starts at the same moment as the cron's. */
  overlappingStaleRun(): boolean {
    const overlap = this.rng.chance(0.06);
    this.counts.overlappingStaleRuns += overlap ? 1 : 0;
    return overlap;
  }

  /**
   * Maybe makes the writes of the run about to start fail.
   * @returns A function that removes the fault after the run, or undefined.
   */
  writeFailure(): (() => void) | undefined {
    if (!this.rng.chance(0.03)) {
      return undefined;
    }
    this.counts.writeFailures++;
    const rule: FaultRule = this.rng.chance(0.7)
      ? { match: /^POST $/, status: 503, times: 3, after: this.rng.int(0, 1) }
      : { match: /^POST $/, status: 503, times: 1, when: 'after' };
    this.sim.server.faults.push(rule);
    return () => {
      const i = this.sim.server.faults.indexOf(rule);
      if (i >= 0) {
        this.sim.server.faults.splice(i, 1);
      }
    };
  }

  /** A burst of the Bot's own work leaves it `leave` points of this minute's quota. */
  drain(bot: BotName, leave: number): void {
    const quota = this.sim.server.quota;
    const spend = quota.remaining(bot) - leave;
    if (spend > 0) {
      quota.begin(bot).charge(spend);
      this.counts.quotaDrains++;
    }
  }
}
