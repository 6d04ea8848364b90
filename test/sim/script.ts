// The people's script, written before the run from the seed alone: threads opened by patients and
// the people who write for them, follow-ups, going quiet, care-team replies after minutes to days
// (at work, mostly), automated acknowledgements, threads closed, absences recorded ahead or during
// the day, the moments people act on the bots' work, quota bursts and a bot switched off for a day.
// Nothing here depends on what the bots do, so a planted bug changes the bots' writes, not the
// clinic's day. (Who a person reassigns to, and which reminder they dismiss, are chosen when they
// act, from what they see.)
import type { Clinic, Priority, Provider } from './clinic';
import { atWork, nextShift } from './clinic';
import type { BotName } from './bundles';
import { addDays, crossing, localDay, localInstant, onShift } from './oracle/hours';
import type { Role } from './oracle/record';
import type { Rng } from './prng';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export interface ThreadPlan {
  ref: string;
  subject: string;
  /** Who writes on the patient side. */
  writer: string;
  recipients: string[];
  priority: Priority;
  category: string;
  /** The header carries the patient as its sender (it is the first message). */
  headerSender: boolean;
}

export type PersonAction = 'reassign' | 'readd' | 'dismiss' | 'handoff';

/** A person acting on one thread in particular (a scenario's step). */
export type TargetedAction = 'give-back' | 'dismiss';

export type Planned =
  | { kind: 'thread'; at: number; thread: ThreadPlan }
  | { kind: 'message'; at: number; ref: string; thread: string; sender: string; role: Role; sentEarlierBy?: number; noSent?: boolean }
  | { kind: 'close'; at: number; thread: string }
  | { kind: 'absence'; at: number; provider: string; slot: string; start: number; end: number }
  | { kind: 'person'; at: number; action: PersonAction }
  | { kind: 'person-on'; at: number; action: TargetedAction; thread: string }
  | { kind: 'drain'; at: number; bot: BotName; leave: number; midRun: boolean; target?: 'event' }
  | { kind: 'switch'; at: number; bot: BotName; on: boolean };

/** The script, in time order, and the history to store before the run starts. */
export interface Script {
  items: Planned[];
}

/**
 * Writes the script.
 * @param clinic - The clinic (absences are added to its providers).
 * @param rng - The script's stream.
 * @returns The script.
 */
