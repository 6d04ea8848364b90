// What each bot run did, read back from its AuditEvent, and whether a bot's runs are healthy.
//
// The server stores a run's console output in `outcomeDesc`; each bot ends with one summary line of
// `key=value` counts (ids and codes only). A run started by the Subscription also names the
// Subscription among its entities; a cron run (or an `$execute`) names only the Bot.
//
// A busy Project buries the scheduled runs under event runs (a sweep every 15 minutes, hundreds of
// patient messages between two sweeps), so the scheduled runs are judged by kind over the ticks of
// the Bot's cron: for each tick, did a run start, did it fail, did it leave work. Pure functions
// here; project-status.ts reads the AuditEvents of each tick's window.
import type { AuditEvent } from '@medplum/fhirtypes';
import type { CronSchedule } from '../lib/cron';
import { previousTicks } from '../lib/cron';

/** The kinds of run: event (a message), sweep (the OOO bot's cron), hourly and full (the reminders). */
export type RunKind = 'event' | 'sweep' | 'hourly' | 'full' | 'stale' | 'ignored' | 'unknown';

/** One run, as status shows it. */
export interface RunSummary {
  time?: string;
  /** When it started (period.start, else recorded). */
  started?: string;
  /** ok, failed, or the outcome code. */
  outcome: string;
  /** The server recorded it as failed (outcome other than 0). */
  failed: boolean;
  /** event, sweep, hourly, full, stale (a reminders run that did not say its mode), ignored, or unknown (no summary logged). */
  kind: RunKind;
  /** Started by a Subscription (a message), or by the cron or by hand. */
  trigger: 'subscription' | 'schedule';
  /** What it did, in a few words: "rerouted 2, kept 3". */
  did: string;
  /** It left work for later: stopped early, or deferred some. */
  leftWork?: string;
  /** The whole logged text (for --verbose); ids and counts only. */
  log: string;
}

const WORDS: [string, string][] = [
  ['rerouted', 'rerouted'],
  ['repaired', 'repaired'],
  ['opened', 'opened'],
  ['completed', 'completed'],
  ['cancelled', 'cancelled'],
  ['created', 'reminders created'],
  ['escalated', 'escalated'],
  ['closed', 'closed'],
  ['kept', 'kept'],
  ['keptOnDuty', 'on duty'],
  ['conflicts', 'conflicts'],
  ['failed', 'failed writes'],
];

/**
 * Reads one run from its AuditEvent.
 * @param event - The AuditEvent of a Bot run.
 * @returns The run.
 */
export function describeRun(event: AuditEvent): RunSummary {
  const log = event.outcomeDesc ?? '';
  const outcome = event.outcome === '0' ? 'ok' : event.outcome === '4' ? 'failed' : `outcome ${event.outcome}`;
  const lines = log.split('\n');
  const summary = [...lines].reverse().find((l) => /\b(sweep: tasks=|threads=\d+ stale=|examined=\d+)/.test(l)) ?? '';
  const mode = /\bmode=(incremental|full)\b/.exec(summary)?.[1];
  const kind: RunKind = /sweep: tasks=/.test(summary)
    ? 'sweep'
    : /stale=/.test(summary)
      ? mode === 'incremental'
        ? 'hourly'
        : mode === 'full'
          ? 'full'
          : 'stale'
      : /examined=/.test(summary)
        ? 'event'
        : lines.some((l) => /\] ignored\b/.test(l))
          ? 'ignored'
          : 'unknown';
  const counts = Object.fromEntries([...summary.matchAll(/\b(\w+)=(\d+)\b/g)].map((m) => [m[1], Number(m[2])]));
  const deferred = /deferred=\{"quota":(\d+),"deadline":(\d+)\}/.exec(summary);
  const left = deferred ? Number(deferred[1]) + Number(deferred[2]) : 0;
  const stopped = /stopped early \((quota|deadline)\)/.exec(log);
  const did = WORDS.filter(([key]) => counts[key]).map(([key, word]) => `${word} ${counts[key]}`).join(', ');
  const bySubscription = event.entity?.some((e) => e.what?.reference?.startsWith('Subscription/')) ?? false;
  return {
    time: event.recorded,
    started: event.period?.start ?? event.recorded,
    outcome,
    failed: event.outcome !== undefined && event.outcome !== '0',
    kind,
    trigger: bySubscription || kind === 'event' || kind === 'ignored' ? 'subscription' : 'schedule',
    did: kind === 'ignored' ? 'a message that triggers nothing' : did || (kind === 'unknown' ? '' : 'nothing to do'),
    leftWork: stopped ? `stopped early (${stopped[1]})` : left ? `${left} deferred` : undefined,
    log,
  };
}

