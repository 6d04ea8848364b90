// The server's FHIR quota (packages/server/src/fhir/fhirquota.ts, context.ts), emulated:
// - every ProjectMembership (a Bot has its own) has `perCaller` points a minute, the Project `perProject`;
// - costs: read 1, search 20, history 10, write 100; `$find` reads the Schedule, searches its Slots and
//   reads its actor (22); every batch entry is charged on its own; a conditional create is a search
//   plus, when it creates, a write;
// - fixed windows (rate-limiter-flexible): a window starts at a caller's first charge and lasts 60 s;
//   a refused charge still counts (the counter is incremented before the limit is checked);
// - within one request, once a charge is refused, every later charge is refused without counting;
// - `RateLimit: "fhirInteractions";r=<remaining>;t=<seconds to reset>` (the lower of caller and
//   Project), only on responses to requests that charged something.
// The clock is `Date.now()`, so tests that fix or move the time with vi.setSystemTime move the windows.
import type { OperationOutcome } from '@medplum/fhirtypes';

/** The server's default points a minute per ProjectMembership (`defaultFhirQuota`). */
export const DEFAULT_CALLER_QUOTA = 50_000;
const WINDOW_MS = 60_000;

/** Quota settings of an emulated server; `Infinity` turns a limit off. */
export interface QuotaOptions {
  /** Points a minute per caller (ProjectMembership); default 50,000 as on the server. */
  perCaller?: number;
  /** Points a minute for the whole Project; default 10 × perCaller. */
  perProject?: number;
}

/** Points per interaction, as the server charges them. */
export const COST = { read: 1, search: 20, history: 10, write: 100 } as const;

interface Window {
  resetAt: number;
  consumed: number;
}

/** The state the server reports in the RateLimit header after a charge. */
export interface QuotaState {
  remaining: number;
  msBeforeNext: number;
  consumed: number;
  limit: number;
}

/** One request's view of the quota: remembers a refusal so later charges in the request are refused too. */
export interface QuotaCharge {
  /** Charges points; false when refused. */
  charge(points: number): boolean;
  /** What the header says after this request (undefined when nothing was charged). */
  state(): QuotaState | undefined;
  /** Points this request consumed (refused charges that counted included). */
  consumed(): number;
}

/** The quota of one emulated server. */
export class QuotaEmulation {
  readonly perCaller: number;
  readonly perProject: number;
  private readonly windows = new Map<string, Window>();
  /** Points charged per caller since creation (refused charges included), for benchmarks. */
  readonly charged = new Map<string, number>();

  constructor(options: QuotaOptions = {}) {
    this.perCaller = options.perCaller ?? DEFAULT_CALLER_QUOTA;
    this.perProject = options.perProject ?? this.perCaller * 10;
  }

  /**
   * Starts one request's charges.
   * @param caller - The caller (one per ProjectMembership).
   * @returns The request's charge handle.
   */
  begin(caller: string): QuotaCharge {
    let current: QuotaState | undefined;
    let consumed = 0;
    return {
      charge: (points) => {
        if (current && current.remaining <= 0) {
          return false; // the server blocks without consuming once this request is over the limit
        }
        consumed += points;
        this.charged.set(caller, (this.charged.get(caller) ?? 0) + points);
        const user = this.consume(`caller:${caller}`, points, this.perCaller);
        const project = this.consume('project', points, this.perProject);
        current = user.remaining <= project.remaining ? user : project;
        return user.consumed <= user.limit && project.consumed <= project.limit;
      },
      state: () => current,
      consumed: () => consumed,
    };
  }

  /**
   * Points left to a caller in its current window (the lower of caller and Project).
   * @param caller - The caller.
   * @returns Remaining points.
   */
  remaining(caller: string): number {
    const left = (key: string, limit: number): number => {
      const w = this.windows.get(key);
      return !w || Date.now() >= w.resetAt ? limit : Math.max(limit - w.consumed, 0);
    };
    return Math.min(left(`caller:${caller}`, this.perCaller), left('project', this.perProject));
  }

  private consume(key: string, points: number, limit: number): QuotaState {
    const now = Date.now();
    let w = this.windows.get(key);
    if (!w || now >= w.resetAt) {
      w = { resetAt: now + WINDOW_MS, consumed: 0 };
      this.windows.set(key, w);
    }
    w.consumed += points;
    return { remaining: Math.max(limit - w.consumed, 0), msBeforeNext: w.resetAt - now, consumed: w.consumed, limit };
  }
}

/**
 * The 429 body the server sends (`tooManyRequests` with the limiter's state as diagnostics).
 * @param state - The quota state at the refusal.
 * @returns The OperationOutcome.
 */
export function tooManyRequests(state: QuotaState | undefined): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    id: 'too-many-requests',
    issue: [
      {
        severity: 'error',
        code: 'throttled',
        details: { text: 'Too Many Requests' },
        diagnostics: JSON.stringify({
          remainingPoints: 0,
          msBeforeNext: state?.msBeforeNext ?? WINDOW_MS,
          consumedPoints: state?.consumed,
          isFirstInDuration: false,
          limit: state?.limit,
        }),
      },
    ],
  };
}

/**
 * The RateLimit header value the server sends: its per-IP request limit, then the FHIR quota.
 * @param state - The quota state after the request, if it charged anything.
 * @returns The combined header value (as fetch joins repeated headers), or undefined.
 */
export function rateLimitHeader(state: QuotaState | undefined): string | undefined {
  if (!state) {
    return undefined;
  }
  const seconds = Math.ceil(state.msBeforeNext / 1000);
  return `"requests";r=59999;t=60, "fhirInteractions";r=${state.remaining};t=${seconds}`;
}

/**
 * What a request costs, from its method and path below the FHIR base (batch entries one by one).
 * A conditional create is charged by the caller in two steps (search, then write if it creates).
 * @param method - HTTP method.
 * @param path - Path without query, e.g. `Task`, `Task/1`, `Task/1/_history`, `Schedule/1/$find`.
 * @returns The points.
 */
export function requestCost(method: string, path: string): number {
  const segments = path.split('/').filter(Boolean);
  if (method !== 'GET') {
    return COST.write;
  }
  if (segments.length === 0 || segments[0] === 'metadata') {
    return 0;
  }
  if (segments[2] === '$find') {
    return COST.read + COST.search + COST.read; // Schedule, its Slots, its actor
  }
  if (segments[2] === '_history') {
    return segments.length > 3 ? COST.read : COST.history;
  }
  return segments.length === 1 ? COST.search : COST.read;
}
