// How far to trust a what-if: the replay of the current settings compared with what the bots did in
// fact over the same period (from their own Tasks and notes), and what the replay cannot know. Pure.
import type { BotEvent } from './replay';

/** Agreement on one kind of action. */
export interface Agreement {
  kind: 'reminders' | 'escalations' | 'reroutes' | 'response Tasks';
  /** What the bots did. */
  actual: number;
  /** What the replay of the current settings did. */
  replay: number;
  /** Done by both (the same Task, the same step). */
  matched: number;
  /** The first differences, in words with ids. */
  differences: string[];
}

/** The comparison. */
export interface Trust {
  agreements: Agreement[];
  /** Matched over everything either did (1 when neither did anything); null when the bots did nothing to compare with. */
  overall: number | null;
  /** One line per kind, and the overall figure, for the terminal and the page. */
  lines: string[];
}

/** At most this many differences are listed per kind. */
const SHOWN = 10;

/**
 * Compares the replay of the current settings with what the bots did.
 * @param replay - The replay's events.
 * @param actual - The bots' events read from their Tasks.
 * @param period - Only events in [since, until) count.
 * @param period.since - Start, epoch ms.
 * @param period.until - End, epoch ms (exclusive).
 * @returns The agreement.
 */
export function compare(replay: BotEvent[], actual: BotEvent[], period: { since: number; until: number }): Trust {
  const inPeriod = (e: BotEvent): boolean => e.at >= period.since && e.at < period.until;
  const kinds: [Agreement['kind'], BotEvent['kind'], (e: BotEvent) => string, string][] = [
    ['reminders', 'reminder-created', (e) => e.key, 'reminder'],
    ['escalations', 'escalated', (e) => (e.kind === 'escalated' ? `${e.key} to ${e.to}` : e.key), 'escalation of'],
    ['reroutes', 'rerouted', (e) => (e.kind === 'rerouted' ? `${e.key} from ${e.from} to ${e.to ?? 'the pool'}` : e.key), 'reroute of'],
    ['response Tasks', 'response-opened', (e) => (e.kind === 'response-opened' ? `${e.key} (${e.route})` : e.key), 'response Task'],
  ];
  const agreements = kinds.map(([kind, eventKind, name, words]): Agreement => {
    const mine = replay.filter((e) => e.kind === eventKind && inPeriod(e));
    const theirs = actual.filter((e) => e.kind === eventKind && inPeriod(e));
    const left = new Map<string, BotEvent[]>();
    mine.forEach((e) => left.set(name(e), [...(left.get(name(e)) ?? []), e]));
    let matched = 0;
    const differences: string[] = [];
    for (const e of theirs) {
      const twin = left.get(name(e))?.shift();
      if (twin) {
        matched++;
      } else {
        differences.push(`${words} ${name(e)} on ${e.thread}: done by the bots at ${stamp(e.at)}, not in the replay`);
      }
    }
    for (const rest of left.values()) {
      rest.forEach((e) => differences.push(`${words} ${name(e)} on ${e.thread}: in the replay at ${stamp(e.at)}, not done by the bots`));
    }
    return { kind, actual: theirs.length, replay: mine.length, matched, differences: differences.slice(0, SHOWN).concat(differences.length > SHOWN ? [`and ${differences.length - SHOWN} more`] : []) };
  });
  const actualTotal = agreements.reduce((n, a) => n + a.actual, 0);
  const union = agreements.reduce((n, a) => n + a.actual + a.replay - a.matched, 0);
  const overall = actualTotal ? agreements.reduce((n, a) => n + a.matched, 0) / union : null;
  const lines = agreements.map((a) => {
    if (!a.actual && !a.replay) {
      return `${a.kind}: none by the bots, none in the replay`;
    }
    const share = a.actual ? `replay matches ${pct(a.matched / a.actual)} of the ${a.kind} the bots actually made (${a.matched} of ${a.actual})` : `the bots made no ${a.kind}`;
    const extra = a.replay - a.matched;
    return `${a.kind}: ${share}${extra ? `; the replay also made ${extra} the bots did not` : ''}`;
  });
  lines.push(
    overall === null
      ? 'agreement: nothing to compare: the bots made no reminder, escalation, reroute or response Task in this period (were they running, with these settings?)'
      : `agreement: ${pct(overall)} of what either the bots or the replay did, both did`
  );
  return { agreements, overall, lines };
}

/** What the replay cannot know, always said with its figures. */
export const LIMITS = [
  'Working hours are the Schedules as they are now, for every past hour: a Schedule changed since is read as it is today.',
  'Absences are the busy-unavailable Slots that exist now: a vacation deleted since is not seen; one entered late is seen from its start.',
  'People\'s replies are taken as they happened: a reminder that would have come sooner (or later) may have changed when the care team answered, and the replay cannot know how.',
  'A message counts from its time (sent, else when it was stored), though the bots may have seen a late-synced message only later.',
  'The scheduled runs are replayed when the bots\' run history says they started (else at every exact hour), events at the message\'s time; a run the quota or its deadline cut short is replayed whole, and a message stored while a run was reading may have been seen by the replay and not by the bots.',
  'A thread closed since counts as closed from its header\'s last change; a Task a person closed, from its last change.',
  'A thread\'s recipients are as they are now, with those the out-of-office bot took off for an absence put back (the replay decides that again); people\'s changes to them are not replayed.',
  'Tasks made by people enter the replay with their first owner and priority, as their notes tell; people\'s later changes to them are not replayed.',
];

function pct(share: number): string {
  return `${Math.floor(share * 1000) / 10}%`;
}

function stamp(at: number): string {
  return `${new Date(at).toISOString().slice(0, 16)}Z`;
}