/**
 * Whether the runs show work left over run after run: the quota or the timeout is too small for
 * this Project, and a backlog grows.
 * @param runs - Newest first (runs of other kinds than scheduled ones are skipped).
 * @param what - What the runs are called in the line ("scheduled runs", "sweeps").
 * @returns A problem line, or undefined.
 */
export function backlogProblem(runs: RunSummary[], what = 'scheduled runs'): string | undefined {
  const scheduled = runs.filter((r) => !['event', 'ignored', 'unknown'].includes(r.kind)).slice(0, 3);
  if (scheduled.length === 3 && scheduled.every((r) => r.leftWork)) {
    return `its last 3 ${what} each left work for later (${scheduled.map((r) => r.leftWork).join('; ')}): raise BOT_TIMEOUT_SECONDS (then npm run setup) or the FHIR quota, or run it more often`;
  }
  return undefined;
}

/** The scheduled kind of a bot's cron tick. */
export type ScheduledKind = 'sweep' | 'hourly' | 'full' | 'scheduled';

/** A cron tick and the run it started, if any. */
export interface Tick {
  kind: ScheduledKind;
  /** Epoch milliseconds of the tick. */
  at: number;
  /** The window where its run's AuditEvent is looked for. */
  from: number;
  to: number;
  run?: RunSummary;
  /** Whether a missing run counts: the Bot was last written before the tick (its cron job existed). */
  expected: boolean;
}

/** How many ticks of each kind are read and judged. */
export const TICKS_PER_KIND = 4;
/** Grace after a tick's timeout before a run that has not been recorded counts as missing. */
export const GRACE_MS = 5 * 60_000;

/**
 * The ticks whose runs status reads: the last few of each kind whose run had time to finish.
 * @param cron - The Bot's cron.
 * @param options - Which bot, its timeout, now, when the Bot was last written, the full-reconcile hour.
 * @param options.bot - The bot's name (ooo-reroute sweeps; stale-thread-reminders runs hourly and full).
 * @param options.timeoutSeconds - The Bot's timeout.
 * @param options.now - Epoch milliseconds.
 * @param options.botWritten - Epoch milliseconds of the Bot's last write (its cron job is as old at most).
 * @param options.fullHour - STALE_FULL_RECONCILE_HOUR (UTC).
 * @returns Newest first, each kind's ticks together.
 */
export function ticksToRead(
  cron: CronSchedule,
  options: { bot: string; timeoutSeconds: number; now: number; botWritten?: number; fullHour?: number }
): Tick[] {
  const span = options.timeoutSeconds * 1000 + GRACE_MS;
  const before = options.now - span;
  const tick = (kind: ScheduledKind, at: number): Tick => ({ kind, at, from: at - 60_000, to: at + span, expected: options.botWritten === undefined || at > options.botWritten });
  if (options.bot === 'stale-thread-reminders') {
    const full = options.fullHour ?? 3;
    const inFullHour = (t: number): boolean => new Date(t).getUTCHours() === full;
    return [
      ...previousTicks(cron, before, TICKS_PER_KIND, { where: (t) => !inFullHour(t) }).map((t) => tick('hourly', t)),
      ...previousTicks(cron, before, TICKS_PER_KIND, { where: inFullHour, lookback: 8 * 24 * 3600_000 }).map((t) => tick('full', t)),
    ];
  }
  return previousTicks(cron, before, TICKS_PER_KIND).map((t) => tick(options.bot === 'ooo-reroute' ? 'sweep' : 'scheduled', t));
}

/**
 * Gives each tick the run it started: oldest tick first, the first scheduled run (not a message's)
 * not yet given to a tick that started in its window (a run belongs to one tick, also when a
 * frequent cron's windows overlap and runs queue behind each other).
 * @param ticks - From ticksToRead.
 * @param runs - The runs read in the windows.
 * @returns The ticks with their runs, in the order given.
 */
