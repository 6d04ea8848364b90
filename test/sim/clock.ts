// The simulated clock. While installed, `Date` everywhere in this process (the in-memory server's
// `meta.lastUpdated`, the quota's minute windows, MedplumClient) and inside the bots' sandboxes (which
// are given this same `Date`) reads the simulation's time. The clock only moves forward: the driver
// moves it to each step's time, and each request the bots make takes a round trip's worth of it.

const RealDate = Date;

/** The simulation's time. */
export class SimClock {
  private nowMs: number;
  private installed?: DateConstructor;

  constructor(start: number) {
    this.nowMs = start;
  }

  now(): number {
    return this.nowMs;
  }

  /** Moves the clock to an instant (never backwards). */
  advanceTo(instant: number): void {
    this.nowMs = Math.max(this.nowMs, instant);
  }

  advanceBy(ms: number): void {
    this.nowMs += ms;
  }

  iso(instant = this.nowMs): string {
    return new RealDate(instant).toISOString();
  }

  /** A `Date` constructor that reads this clock: `new Date()` and `Date.now()` are simulated time. */
  dateClass(): DateConstructor {
    const clock = this;
    function SimDate(this: unknown, ...args: unknown[]): Date | string {
      if (!new.target) {
        return new RealDate(clock.nowMs).toString();
      }
      return Reflect.construct(RealDate, args.length ? args : [clock.nowMs], new.target) as Date;
    }
    SimDate.prototype = RealDate.prototype;
    SimDate.now = (): number => clock.nowMs;
    SimDate.parse = RealDate.parse;
    SimDate.UTC = RealDate.UTC;
    return SimDate as unknown as DateConstructor;
  }

  /** Makes `globalThis.Date` this clock's until `uninstall`. */
  install(): void {
    if (!this.installed) {
      this.installed = globalThis.Date;
      globalThis.Date = this.dateClass();
    }
  }

  uninstall(): void {
    if (this.installed) {
      globalThis.Date = this.installed;
      this.installed = undefined;
    }
  }
}

/** The machine's real `Date`, for the few things that must not be simulated (none in the bots' path). */
export const REAL_DATE = RealDate;
