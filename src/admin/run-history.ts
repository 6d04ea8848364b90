// What each bot run did, read back from its AuditEvent: the server stores a run's console output in
// `outcomeDesc`, and each bot ends with one summary line of `key=value` counts (ids and codes only).
import type { AuditEvent } from '@medplum/fhirtypes';

/** One run, as status shows it. */
export interface RunSummary {
  time?: string;
  /** ok, failed, or the outcome code. */
  outcome: string;
  /** event, sweep, stale, ignored, or unknown (a run that logged no summary). */
  kind: 'event' | 'sweep' | 'stale' | 'ignored' | 'unknown';
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
  const kind: RunSummary['kind'] = /sweep: tasks=/.test(summary)
    ? 'sweep'
    : /stale=/.test(summary)
      ? 'stale'
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
  return {
    time: event.recorded,
    outcome,
    kind,
    did: kind === 'ignored' ? 'a message that triggers nothing' : did || (kind === 'unknown' ? '' : 'nothing to do'),
    leftWork: stopped ? `stopped early (${stopped[1]})` : left ? `${left} deferred` : undefined,
    log,
  };
}

/**
 * Whether the runs show work left over run after run: the quota or the timeout is too small for
 * this Project, and a backlog grows.
 * @param runs - Newest first.
 * @returns A problem line, or undefined.
 */
export function backlogProblem(runs: RunSummary[]): string | undefined {
  const scheduled = runs.filter((r) => r.kind === 'sweep' || r.kind === 'stale').slice(0, 3);
  if (scheduled.length === 3 && scheduled.every((r) => r.leftWork)) {
    return `its last 3 scheduled runs each left work for later (${scheduled.map((r) => r.leftWork).join('; ')}): raise BOT_TIMEOUT_SECONDS or the FHIR quota, or run it more often`;
  }
  return undefined;
}
