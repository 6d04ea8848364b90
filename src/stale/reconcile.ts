// The full reconcile: every open thread, read whole and decided, in passes that continue where a
// run's deadline (or quota) stopped them, so that every open thread is reconciled at least once a
// day at any size the quota allows, and after any gap in the runs.
//
// - One marker the bot owns (a Basic resource, found and made by its identifier, tagged as the
//   project's) records when the last pass finished, and the pass in progress: when it started and its
//   cursor (the `meta.lastUpdated` of the last header reconciled, and the ids reconciled at that
//   instant).
// - A cron run reconciles (after its hourly part) when the last pass finished more than a day ago,
//   or never (the first run after a deploy), or a pass is in progress, or in STALE_FULL_RECONCILE_HOUR
//   when none finished within the hour; `$execute` by hand always does.
// - A pass reads the open thread headers in `_lastUpdated` order from its cursor, a page at a time,
//   then a hundred threads at a time their whole message history (by cursor pages), decides them and
//   writes; only then does the cursor move past them. A chunk whose writes were deferred or failed
//   is read again next run: every write is idempotent (conditional creates), so nothing is reminded
//   twice. A header updated during a pass moves later and is reconciled again; headers added are
//   reached too; the pass ends when no header is left after the cursor.
// - Open Tasks are read only for the threads the pass would remind: open reminders' threads were
//   decided by the run's hourly part (it reads every open reminder), and are skipped.
import type { MedplumClient, WithId } from '@medplum/core';
import type { Basic, BundleEntry, Communication, Extension } from '@medplum/fhirtypes';
import { applyWrites, readPages } from '../lib/fhir';
import { markerSearch, markerWrite } from '../lib/bot-marker';
import type { BotMarker } from '../lib/bot-marker';
import { decideAndWrite } from './chunk';
import type { RunContext } from './chunk';
import type { StaleFacts, ThreadFacts } from './plan';
import { HEADER_ELEMENTS, ignoredIn, MESSAGE_ELEMENTS, readAll, threadFacts, THREADS_PER_CHUNK } from './reads';
import type { Stop } from './reads';
import type { StaleConfig } from './settings';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** The marker's identifier: the bot finds and makes it by this, conditionally. */
export const MARKER_IDENTIFIER = { system: 'urn:medplum-messaging-bots:stale-thread-reminders', value: 'full-reconcile' };
/** What setup tags as the project's (src/admin/project-setup.ts, MANAGED_TAG_SYSTEM and the bot's name). */
const MARKER: BotMarker = {
  identifier: MARKER_IDENTIFIER,
  tag: { system: 'urn:medplum-messaging-bots', code: 'stale-thread-reminders' },
  code: { system: 'urn:medplum-messaging-bots', code: 'stale-reconcile-progress' },
  text: 'Stale-thread reminders: progress of the full reconcile',
};
/** The marker's extensions. */
export const RECONCILE_URLS = {
  finished: 'urn:medplum-messaging-bots:stale-reconcile-finished',
  passStarted: 'urn:medplum-messaging-bots:stale-reconcile-pass-started',
  cursor: 'urn:medplum-messaging-bots:stale-reconcile-cursor',
  cursorIds: 'urn:medplum-messaging-bots:stale-reconcile-cursor-ids',
} as const;

/** Where a pass is: the last header reconciled, by `meta.lastUpdated`, and the ids reconciled at that instant. */
export interface Cursor {
  at: number;
  ids: string[];
}

/** What the marker records. */
export interface ReconcileState {
  /** When the last complete pass finished, epoch milliseconds. */
  finished?: number;
  /** The pass in progress. */
  pass?: { started: number; cursor?: Cursor };
}

/** What a run's reconcile did, for its summary. */
export interface ReconcileReport {
  passStarted: string;
  /** Open threads this run reconciled (those the hourly part decided included). */
  threads: number;
  /** The pass reached its end in this run. */
  complete: boolean;
  /** Why it stopped before the end: it continues there next run. */
  pausedBy?: Stop | 'writes';
}

/**
 * The marker's state.
 * @param marker - The marker, if there is one.
 * @returns What it records.
 */
