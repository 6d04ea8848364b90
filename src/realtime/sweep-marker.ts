// The sweep's one piece of state: when the last clean sweep started (every thread with a message
// stored before then was handled), kept in a marker the bot owns (a Basic found and made by its
// identifier, tagged as the project's) so that, with the lifecycle on, a sweep after the bot was off
// reads back to it. It is rewritten at most every MARKER_REFRESH_MS (a version-guarded patch), not by
// every sweep: a marker a few hours old only makes a look-back that is at least a day anyway no
// longer, and a resource rewritten every 15 minutes would pile up 35,000 versions a year.
import { getStatus, normalizeOperationOutcome } from '@medplum/core';
import type { MedplumClient, WithId } from '@medplum/core';
import type { Basic, BundleEntry, Extension } from '@medplum/fhirtypes';
import type { BotLog } from '../lib/bot-runtime';
import { applyWrites, guardedPatchEntry } from '../lib/fhir';
import type { WriteOptions } from '../lib/fhir';
import { CLOCK_SKEW_MS } from '../lib/conversation-reads';
import { readAll } from '../lib/read-guard';
import type { Guard, Stop } from '../lib/read-guard';
import { OOO_BOT_NAME } from '../lib/reroute-plan';

/** With the lifecycle on, threads with a message stored this recently are read even without a Task (the least look-back). */
export const LIFECYCLE_LOOKBACK_MS = 24 * 3_600_000;
/** The most the look-back reaches, however long ago the last clean sweep was (the cost stays bounded). */
export const LIFECYCLE_LOOKBACK_CAP_MS = 14 * LIFECYCLE_LOOKBACK_MS;
/** The sweep's marker: found and made by this identifier. */
export const SWEEP_MARKER_IDENTIFIER = { system: 'urn:medplum-messaging-bots:ooo-reroute', value: 'sweep' };
/** The marker's extension: when the last clean sweep started. */
export const SWEEP_CLEAN_URL = 'urn:medplum-messaging-bots:ooo-sweep-clean';
/** A clean sweep rewrites the marker only when it records an instant at least this old. */
export const MARKER_REFRESH_MS = 6 * 3_600_000;
/** What setup tags as the project's (src/admin/project-setup.ts, MANAGED_TAG_SYSTEM and the bot's name). */
const SWEEP_MARKER_TAG = { system: 'urn:medplum-messaging-bots', code: OOO_BOT_NAME };
const SWEEP_MARKER_CODE = { system: 'urn:medplum-messaging-bots', code: 'ooo-sweep-progress' };

/** What the bot is told when its AccessPolicy refuses the marker (a deploy without `npm run setup` after an upgrade). */
export const MARKER_FORBIDDEN_HINT = "AccessPolicy does not allow Basic: run npm run setup to update the bot's AccessPolicy";

/** The marker as one sweep read it. */
export interface SweepMarker {
  /** The marker, when one exists. */
  found?: WithId<Basic>;
  /** When the last clean sweep started, if recorded. */
  lastClean?: number;
  /** False when the AccessPolicy refused the read: nothing is recorded this run. */
  writable: boolean;
}

/**
 * Reads the marker under the run's guard. A marker the AccessPolicy refuses (401/403: the bot was
 * deployed without `npm run setup` after an upgrade) is no marker, said once in a warning with
 * what to run: the sweep looks back the least (24 hours) and does everything else, since a failed
 * run is never retried and failing here would stop every reroute, repair and lifecycle step.
 * @param medplum - The client.
 * @param guard - The run's guard.
 * @param log - Logger.
 * @returns The marker, or why the guard stopped its read.
 */
export async function readSweepMarker(medplum: MedplumClient, guard: Guard, log: BotLog): Promise<SweepMarker | Stop> {
  let found: WithId<Basic>[] | Stop;
  try {
    found = await readAll<Basic>(medplum, 'Basic', { identifier: `${SWEEP_MARKER_IDENTIFIER.system}|${SWEEP_MARKER_IDENTIFIER.value}` }, guard, log);
  } catch (err) {
    const status = refusedStatus(err);
    if (status === undefined) {
      throw err;
    }
    log.warn(`sweep: its marker could not be read (${status}): ${MARKER_FORBIDDEN_HINT}; this run looks back 24 hours and records nothing`);
    return { writable: false };
  }
  if (typeof found === 'string') {
    return found;
  }
  return { found: found[0], lastClean: lastCleanSweep(found), writable: true };
}

