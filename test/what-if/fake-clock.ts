// A clock for running the real bots over past weeks outside vitest (the sample): while installed,
// `new Date()` and `Date.now()` read the time set here; every other use of Date is the real one.
const RealDate = Date;

/** The installed clock. */
export interface FakeClock {
  set(ms: number): void;
  restore(): void;
}

/**
 * Replaces the global Date until restored.
 * @param start - The first instant.
 * @returns The clock.
 */
export function installClock(start: number): FakeClock {
  let now = start;
  class ClockDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) {
        super(now);
      } else {
        super(...(args as [string]));
      }
    }

    static now(): number {
      return now;
    }
  }
  globalThis.Date = ClockDate as DateConstructor;
  return {
    set: (ms) => {
      now = ms;
    },
    restore: () => {
      globalThis.Date = RealDate;
    },
  };
}