export function writeScript(clinic: Clinic, rng: Rng): Script {
  const items: Planned[] = [];
  const ids = { thread: 0, message: 0, slot: 0 };
  const newMessage = (): string => `Communication/m${++ids.message}`;
  const add = (item: Planned): void => {
    if (item.at < clinic.end) {
      items.push(item);
    }
  };
  const patientSide = (subject: string): string => {
    const related = [...clinic.related].filter(([, p]) => p === subject).map(([r]) => r);
    return related.length && rng.chance(0.5) ? rng.pick(related) : subject;
  };
  const newThread = (at: number, subject: string): ThreadPlan => {
    const primary = rng.pick(clinic.providers);
    const second = rng.chance(0.25) ? rng.pick(clinic.providers.filter((p) => p !== primary)) : undefined;
    return {
      ref: `Communication/th${++ids.thread}`,
      subject,
      writer: rng.chance(0.15) ? patientSide(subject) : subject,
      recipients: [primary.ref, ...(second ? [second.ref] : [])],
      priority: rng.weighted({ routine: 72, urgent: 18, asap: 7, stat: 3 }),
      category: rng.weighted({ clinical: 50, billing: 20, admin: 30 }),
      headerSender: rng.chance(0.1) && at >= clinic.start,
    };
  };
  const message = (at: number, thread: ThreadPlan, sender: string, role: Role, faults = true): void => {
    const late = faults && at >= clinic.start && rng.chance(0.05);
    const noSent = faults && !late && at >= clinic.start && rng.chance(0.03);
    add({ kind: 'message', at, ref: newMessage(), thread: thread.ref, sender, role, sentEarlierBy: late ? rng.int(2 * MINUTE, 3 * HOUR) : undefined, noSent });
  };

  // A conversation: the patient writes, maybe follows up, the care team answers (or not), and so on.
  const converse = (thread: ThreadPlan, first: number, turns: number): void => {
    let t = first;
    for (let turn = 0; turn < turns && t < clinic.end; turn++) {
      message(t, thread, thread.writer, 'patient');
      if (rng.chance(0.3)) {
        message(t + rng.int(5, 60) * SECOND, thread, rng.pick(clinic.automated), 'automated');
      }
      const never = rng.chance(0.2);
      const kind = rng.weighted({ minutes: 35, hours: 35, days: 30 });
      let reply = t + (kind === 'minutes' ? rng.int(2, 60) * MINUTE : kind === 'hours' ? rng.int(1, 10) * HOUR : rng.int(10, 72) * HOUR);
      const replier = pickReplier(clinic, thread, reply, rng);
      if (!atWork(replier, reply) && rng.chance(0.85)) {
        reply = nextShift(replier, reply) + rng.int(5, 120) * MINUTE;
      }
      // Follow-ups while the patient waits.
      let last = t;
      for (let f = 0; f < 3 && rng.chance(0.35); f++) {
        const at = last + Math.max(5 * MINUTE, Math.round(rng.exp(4 * HOUR)));
        if (!never && at >= reply) {
          break;
        }
        message(at, thread, thread.writer, 'patient');
        last = at;
      }
      if (never) {
        // Nobody answers; most such threads are closed by someone days later.
        if (rng.chance(0.7)) {
          add({ kind: 'close', at: last + rng.int(2, 10) * DAY, thread: thread.ref });
        }
        return;
      }
      message(reply, thread, replier.ref, 'care-team');
      const next = rng.weighted({ close: 15, again: 45, quiet: 30, automated: 10 });
      if (next === 'close') {
        add({ kind: 'close', at: reply + Math.round(rng.exp(2 * HOUR)) + MINUTE, thread: thread.ref });
        return;
      }
      if (next === 'automated') {
        message(reply + rng.int(1, 48) * HOUR, thread, rng.pick(clinic.automated), 'automated', false);
        return;
      }
      if (next === 'quiet') {
        if (rng.chance(0.2)) {
          add({ kind: 'close', at: reply + rng.int(1, 5) * DAY, thread: thread.ref });
        }
        return;
      }
      t = reply + Math.max(5 * MINUTE, Math.round(rng.exp(20 * HOUR)));
    }
  };

  const openThread = (at: number, subject: string, turns: number): ThreadPlan => {
    const thread = newThread(at, subject);
    add({ kind: 'thread', at, thread });
    converse(thread, at + (thread.headerSender ? rng.int(0, 120) * SECOND : rng.int(1, 30) * SECOND), turns);
    return thread;
  };

  // History: threads from before the bots' first run, the care team having spoken last; a few long
  // ones with hundreds of messages, which stay active.
  const scale = clinic.providers.length / 24;
  for (let i = 0; i < Math.round(20 * scale); i++) {
    const thread = newThread(clinic.start - rng.int(2, 30) * DAY, rng.pick(clinic.patients));
    const opened = clinic.start - rng.int(2, 30) * DAY;
    add({ kind: 'thread', at: opened, thread });
    let t = opened + MINUTE;
    for (let k = rng.int(1, 3); k > 0; k--) {
      message(t, thread, thread.writer, 'patient', false);
      t += rng.int(10, 300) * MINUTE;
      message(t, thread, thread.recipients[0], 'care-team', false);
      t += rng.int(10, 300) * MINUTE;
    }
    if (rng.chance(0.3)) {
      add({ kind: 'close', at: Math.min(t + HOUR, clinic.start - MINUTE), thread: thread.ref });
    }
  }
  for (let i = 0; i < rng.int(2, 4); i++) {
    const thread = newThread(clinic.start - 365 * DAY, rng.pick(clinic.patients));
    add({ kind: 'thread', at: clinic.start - 365 * DAY, thread });
    const count = rng.int(150, 400);
    const step = Math.floor((364 * DAY) / count);
    for (let k = 0; k < count; k++) {
      const at = clinic.start - 365 * DAY + (k + 1) * step;
      message(at, thread, k % 2 === 0 ? thread.writer : rng.pick(thread.recipients), k % 2 === 0 ? 'patient' : 'care-team', false);
    }
    // Still active: a turn every couple of days.
    for (let t = clinic.start + rng.int(1, 48) * HOUR; t < clinic.end; t += rng.int(24, 72) * HOUR) {
      converse(thread, t, 1);
    }
  }

  // New threads: more by day than by night, fewer at weekends.
  const zone = clinic.zones[0];
  for (let t = clinic.start; t < clinic.end; ) {
    const day = localDay(zone, t);
    const hour = Math.floor((t - localInstant(zone, day, 0)) / HOUR);
    const weekend = day.weekday === 0 || day.weekday === 6;
    const perHour = (hour >= 8 && hour < 18 ? 1.4 : hour >= 18 && hour < 23 ? 0.7 : 0.25) * (weekend ? 0.6 : 1) * scale;
    t += Math.max(SECOND, Math.round(rng.exp(HOUR / perHour)));
    if (t < clinic.end) {
      openThread(t, rng.pick(clinic.patients), rng.int(1, 5));
    }
  }

  // Absences: vacations recorded ahead (some recorded late), sick days called in during the day.
  for (const p of clinic.providers) {
    if (rng.chance(0.3)) {
      const first = addDays(localDay(p.zone, clinic.start), rng.int(-3, Math.max(0, Math.round((clinic.end - clinic.start) / DAY) - 2)));
      const start = localInstant(p.zone, first, 0);
      const end = localInstant(p.zone, addDays(first, rng.int(2, 7)), 0);
      const recordedAt = rng.chance(0.15) ? start + rng.int(1, 12) * HOUR : start - rng.int(1, 14) * DAY;
      absence(p, start, end, recordedAt);
    }
    for (let day = localDay(p.zone, clinic.start); localInstant(p.zone, day, 0) < clinic.end; day = addDays(day, 1)) {
      const rule = p.rules.find((r) => r.days.includes((['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const)[day.weekday]));
      if (rule && rng.chance(0.04)) {
        const shiftStart = localInstant(p.zone, day, rule.start);
        absence(p, shiftStart - HOUR, localInstant(p.zone, addDays(day, 1), 0) + (rule.start + rule.minutes > 1440 ? 8 * HOUR : 0), shiftStart + rng.int(-60, 180) * MINUTE);
      }
    }
  }
  function absence(p: Provider, start: number, end: number, recordedAt: number): void {
    if (recordedAt >= clinic.end) {
      return;
    }
    const slot = `Slot/ab${++ids.slot}`;
    p.absences.push({ slot, start, end, recordedAt });
    add({ kind: 'absence', at: recordedAt, provider: p.ref, slot, start, end });
  }

  // People at work on the bots' work: reassigning, re-adding, dismissing, handing off.
  for (let t = clinic.start; t < clinic.end; ) {
    t += Math.round(rng.exp((40 * MINUTE) / scale));
    if (t < clinic.end && onShift(zone, [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat'], start: 7 * 60, minutes: 14 * 60 }], t)) {
      add({ kind: 'person', at: t, action: rng.weighted({ reassign: 35, readd: 20, dismiss: 25, handoff: 20 }) });
    }
  }

  // Faults of the platform: a burst of the Bot's own work spends its quota just before one of its
  // runs, or in the middle of it (after its first requests); and each bot switched off for a day.
  // (A burst in the middle of an event's run: after its first request, while a patient's message is handled.)
  for (let t = clinic.start; t < clinic.end; ) {
    t += Math.round(rng.exp(4 * HOUR));
    const bot = rng.pick(['ooo-reroute', 'stale-thread-reminders'] as const);
    const period = bot === 'ooo-reroute' ? 15 * MINUTE : HOUR;
    const tick = Math.ceil(t / period) * period;
    const mode = rng.weighted({ before: 40, midRun: 30, midEvent: bot === 'ooo-reroute' ? 30 : 0 });
    const leave = rng.pick([0, 30, 150, 400, 2000]);
    if (mode === 'midEvent') {
      add({ kind: 'drain', at: t, bot, leave, midRun: true, target: 'event' });
    } else {
      add({ kind: 'drain', at: mode === 'midRun' ? tick - SECOND : tick - rng.int(1, 40) * SECOND, bot, leave, midRun: mode === 'midRun' });
    }
  }
  const days = Math.round((clinic.end - clinic.start) / DAY);
  const offDay = (bot: BotName, day: number): void => {
    const at = clinic.start + day * DAY + rng.int(6, 14) * HOUR;
    add({ kind: 'switch', at, bot, on: false });
    // "For a day": back after a day and a half-hour maintenance window.
    add({ kind: 'switch', at: at + DAY + 30 * MINUTE, bot, on: true });
    if (bot === 'ooo-reroute') {
      // A patient writes a minute after the real-time bot went off; nobody answers for two days.
      const thread = { ...newThread(at + MINUTE, rng.pick(clinic.patients)), headerSender: false };
      add({ kind: 'thread', at: at + MINUTE, thread });
      message(at + 2 * MINUTE, thread, thread.writer, 'patient', false);
      message(at + 2 * DAY, thread, thread.recipients[0], 'care-team', false);
    }
  };
  offDay('stale-thread-reminders', Math.min(1, days - 1));
  if (days >= 7) {
    offDay('ooo-reroute', Math.floor(days / 3));
    offDay('stale-thread-reminders', Math.floor((2 * days) / 3));
  }

  scenarios(clinic, rng, { add, newThread, message, absence });
  items.sort((a, b) => a.at - b.at);
  return { items };
}

interface Writers {
  add(item: Planned): void;
  newThread(at: number, subject: string): ThreadPlan;
  message(at: number, thread: ThreadPlan, sender: string, role: Role, faults?: boolean): void;
  absence(p: Provider, start: number, end: number, recordedAt: number): void;
}

/**
 * Three sequences every run goes through once a simulated day (on top of the random clinic), so
 * that even a short run exercises what invariants 3 and 6 protect:
 * - "Undo a reroute": a provider's patient writes again after the provider called in sick; the bot
 *   reroutes the Task; twenty minutes later a person gives it back to them;
 * - a reminder dismissed: an asap thread nobody answers gets its reminder, which a person dismisses;
 * - a burst of the real-time bot's other work spends its quota while it opens a new thread's Task.
 * @param clinic - The clinic.
 * @param rng - The script's stream.
 * @param w - How the script writes.
 */
function scenarios(clinic: Clinic, rng: Rng, w: Writers): void {
  const days = Math.round((clinic.end - clinic.start) / DAY);
  for (let d = 0; d < days; d++) {
    const t = clinic.start + d * DAY + rng.int(5, 9) * HOUR;
    const p = clinic.providers.find((x, i) => i >= d % clinic.providers.length && atWork(x, t) && atWork(x, t + 3 * HOUR));
    if (p) {
      const thread = { ...w.newThread(t, rng.pick(clinic.patients)), recipients: [p.ref], priority: 'routine' as const, category: 'clinical', headerSender: false };
      w.add({ kind: 'thread', at: t, thread });
      w.message(t + 30 * SECOND, thread, thread.writer, 'patient', false);
      w.absence(p, t + HOUR, t + 30 * HOUR, t + HOUR);
      w.message(t + 90 * MINUTE, thread, thread.writer, 'patient', false);
      w.add({ kind: 'person-on', at: t + 110 * MINUTE, action: 'give-back', thread: thread.ref });
      w.message(t + 8 * HOUR, thread, rng.pick(clinic.providers.filter((x) => x !== p)).ref, 'care-team', false);
    }
    const u = clinic.start + d * DAY + rng.int(4, 7) * HOUR;
    const asap = { ...w.newThread(u, rng.pick(clinic.patients)), priority: 'asap' as const, category: 'admin', headerSender: false };
    w.add({ kind: 'thread', at: u, thread: asap });
    w.message(u + 20 * SECOND, asap, asap.writer, 'patient', false);
    const reminded = crossing(clinic.businessHours, u + 20 * SECOND, 2) + 70 * MINUTE;
    w.add({ kind: 'person-on', at: Math.ceil(reminded / HOUR) * HOUR + 10 * MINUTE, action: 'dismiss', thread: asap.ref });
    w.message(Math.ceil(reminded / HOUR) * HOUR + 5 * HOUR, asap, asap.recipients[0], 'care-team', false);
    const v = clinic.start + d * DAY + rng.int(10, 13) * HOUR;
    w.add({ kind: 'drain', at: v, bot: 'ooo-reroute', leave: 150, midRun: true, target: 'event' });
    const burst = w.newThread(v, rng.pick(clinic.patients));
    w.add({ kind: 'thread', at: v, thread: { ...burst, headerSender: false } });
    w.message(v + SECOND, { ...burst, headerSender: false }, burst.writer, 'patient', false);
  }
}

function pickReplier(clinic: Clinic, thread: ThreadPlan, at: number, rng: Rng): Provider {
  const listed = thread.recipients.map((r) => clinic.providers.find((p) => p.ref === r) as Provider);
  const onDuty = listed.filter((p) => atWork(p, at));
  if (onDuty.length && rng.chance(0.8)) {
    return rng.pick(onDuty);
  }
  const anyone = clinic.providers.filter((p) => atWork(p, at));
  return rng.chance(0.6) && anyone.length ? rng.pick(anyone) : rng.pick(listed);
}
