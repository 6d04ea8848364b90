// The figures a what-if must show, counted by hand from the clinic's script: waiting episodes,
// the hour each would get its reminder, and the hours its escalations would come. Independent of
// the bots' code (no planStaleRun, no timeline, no clock of theirs): its own loop over the hours.
import { HOUR } from './clinic';
import type { Script } from './clinic';

/** A patient's wait: from the first unanswered message to the care team's reply (if any). */
export interface Episode {
  thread: number;
  start: number;
  reply?: number;
}

/**
 * The waiting episodes of a script.
 * @param script - The script.
 * @returns Each episode.
 */
export function episodes(script: Script): Episode[] {
  const found: Episode[] = [];
  const waiting = new Map<number, number>();
  for (const m of script.messages) {
    if (m.role === 'patient' && !waiting.has(m.thread)) {
      waiting.set(m.thread, m.at);
    } else if (m.role === 'care-team' && waiting.has(m.thread)) {
      found.push({ thread: m.thread, start: waiting.get(m.thread) as number, reply: m.at });
      waiting.delete(m.thread);
    }
  }
  waiting.forEach((start, thread) => found.push({ thread, start }));
  return found;
}

/** How open time is counted between two instants, in hours. */
export type OpenHours = (from: number, to: number) => number;

/** Every hour counts. */
export const wallHours: OpenHours = (from, to) => Math.max(0, to - from) / HOUR;

/**
 * Only Monday to Friday count (UTC), whole days.
 * @param from - Epoch ms.
 * @param to - Epoch ms.
 * @returns Open hours between them.
 */
export const weekdayHours: OpenHours = (from, to) => {
  let open = 0;
  for (let day = Math.floor(from / (24 * HOUR)) * 24 * HOUR; day < to; day += 24 * HOUR) {
    const weekday = new Date(day).getUTCDay();
    if (weekday !== 0 && weekday !== 6) {
      open += Math.max(0, Math.min(day + 24 * HOUR, to) - Math.max(day, from));
    }
  }
  return open / HOUR;
};

/** A reminder as the hand count has it: when created, and when each escalation came. */
export interface HandReminder {
  episode: Episode;
  created: number;
  escalations: number[];
}

/**
 * The reminders of a script under a threshold, with their escalations (urgent, then asap, then stat,
 * one step an hourly run at most, closed by the first reply a run sees).
 * @param script - The script.
 * @param rule - Threshold and escalation period (hours), and how hours are counted.
 * @param rule.after - STALE_AFTER_HOURS.
 * @param rule.every - ESCALATE_AFTER_HOURS.
 * @param rule.open - Open hours.
 * @param until - The end (exclusive): no run at or after it.
 * @returns The reminders.
 */
export function handReminders(script: Script, rule: { after: number; every: number; open: OpenHours }, until: number): HandReminder[] {
  const reminders: HandReminder[] = [];
  for (const episode of episodes(script)) {
    const seen = (h: number): boolean => episode.reply !== undefined && episode.reply <= h;
    let created: number | undefined;
    for (let h = Math.ceil(episode.start / HOUR) * HOUR; h < until && !seen(h); h += HOUR) {
      if (rule.open(episode.start, h) >= rule.after) {
        created = h;
        break;
      }
    }
    if (created === undefined) {
      continue;
    }
    const escalations: number[] = [];
    let step = 0;
    for (let h = created + HOUR; h < until && !seen(h) && step < 2; h += HOUR) {
      const due = Math.min(Math.floor(rule.open(created, h) / rule.every), 2);
      if (step < due) {
        step++;
        escalations.push(h);
      }
    }
    reminders.push({ episode, created, escalations });
  }
  return reminders;
}

/**
 * Whether an instant is on a Saturday or Sunday, UTC.
 * @param at - Epoch ms.
 * @returns True on a weekend.
 */
export function onWeekend(at: number): boolean {
  const day = new Date(at).getUTCDay();
  return day === 0 || day === 6;
}