/**
 * The status of a refusal by the AccessPolicy or the login.
 * @param err - What a request threw.
 * @returns 401 or 403, else undefined.
 */
export function refusedStatus(err: unknown): 401 | 403 | undefined {
  const status = getStatus(normalizeOperationOutcome(err));
  return status === 401 || status === 403 ? status : undefined;
}

/**
 * When the last clean sweep started, as its marker records it.
 * @param markers - The marker (several only if made twice; the earliest instant is kept: a longer look-back is safe).
 * @returns Epoch milliseconds, or undefined when none is recorded.
 */
export function lastCleanSweep(markers: Basic[]): number | undefined {
  const times = markers
    .map((m) => Date.parse(m.extension?.find((e) => e.url === SWEEP_CLEAN_URL)?.valueInstant ?? ''))
    .filter((t) => !Number.isNaN(t));
  return times.length ? Math.min(...times) : undefined;
}

/**
 * Where the lifecycle's look-back starts: the last clean sweep's start as recorded (at most
 * MARKER_REFRESH_MS before the last clean sweep; less a clock margin: the server stamps what is stored), never later than 24 hours ago and never earlier than 14 days ago.
 * No clean sweep recorded (the first sweep with the lifecycle on): 24 hours.
 * @param lastClean - When the last clean sweep started, if recorded.
 * @param now - Epoch milliseconds.
 * @returns Epoch milliseconds: threads with a message stored since are read.
 */
export function lookBackFrom(lastClean: number | undefined, now: number): number {
  const least = now - LIFECYCLE_LOOKBACK_MS;
  if (lastClean === undefined) {
    return least;
  }
  return Math.max(now - LIFECYCLE_LOOKBACK_CAP_MS, Math.min(least, lastClean - CLOCK_SKEW_MS));
}

/**
 * Whether a clean sweep that started at `startedAt` rewrites the marker: when none is recorded, or
 * the one recorded is MARKER_REFRESH_MS old.
 * @param lastClean - When the last clean sweep started, as recorded.
 * @param startedAt - When this clean sweep started.
 * @returns True to record it.
 */
export function recordsCleanSweep(lastClean: number | undefined, startedAt: number): boolean {
  return lastClean === undefined || startedAt - lastClean >= MARKER_REFRESH_MS;
}

/**
 * The write that records a clean sweep: a version-guarded patch of the marker, or its conditional create.
 * @param marker - The marker as read, if any.
 * @param startedAt - When the clean sweep started.
 * @returns The batch entry.
 */
export function sweepMarkerEntry(marker: WithId<Basic> | undefined, startedAt: number): BundleEntry {
  const extension: Extension[] = [{ url: SWEEP_CLEAN_URL, valueInstant: new Date(startedAt).toISOString() }];
  if (marker) {
    return guardedPatchEntry(marker, [{ op: 'add', path: '/extension', value: extension }]);
  }
  const resource: Basic = {
    resourceType: 'Basic',
    meta: { tag: [SWEEP_MARKER_TAG] },
    identifier: [SWEEP_MARKER_IDENTIFIER],
    code: { coding: [SWEEP_MARKER_CODE], text: 'Out-of-office sweep: when the last clean sweep started' },
    extension,
  };
  return { request: { method: 'POST', url: 'Basic', ifNoneExist: `identifier=${SWEEP_MARKER_IDENTIFIER.system}|${SWEEP_MARKER_IDENTIFIER.value}` }, resource };
}

export async function recordCleanSweep(medplum: MedplumClient, marker: WithId<Basic> | undefined, startedAt: number, options: WriteOptions, log: BotLog): Promise<void> {
  const [[outcome]] = await applyWrites(medplum, [[sweepMarkerEntry(marker, startedAt)]], options);
  if (outcome.kind === 'failed' && (outcome.status === '401' || outcome.status === '403')) {
    log.warn(`sweep: its marker could not be written (${outcome.status}): ${MARKER_FORBIDDEN_HINT}; the next sweep looks back from the marker as it is`);
  } else if (outcome.kind !== 'applied') {
    // Another sweep moved it meanwhile, or no quota was left: the next sweep reads further back, no harm.
    log.info(`sweep: clean, not recorded (${outcome.kind}${'status' in outcome ? ` ${outcome.status}` : ''}); the next sweep looks back from the marker as it is`);
  }
}