export function readState(marker: Basic | undefined): ReconcileState {
  const instant = (url: string): number | undefined => {
    const value = Date.parse(marker?.extension?.find((e) => e.url === url)?.valueInstant ?? '');
    return Number.isNaN(value) ? undefined : value;
  };
  const started = instant(RECONCILE_URLS.passStarted);
  const at = instant(RECONCILE_URLS.cursor);
  const ids = marker?.extension?.find((e) => e.url === RECONCILE_URLS.cursorIds)?.valueString;
  return {
    finished: instant(RECONCILE_URLS.finished),
    pass: started === undefined ? undefined : { started, cursor: at === undefined ? undefined : { at, ids: ids ? ids.split(',') : [] } },
  };
}

/**
 * The marker's extensions for a state.
 * @param state - The state.
 * @returns Extensions.
 */
export function stateExtensions(state: ReconcileState): Extension[] {
  const iso = (t: number): string => new Date(t).toISOString();
  const out: Extension[] = [];
  if (state.finished !== undefined) {
    out.push({ url: RECONCILE_URLS.finished, valueInstant: iso(state.finished) });
  }
  if (state.pass) {
    out.push({ url: RECONCILE_URLS.passStarted, valueInstant: iso(state.pass.started) });
    if (state.pass.cursor) {
      out.push({ url: RECONCILE_URLS.cursor, valueInstant: iso(state.pass.cursor.at) });
      out.push({ url: RECONCILE_URLS.cursorIds, valueString: state.pass.cursor.ids.join(',') });
    }
  }
  return out;
}

/**
 * Whether a cron run reconciles: a pass is in progress, none ever finished (the first run after a
 * deploy), the last finished a day or more ago (the bot was off, or its cron never reaches the
 * hour), or it is STALE_FULL_RECONCILE_HOUR and none finished within the hour.
 * @param state - The marker's state.
 * @param now - Epoch milliseconds.
 * @param fullHour - STALE_FULL_RECONCILE_HOUR (UTC).
 * @returns True when the run reconciles.
 */
export function reconcileDue(state: ReconcileState, now: number, fullHour: number): boolean {
  if (state.pass || state.finished === undefined || now - state.finished >= DAY_MS) {
    return true;
  }
  return new Date(now).getUTCHours() === fullHour && now - state.finished >= HOUR_MS;
}

/**
 * Finds the marker (one search).
 * @param medplum - The client.
 * @returns The marker, or undefined when the bot has not made it yet.
 */
export async function readMarker(medplum: MedplumClient): Promise<WithId<Basic> | undefined> {
  const found = await medplum.search('Basic', { identifier: markerSearch(MARKER), _count: '1' }, { cache: 'no-cache' });
  return found.entry?.[0]?.resource as WithId<Basic> | undefined;
}

/**
 * The write that records a state: a version-guarded patch of the marker, or its conditional create.
 * @param marker - The marker as read, if any.
 * @param state - The state to record.
 * @returns The batch entry.
 */
export function markerEntry(marker: WithId<Basic> | undefined, state: ReconcileState): BundleEntry {
  return markerWrite(MARKER, marker, stateExtensions(state));
}

/**
 * Records a state on the marker (the run's guard kept the quota it needs).
 * @param medplum - The client.
 * @param marker - The marker as read, if any.
 * @param state - The state.
 * @param run - The run (logger).
 */
export async function saveState(medplum: MedplumClient, marker: WithId<Basic> | undefined, state: ReconcileState, run: Pick<RunContext, 'log'>): Promise<void> {
  const [[outcome]] = await applyWrites(medplum, [[markerEntry(marker, state)]]);
  if (outcome.kind === 'applied') {
    return;
  }
  // A conflict: another run moved the marker meanwhile. Either way the next run reads it again, and
  // at worst reconciles a chunk twice (idempotent).
  run.log.warn(`full reconcile: progress not recorded (${outcome.kind}${'status' in outcome ? ` ${outcome.status}` : ''}); the next run goes on from the marker as it is`);
}

/**
 * Reconciles from the state's cursor until the end of the pass, the deadline or the quota.
 * @param medplum - The client.
 * @param config - Settings.
 * @param run - The run.
 * @param state - The marker's state.
 * @returns The new state and what was done.
 */
