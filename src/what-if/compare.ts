// One what-if: the period replayed with the current and the proposed settings, their figures side
// by side, and the replay of the current settings checked against what the bots did. Pure.
import { actualEvents } from './actual';
import type { PeriodRead } from './reads';
import { replay } from './replay';
import type { BotEvent } from './replay';
import { replayRows, totals } from './rows';
import type { Side, Totals, WhatIfRow } from './rows';
import type { BotSettings } from './settings';
import { compare, LIMITS } from './trust';
import type { Trust } from './trust';

/** Everything a what-if found. */
export interface WhatIfResult {
  since: number;
  until: number;
  /** The replay's start (warm-up). */
  from: number;
  /** What changes, one line per secret. */
  changes: string[];
  rows: WhatIfRow[];
  totals: Record<Side, Totals>;
  /** Escalations on Saturdays and Sundays, in `zone`. */
  weekendEscalations: Record<Side, number> & { zone: string };
  events: Record<Side, BotEvent[]>;
  trust: Trust;
  /** What the replay cannot know, and notes on this run (secrets the bots ignore, unread history). */
  limits: string[];
  threads: number;
  /** When the scheduled runs were replayed (the bots' run history, or every hour), in words. */
  runsNote: string;
}

/**
 * Replays both settings and compares.
 * @param read - What was read.
 * @param current - The current settings.
 * @param proposed - The proposed settings.
 * @param changes - The change in words.
 * @returns The result.
 */
export function whatIf(read: PeriodRead, current: BotSettings, proposed: BotSettings, changes: string[]): WhatIfResult {
  const { facts } = read;
  const sides = { current, proposed };
  const results = { current: replay(facts, current), proposed: replay(facts, proposed) };
  const rows = (['current', 'proposed'] as const).flatMap((side) => replayRows(side, results[side], facts, sides[side].reroute.lifecycle));
  const zone = weekendZone(proposed.secrets.BUSINESS_HOURS ?? current.secrets.BUSINESS_HOURS);
  const weekend = (events: BotEvent[]): number => events.filter((e) => e.kind === 'escalated' && e.at >= facts.since && e.at < facts.until && isWeekend(e.at, zone)).length;
  const notes = [
    ...current.ignored.map((m) => `current settings: ${m}`),
    ...proposed.ignored.map((m) => `proposed settings: ${m}`),
  ];
  return {
    since: facts.since,
    until: facts.until,
    from: facts.from,
    changes,
    rows,
    totals: { current: totals(rows.filter((r) => r.settings === 'current')), proposed: totals(rows.filter((r) => r.settings === 'proposed')) },
    weekendEscalations: { current: weekend(results.current.events), proposed: weekend(results.proposed.events), zone },
    events: { current: results.current.events, proposed: results.proposed.events },
    trust: compare(results.current.events, actualEvents(read.tasks), facts),
    limits: [...LIMITS, ...notes],
    threads: facts.threads.length,
    runsNote: read.runsNote,
  };
}

/**
 * The time zone weekends are counted in: the clinic's opening hours', else UTC.
 * @param businessHours - A BUSINESS_HOURS value, if any.
 * @returns An IANA zone.
 */
export function weekendZone(businessHours: string | undefined): string {
  try {
    return (JSON.parse(businessHours ?? '{}') as { timeZone?: string }).timeZone ?? 'UTC';
  } catch {
    return 'UTC';
  }
}

/**
 * Whether an instant falls on a Saturday or Sunday in a zone.
 * @param at - Epoch ms.
 * @param zone - IANA zone.
 * @returns True on a weekend.
 */
export function isWeekend(at: number, zone: string): boolean {
  const day = new Intl.DateTimeFormat('en-US', { timeZone: zone, weekday: 'short' }).format(at);
  return day === 'Sat' || day === 'Sun';
}
