// The server's FHIR quota, seen from a bot: what each interaction costs, how much is left.
//
// Every ProjectMembership (each Bot has its own) may spend `userFhirQuota` points a minute (50,000
// by default), the Project `totalFhirQuota` (10× that). Past it the server answers 429
// `too-many-requests`, or a 429 per entry inside a batch. Every response says what is left in
// `RateLimit: "fhirInteractions";r=<points>;t=<seconds to reset>`, which MedplumClient exposes.
import { normalizeErrorString } from '@medplum/core';
import type { MedplumClient } from '@medplum/core';
import type { BundleEntry, OperationOutcome } from '@medplum/fhirtypes';

/** Points per interaction, as the server charges them (packages/server/src/fhir/fhirquota.ts). */
export const QUOTA_COST = {
  read: 1,
  search: 20,
  history: 10,
  write: 100,
  /** `$find` reads the Schedule, searches its Slots and reads its actor. */
  find: 22,
  /** A conditional create searches, then writes when nothing matches. */
  conditionalCreate: 120,
} as const;

/** What the server last said is left of the caller's quota. */
export interface QuotaLeft {
  points: number;
  secondsUntilReset: number;
}

/**
 * The quota left, from the last response's RateLimit header.
 * @param medplum - The client.
 * @returns What is left, or undefined when the server sent no FHIR quota header.
 */
export function quotaLeft(medplum: MedplumClient): QuotaLeft | undefined {
  try {
    const limit = medplum.rateLimitStatus().find((r) => r.name === 'fhirInteractions');
    return limit ? { points: limit.remainingUnits, secondsUntilReset: limit.secondsUntilReset } : undefined;
  } catch {
    return undefined; // a header MedplumClient cannot parse says nothing usable
  }
}

/**
 * What a batch entry costs.
 * @param entry - The entry.
 * @returns Points.
 */
export function entryCost(entry: BundleEntry): number {
  const method = entry.request?.method;
  if (method === 'POST' && entry.request?.ifNoneExist) {
    return QUOTA_COST.conditionalCreate;
  }
  if (method === 'GET') {
    const path = (entry.request?.url ?? '').split('?')[0].split('/');
    return path.length === 1 ? QUOTA_COST.search : path[2] === '_history' ? QUOTA_COST.history : QUOTA_COST.read;
  }
  return QUOTA_COST.write;
}

/**
 * Whether an error, or a batch entry's outcome, is the server refusing for quota.
 * @param err - An error thrown by MedplumClient, or an OperationOutcome.
 * @returns True for a 429 / too-many-requests.
 */
export function isQuotaError(err: unknown): boolean {
  const outcome = ((err as { outcome?: OperationOutcome })?.outcome ?? err) as OperationOutcome | undefined;
  if (outcome?.resourceType === 'OperationOutcome') {
    return outcome.id === 'too-many-requests' || !!outcome.issue?.some((i) => i.code === 'throttled');
  }
  return /too many requests/i.test(normalizeErrorString(err));
}
