// The sweep's one piece of state, kept in a marker the bot owns (a Basic found and made by its
// identifier, tagged as the project's) so that, with the lifecycle on, a sweep after the bot was off
// or overloaded reads back far enough: a position in the stored messages before which every thread
// was handled. Either when the last clean sweep started (the bot's clock: the look-back starts a clock
// margin before it), or, while a catch-up is under way, the stored time (the server's stamp, exact) of
// the latest message of the first thread the catch-up has not handled yet, with that thread's
// reference to order threads stored at the same instant. A clean sweep rewrites it at most every
// MARKER_REFRESH_MS (a version-guarded patch): a marker a few hours old only makes a look-back that is
// at least a day anyway no longer, and a resource rewritten every 15 minutes would pile up 35,000
// versions a year; a catch-up rewrites it whenever it gets further, so the look-back shrinks with
// every run that makes progress. The position only moves forward.
import { getStatus, normalizeOperationOutcome } from '@medplum/core';
import type { MedplumClient, WithId } from '@medplum/core';
import type { Basic, BundleEntry, Extension } from '@medplum/fhirtypes';
import type { BotLog } from '../lib/bot-runtime';
import { applyWrites } from '../lib/fhir';
import { markerSearch, markerWrite } from '../lib/bot-marker';
import type { BotMarker } from '../lib/bot-marker';
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
/** The marker's extension during a catch-up: every thread whose latest message was stored before this instant was handled. */
export const SWEEP_HANDLED_URL = 'urn:medplum-messaging-bots:ooo-sweep-handled-before';
/** With SWEEP_HANDLED_URL: so was every thread whose latest message was stored at it, with a reference sorting before this one. */
export const SWEEP_HANDLED_THREAD_URL = 'urn:medplum-messaging-bots:ooo-sweep-handled-thread';
/** A clean sweep rewrites the marker only when it records an instant at least this old. */
export const MARKER_REFRESH_MS = 6 * 3_600_000;
/** What setup tags as the project's (src/admin/project-setup.ts, MANAGED_TAG_SYSTEM and the bot's name). */
const SWEEP_MARKER: BotMarker = {
  identifier: SWEEP_MARKER_IDENTIFIER,
  tag: { system: 'urn:medplum-messaging-bots', code: OOO_BOT_NAME },
  code: { system: 'urn:medplum-messaging-bots', code: 'ooo-sweep-progress' },
  text: 'Out-of-office sweep: how far every thread with a message was handled',
};

/** What the bot is told when its AccessPolicy refuses the marker (a deploy without `npm run setup` after an upgrade). */
export const MARKER_FORBIDDEN_HINT = "AccessPolicy does not allow Basic: run npm run setup to update the bot's AccessPolicy";

