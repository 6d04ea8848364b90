// Who speaks in a thread, and who spoke last: one definition for both bots and the SLA export.
//
// A thread is a Communication header (no partOf) with messages pointing at it through partOf. Only
// people move the clock: the patient side (Patient, RelatedPerson) asks, a person of the care team
// (Practitioner, PractitionerRole, or a CareTeam writing as a team inbox) answers. Automated senders
// (Device, Organization, HealthcareService, Bot, ClientApplication: an auto-acknowledgement, a
// reminder integration) neither start nor stop it, and neither do messages without a literal sender.
import type { Communication, Reference } from '@medplum/fhirtypes';
import { referenceType } from './fhir';

/** Who a sender is, for the clock. */
export type SenderRole = 'patient' | 'care-team' | 'automated' | 'unknown';

const ROLES: Record<string, SenderRole> = {
  Patient: 'patient',
  RelatedPerson: 'patient',
  Practitioner: 'care-team',
  PractitionerRole: 'care-team',
  CareTeam: 'care-team',
  Device: 'automated',
  Organization: 'automated',
  HealthcareService: 'automated',
  Bot: 'automated',
  ClientApplication: 'automated',
};

/**
 * The role of a message's sender.
 * @param sender - Communication.sender.
 * @returns patient, care-team, automated, or unknown (no sender, or not a literal `Type/id`).
 */
export function senderRole(sender: Reference | undefined): SenderRole {
  return ROLES[referenceType(sender) ?? ''] ?? 'unknown';
}

/** A message reduced to what decisions need. */
export interface MessagePoint {
  /** Reference string of the message (or of the header, when the header is the first message). */
  ref: string;
  /** `sent`, else `meta.lastUpdated` (so a read receipt does not make an old message look new). */
  time: number;
  role: SenderRole;
  /** The sender's reference string, when literal. */
  sender?: string;
  /** When it was stored (`meta.lastUpdated`): after `time` for a message synced late. */
  stored?: number;
}

/**
 * A message (or header) as a point in its thread's timeline.
 * @param message - The Communication.
 * @returns The point.
 */
export function messagePoint(message: Communication & { id: string }): MessagePoint {
  return {
    ref: `Communication/${message.id}`,
    time: Date.parse(message.sent ?? message.meta?.lastUpdated ?? '') || 0,
    role: senderRole(message.sender),
    sender: message.sender?.reference,
    stored: Date.parse(message.meta?.lastUpdated ?? '') || undefined,
  };
}

/**
 * Orders two points: later time, then reference as a tie-break (so every reader agrees).
 * @param a - A point.
 * @param b - Another.
 * @returns True when a is later than b.
 */
export function isLater(a: MessagePoint, b: MessagePoint): boolean {
  return a.time > b.time || (a.time === b.time && a.ref > b.ref);
}

/**
 * The people's side of a thread's timeline, built from its messages in any order without keeping
 * the thread's history: the latest points, and the patient-side messages the care team has not
 * answered yet (those later than its last message).
 */
export interface Timeline {
  /** The latest message by a person (patient side or care team). */
  last?: MessagePoint;
  lastPatient?: MessagePoint;
  lastCareTeam?: MessagePoint;
  /**
   * Patient-side messages later than `lastCareTeam` (all of them while the care team has not
   * written), in the order they were added: the unanswered run. A later care-team message prunes it.
   */
  unanswered?: MessagePoint[];
  /** Messages skipped: automated or without a usable sender. */
  ignored: number;
}

/**
 * Adds a message to a timeline: people's messages move it, others are counted as ignored.
 * Messages may come in any order; a person's message added twice changes nothing.
 * Entered-in-error messages must be left out by the caller.
 * @param timeline - The timeline, changed in place.
 * @param point - The message.
 */
export function addToTimeline(timeline: Timeline, point: MessagePoint): void {
  if (point.role !== 'patient' && point.role !== 'care-team') {
    timeline.ignored++;
    return;
  }
  if (!timeline.last || isLater(point, timeline.last)) {
    timeline.last = point;
  }
  const key = point.role === 'patient' ? 'lastPatient' : 'lastCareTeam';
  if (!timeline[key] || isLater(point, timeline[key])) {
    timeline[key] = point;
    if (point.role === 'care-team' && timeline.unanswered) {
      // A later reply answers every patient message before it.
      timeline.unanswered = timeline.unanswered.filter((p) => isLater(p, point));
    }
  }
  const answered = timeline.lastCareTeam && !isLater(point, timeline.lastCareTeam);
  if (point.role === 'patient' && !answered && !timeline.unanswered?.some((p) => p.ref === point.ref)) {
    (timeline.unanswered ??= []).push(point);
  }
}

/**
 * The first patient-side message the care team has not answered: the first after its last message
 * (or since the thread began). The patient has been waiting since then; follow-ups do not restart it.
 * @param timeline - The timeline.
 * @returns The message, or undefined when nobody waits on the care team.
 */
export function firstUnanswered(timeline: Timeline): MessagePoint | undefined {
  let first: MessagePoint | undefined;
  for (const p of timeline.unanswered ?? []) {
    if (!first || isLater(first, p)) {
      first = p;
    }
  }
  return first;
}

/**
 * The patient-side messages the care team has not answered, oldest first.
 * @param timeline - The timeline.
 * @returns The unanswered run.
 */
export function unansweredRun(timeline: Timeline): MessagePoint[] {
  return [...(timeline.unanswered ?? [])].sort((a, b) => (isLater(a, b) ? 1 : isLater(b, a) ? -1 : 0));
}

/** What the response lifecycle needs of a thread: who spoke, in order. */
export interface Conversation {
  /** People's messages (patient side and care team), oldest first. */
  points: MessagePoint[];
}

/**
 * Orders people's messages oldest first (automated and unknown senders left out).
 * @param points - Message points, in any order.
 * @returns The conversation.
 */
export function conversation(points: MessagePoint[]): Conversation {
  return { points: points.filter((p) => p.role === 'patient' || p.role === 'care-team').sort((a, b) => (isLater(a, b) ? 1 : isLater(b, a) ? -1 : 0)) };
}

/**
 * The current episode: the care team's last message (the boundary), and the patient messages after it.
 * @param c - The conversation.
 * @returns The boundary (undefined: the care team never wrote) and the first patient message after it.
 */
export function currentEpisode(c: Conversation): { boundary?: MessagePoint; opening?: MessagePoint; last?: MessagePoint } {
  const last = c.points.at(-1);
  const boundaryIndex = c.points.map((p) => p.role).lastIndexOf('care-team');
  return {
    boundary: boundaryIndex >= 0 ? c.points[boundaryIndex] : undefined,
    opening: c.points.slice(boundaryIndex + 1).find((p) => p.role === 'patient'),
    last,
  };
}

/**
 * The first care-team message after an instant: the reply that ends a silence.
 * @param c - The conversation.
 * @param after - Epoch milliseconds.
 * @returns The reply, or undefined.
 */
export function firstReplyAfter(c: Conversation, after: number): MessagePoint | undefined {
  return c.points.find((p) => p.role === 'care-team' && p.time > after);
}
