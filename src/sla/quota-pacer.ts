// Paces a command-line tool by the server's FHIR quota: it waits for the announced reset instead of
// failing. (Bots cannot: the vmcontext sandbox has no timers. They defer to their next run instead.)
import type { MedplumClient } from '@medplum/core';
import { isQuotaError, quotaLeft } from '../lib/quota';
import type { QuotaLeft } from '../lib/quota';

/** How the pacer waits and reports its waits. */
export interface PacerOptions {
  /** Waits this many milliseconds (tests move a fake clock instead). */
  sleep?: (ms: number) => Promise<void>;
  /** Told before each wait, in seconds. */
  onWait?: (seconds: number) => void;
  /** Gives up after this many waits in a row for one request. Default 10. */
  maxWaits?: number;
}

/** Runs requests so that they fit the caller's quota. */
export class QuotaPacer {
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly onWait: (seconds: number) => void;
  private readonly maxWaits: number;
  /** True after a wait, until the next response: the last RateLimit header is stale then. */
  private waited = false;
  /** When the last response (and its RateLimit header) arrived. */
  private seenAt = Date.now();

  constructor(
    private readonly medplum: MedplumClient,
    options: PacerOptions = {}
  ) {
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.onWait = options.onWait ?? (() => undefined);
    this.maxWaits = options.maxWaits ?? 10;
  }

  /**
   * Runs a request, first waiting for the quota to reset when what is left cannot cover its cost,
   * and again (then retrying) when the server refuses it for quota anyway.
   * @param cost - The points the request will spend.
   * @param request - The request.
   * @returns Its result.
   */
  async run<T>(cost: number, request: () => Promise<T>): Promise<T> {
    for (let waits = 0; ; waits++) {
      const left = this.left();
      if (left && left.points < cost && waits < this.maxWaits) {
        await this.wait(left.secondsUntilReset);
        continue;
      }
      try {
        const result = await request();
        this.seen();
        return result;
      } catch (err) {
        this.seen();
        if (!isQuotaError(err) || waits >= this.maxWaits) {
          throw err;
        }
        await this.wait(resetSeconds(this.medplum, err));
      }
    }
  }

  /**
   * Waits for the quota to reset (at least one second, plus one for the clock's rounding).
   * @param seconds - Seconds the server announced.
   */
  async wait(seconds: number): Promise<void> {
    const s = Math.max(1, Math.ceil(seconds)) + 1;
    this.onWait(s);
    await this.sleep(s * 1000);
    this.waited = true;
  }

  /**
   * The quota left as the server last announced it, with the seconds to the reset counted from now;
   * unknown (undefined) right after a wait, since the announced reset has passed and only the next
   * response says what is left.
   * @returns The quota left, or undefined.
   */
  left(): QuotaLeft | undefined {
    const left = this.waited ? undefined : quotaLeft(this.medplum);
    return left && { ...left, secondsUntilReset: Math.max(0, left.secondsUntilReset - (Date.now() - this.seenAt) / 1000) };
  }

  private seen(): void {
    this.waited = false;
    this.seenAt = Date.now();
  }
}

/**
 * Seconds until the quota resets, from the RateLimit header or the 429's diagnostics.
 * @param medplum - The client (its last RateLimit header).
 * @param err - The 429.
 * @returns Seconds; 60 when nothing says.
 */
export function resetSeconds(medplum: MedplumClient, err: unknown): number {
  const left = quotaLeft(medplum);
  if (left) {
    return left.secondsUntilReset;
  }
  try {
    // Anything missing or not JSON throws: nothing says, so a full minute.
    const { outcome } = err as { outcome: { issue: { diagnostics: string }[] } };
    return JSON.parse(outcome.issue[0].diagnostics).msBeforeNext / 1000 || 60;
  } catch {
    return 60;
  }
}