/** The marker as one sweep read it. */
export interface SweepMarker {
  /** The marker, when one exists. */
  found?: WithId<Basic>;
  /** How far every thread was handled, if recorded. */
  position?: SweepPosition;
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
    found = await readAll<Basic>(medplum, 'Basic', { identifier: markerSearch(SWEEP_MARKER) }, guard, log);
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
  return { found: found[0], position: markerPosition(found), writable: true };
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
 * A place in the stored messages, by thread: every thread whose latest message was stored before
 * `stored`, or at `stored` with a reference sorting before `thread`, was handled since (a later
 * message stores the thread again, later). A catch-up thread's key is the same shape: its latest
 * message in the look-back and its reference.
 */
export interface SweepPosition {
  /** Epoch milliseconds (a server stamp, `meta.lastUpdated`). */
  stored: number;
  /** A thread header's reference, for threads stored at `stored` exactly. */
  thread?: string;
}

/** What the marker is set to: a clean sweep's start (the bot's clock), or a catch-up's position. */
export type MarkerRecord = { clean: number } | SweepPosition;

/**
 * Orders positions: by stored time, then by reference (none first).
 * @param a - A position.
 * @param b - Another.
 * @returns Negative, zero or positive.
 */
export function comparePositions(a: SweepPosition, b: SweepPosition): number {
  const ta = a.thread ?? '';
  const tb = b.thread ?? '';
  return a.stored - b.stored || (ta < tb ? -1 : ta > tb ? 1 : 0);
}

/**
 * Where a record puts the marker: a clean sweep's start, less a clock margin (the server stamps what
 * is stored, by its own clock, and a message may be stored while the sweep reads); a catch-up's
 * position as it is.
 * @param record - The record.
 * @returns The position.
 */
export function positionOf(record: MarkerRecord): SweepPosition {
  return 'clean' in record ? { stored: record.clean - CLOCK_SKEW_MS } : record;
}

/**
 * Whether a thread the look-back finds was handled already, as the marker says.
 * @param position - The marker's position.
 * @param key - The thread's latest message in the look-back, and its reference.
 * @returns True when it comes before the position.
 */
export function handledBefore(position: SweepPosition | undefined, key: Required<SweepPosition>): boolean {
  return !!position && comparePositions(key, position) < 0;
}

/**
 * The marker's position.
 * @param markers - The marker (several only if made twice; the earliest position is kept: a longer look-back is safe).
 * @returns The position, or undefined when none is recorded.
 */
export function markerPosition(markers: Basic[]): SweepPosition | undefined {
  const positions = markers.flatMap((m): SweepPosition[] => {
    const instant = (url: string): number => Date.parse(m.extension?.find((e) => e.url === url)?.valueInstant ?? '');
    const handled = instant(SWEEP_HANDLED_URL);
    if (!Number.isNaN(handled)) {
      const thread = m.extension?.find((e) => e.url === SWEEP_HANDLED_THREAD_URL)?.valueString;
      return [{ stored: handled, ...(thread ? { thread } : {}) }];
    }
    const clean = instant(SWEEP_CLEAN_URL);
    return Number.isNaN(clean) ? [] : [positionOf({ clean })];
  });
  return positions.sort(comparePositions)[0];
}

/**
 * Where the lifecycle's look-back starts: the marker's position (a clean sweep's start less a clock
 * margin), never later than 24 hours ago and never earlier than 14 days ago. No marker (the first
 * sweep with the lifecycle on): 24 hours.
 * @param marker - The marker's position, or when the last clean sweep started.
 * @param now - Epoch milliseconds.
 * @returns Epoch milliseconds: threads with a message stored since are read.
 */
export function lookBackFrom(marker: SweepPosition | number | undefined, now: number): number {
  const least = now - LIFECYCLE_LOOKBACK_MS;
  if (marker === undefined) {
    return least;
  }
  const from = typeof marker === 'number' ? positionOf({ clean: marker }).stored : marker.stored;
  return Math.max(now - LIFECYCLE_LOOKBACK_CAP_MS, Math.min(least, from));
}

/**
 * Whether a clean sweep that started at `startedAt` and had nothing to catch up rewrites the
 * marker: when none is recorded, or the one recorded is MARKER_REFRESH_MS old.
 * @param position - The marker's position.
 * @param startedAt - When this clean sweep started.
 * @returns True to record it.
 */
export function recordsCleanSweep(position: SweepPosition | undefined, startedAt: number): boolean {
  return position === undefined || positionOf({ clean: startedAt }).stored - position.stored >= MARKER_REFRESH_MS;
}

/**
 * The write that records a clean sweep or a catch-up's position: a version-guarded patch of the
 * marker (its extensions replaced), or its conditional create.
 * @param marker - The marker as read, if any.
 * @param record - What to record.
 * @returns The batch entry.
 */
export function sweepMarkerEntry(marker: WithId<Basic> | undefined, record: MarkerRecord): BundleEntry {
  const extension: Extension[] =
    'clean' in record
      ? [{ url: SWEEP_CLEAN_URL, valueInstant: new Date(record.clean).toISOString() }]
      : [
          { url: SWEEP_HANDLED_URL, valueInstant: new Date(record.stored).toISOString() },
          ...(record.thread ? [{ url: SWEEP_HANDLED_THREAD_URL, valueString: record.thread }] : []),
        ];
  return markerWrite(SWEEP_MARKER, marker, extension);
}

/**
 * Records a clean sweep or a catch-up's position. One small write, sent even near the deadline (the
 * deadline's margin is there for finishing steps; a catch-up stopped by its deadline is just the run
 * whose progress must be kept), within the quota left.
 * @param medplum - The client.
 * @param marker - The marker as read, if any.
 * @param record - What to record.
 * @param options - The quota to leave (no deadline check).
 * @param log - Logger.
 */
export async function recordSweep(medplum: MedplumClient, marker: WithId<Basic> | undefined, record: MarkerRecord, options: Pick<WriteOptions, 'reserve'>, log: BotLog): Promise<void> {
  const [[outcome]] = await applyWrites(medplum, [[sweepMarkerEntry(marker, record)]], options);
  if (outcome.kind === 'failed' && (outcome.status === '401' || outcome.status === '403')) {
    log.warn(`sweep: its marker could not be written (${outcome.status}): ${MARKER_FORBIDDEN_HINT}; the next sweep looks back from the marker as it is`);
  } else if (outcome.kind !== 'applied') {
    // Another sweep moved it meanwhile, or no quota was left: the next sweep reads further back, no harm.
    log.info(`sweep: marker not written (${outcome.kind}${'status' in outcome ? ` ${outcome.status}` : ''}); the next sweep looks back from the marker as it is`);
  }
}