export function assignRuns(ticks: Tick[], runs: RunSummary[]): Tick[] {
  const scheduled = runs
    .filter((r) => r.trigger === 'schedule')
    .map((r) => ({ run: r, at: Date.parse(r.started ?? r.time ?? '') }))
    .filter((r) => Number.isFinite(r.at))
    .sort((a, b) => a.at - b.at);
  const taken = new Set<RunSummary>();
  const given = new Map<Tick, RunSummary>();
  for (const tick of [...ticks].sort((a, b) => a.at - b.at)) {
    const run = scheduled.find((r) => !taken.has(r.run) && r.at >= tick.from && r.at <= tick.to)?.run;
    if (run) {
      taken.add(run);
      given.set(tick, run);
    }
  }
  return ticks.map((t) => ({ ...t, run: given.get(t) }));
}

const KIND_WORDS: Record<ScheduledKind, string> = {
  sweep: 'sweeps',
  hourly: 'hourly runs',
  full: 'full reconciles',
  scheduled: 'scheduled runs',
};

/** The name of a kind's runs, for status lines. */
export function kindWords(kind: ScheduledKind): string {
  return KIND_WORDS[kind];
}

const hhmm = (at: number): string => new Date(at).toISOString().slice(5, 16).replace('T', ' ');

/**
 * What is wrong with a bot's runs, each with what to do.
 * @param ticks - Its cron's ticks with their runs (from assignRuns), newest first per kind.
 * @param events - Its newest runs started by messages, newest first.
 * @param cronText - Its cronString, for the words.
 * @returns Problem lines.
 */
export function judgeRuns(ticks: Tick[], events: RunSummary[], cronText = ''): string[] {
  const problems: string[] = [];
  const kinds = [...new Set(ticks.map((t) => t.kind))];
  for (const kind of kinds) {
    const mine = ticks.filter((t) => t.kind === kind).sort((a, b) => b.at - a.at);
    const ran = mine.filter((t) => t.run).map((t) => t.run as RunSummary);
    const failed = ran.slice(0, 3).filter((r) => r.failed);
    if (failed.length) {
      problems.push(
        `${failed.length} of its last ${Math.min(3, ran.length)} ${KIND_WORDS[kind]} failed (${failed.map((r) => `${r.started?.slice(5, 16).replace('T', ' ')} ${r.outcome}`).join('; ')}): ` +
          `their work waits for the next run, and the server does not retry them. The reason is in the run's log (npm run status -- --verbose); fix it, the next run retries`
      );
    }
    const backlog = backlogProblem(ran, KIND_WORDS[kind]);
    if (backlog) {
      problems.push(backlog);
    }
    const missed = mine.slice(0, 2);
    if (missed.length === 2 && missed.every((t) => t.expected && !t.run)) {
      problems.push(
        `it did not run at ${missed.map((t) => hhmm(t.at)).join(' or ')} UTC although its cron (${cronText}) says it should: the server has no cron job for it ` +
          `(the Project lacked the "cron" feature when the cron was set, or the server's cron worker is down). ` +
          `Fix: check the Project has the "cron" feature, clear the Bot's cronString (Medplum app, Bot, Edit), then npm run setup -- --reset-bot-settings (the server registers a cron job only when the cronString changes)`
      );
    }
  }
  const failedEvents = events.filter((r) => r.trigger === 'subscription');
  let streak = 0;
  while (streak < failedEvents.length && failedEvents[streak].failed) {
    streak++;
  }
  if (streak >= 3) {
    problems.push(
      `its last ${streak} runs for new messages failed (newest ${failedEvents[0].time?.slice(5, 16).replace('T', ' ')}): those messages wait for the next sweep. ` +
        `The reason is in the runs' log (npm run status -- --verbose); fix it`
    );
  }
  return problems;
}

/**
 * One line per scheduled kind: each tick's time and what its run did.
 * @param ticks - From assignRuns.
 * @returns Lines like `sweeps: 11-27 10:45 ok; 10:30 ok, 2 deferred; 10:15 failed; 10:00 missed` (`-`: a
 *   tick before the Bot was last written, not judged).
 */
export function describeTicks(ticks: Tick[]): string[] {
  const kinds = [...new Set(ticks.map((t) => t.kind))];
  return kinds.map((kind) => {
    let day = '';
    const items = ticks
      .filter((t) => t.kind === kind)
      .sort((a, b) => b.at - a.at)
      .map((t) => {
        const [date, time] = hhmm(t.at).split(' ');
        const when = date === day ? time : `${date} ${time}`;
        day = date;
        return `${when} ${t.run ? [t.run.outcome, t.run.leftWork].filter(Boolean).join(', ') : t.expected ? 'missed' : '-'}`;
      });
    return `${KIND_WORDS[kind]}: ${items.join('; ')}`;
  });
}