export async function reconcileStep(medplum: MedplumClient, config: StaleConfig, run: RunContext, state: ReconcileState): Promise<{ state: ReconcileState; report: ReconcileReport }> {
  const pass = { started: state.pass?.started ?? run.now, cursor: state.pass?.cursor };
  const report: ReconcileReport = { passStarted: new Date(pass.started).toISOString(), threads: 0, complete: false };
  const paused = (why: ReconcileReport['pausedBy']): { state: ReconcileState; report: ReconcileReport } => ({
    state: { finished: state.finished, pass },
    report: { ...report, pausedBy: why },
  });
  for (;;) {
    const page = await headerPage(medplum, pass.cursor, run);
    if (typeof page === 'string') {
      return paused(page);
    }
    for (let i = 0; i < page.headers.length; i += THREADS_PER_CHUNK) {
      const group = page.headers.slice(i, i + THREADS_PER_CHUNK);
      const todo = group.filter((h) => !run.handled.has(`Communication/${h.id}`));
      if (todo.length) {
        const messages = await readAll<Communication>(
          medplum,
          'Communication',
          { 'part-of': todo.map((h) => `Communication/${h.id}`).join(','), _elements: MESSAGE_ELEMENTS },
          run.guard,
          run.log
        );
        if (typeof messages === 'string') {
          return paused(messages);
        }
        const { done, stop } = await decideAndWrite(medplum, factsOf(todo, messages), config, run);
        if (!done) {
          return paused(stop ?? 'writes');
        }
      }
      pass.cursor = advance(pass.cursor, group);
      report.threads += group.length;
    }
    if (page.last) {
      return { state: { finished: Date.now() }, report: { ...report, complete: true } };
    }
  }
}

/**
 * A chunk's facts: each thread read whole; its open Tasks not read yet.
 * @param headers - The headers.
 * @param messages - Their messages.
 * @returns The facts.
 */
function factsOf(headers: WithId<Communication>[], messages: WithId<Communication>[]): StaleFacts {
  const byThread = new Map<string, WithId<Communication>[]>(headers.map((h) => [`Communication/${h.id}`, []]));
  for (const m of messages) {
    for (const p of m.partOf ?? []) {
      byThread.get(p.reference ?? '')?.push(m);
    }
  }
  const threads = new Map<string, ThreadFacts>();
  for (const header of headers) {
    const facts = threadFacts(header, byThread.get(`Communication/${header.id}`) ?? [], undefined);
    threads.set(facts.ref, { ...facts, tasksUnread: true });
  }
  return { threads, openTasks: [], orphanReminders: [], ignoredMessages: ignoredIn(threads) };
}

/**
 * Moves a cursor past headers reconciled (in `meta.lastUpdated` order).
 * @param cursor - The cursor.
 * @param headers - The headers, in the order read.
 * @returns The new cursor.
 */
export function advance(cursor: Cursor | undefined, headers: WithId<Communication>[]): Cursor | undefined {
  let next = cursor;
  for (const h of headers) {
    const at = Date.parse(h.meta?.lastUpdated ?? '');
    if (Number.isNaN(at)) {
      continue;
    }
    next = next && next.at === at ? { at, ids: [...next.ids, h.id] } : { at, ids: [h.id] };
  }
  return next;
}

/**
 * The next open thread headers after a cursor, in `meta.lastUpdated` order (cursor pages), at least a
 * chunk of them unless the pass ends first.
 * @param medplum - The client.
 * @param cursor - Where the pass is.
 * @param run - The run (guard, logger).
 * @returns The headers and whether they are the last, or why reading stopped.
 */
async function headerPage(medplum: MedplumClient, cursor: Cursor | undefined, run: RunContext): Promise<{ headers: WithId<Communication>[]; last: boolean } | Stop> {
  const query = [
    ['part-of:missing', 'true'],
    ['status', 'in-progress'],
    ['_elements', HEADER_ELEMENTS],
    ...(cursor ? [['_lastUpdated', `ge${new Date(cursor.at).toISOString()}`]] : []),
  ];
  const done = new Set(cursor?.ids ?? []);
  const headers: WithId<Communication>[] = [];
  const pages = readPages(medplum, 'Communication', query, { warn: (m) => run.log.warn(m) });
  let more = true;
  try {
    for (;;) {
      if (more) {
        const stop = run.guard.check();
        if (stop) {
          return stop;
        }
      }
      const next = await pages.next();
      if (next.done) {
        return { headers, last: true };
      }
      for (const entry of next.value.entry ?? []) {
        const h = entry.resource as WithId<Communication> | undefined;
        if (h?.id && !(cursor && Date.parse(h.meta?.lastUpdated ?? '') === cursor.at && done.has(h.id))) {
          headers.push(h);
        }
      }
      more = !!next.value.link?.some((l) => l.relation === 'next');
      if (more && headers.length >= THREADS_PER_CHUNK) {
        return { headers, last: false };
      }
    }
  } finally {
    await pages.return(undefined);
  }
}
