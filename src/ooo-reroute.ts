// Out-of-office reroute bot: the entry. A table of contents for the real-time bot.
//
// - Event path (`src/realtime/event.ts`; the Subscription on new thread messages): a patient writes;
//   each open response Task of the thread whose owner is unavailable goes to an available cover or
//   to the pool, with a note, and the absent owner leaves the header's recipients.
// - Sweep (`src/realtime/sweep.ts`; the same Bot on a cron schedule, or `$execute` with an empty
//   body): the server never retries a failed Subscription run and the quota can refuse one, so the
//   sweep replays the event's decision for every thread still waiting on the care team.
// - One definition of available (`src/lib/availability.ts`), read per owner once a run
//   (`src/realtime/owners.ts`); one pure decision per thread (`src/lib/reroute-plan.ts`).
import type { BotEvent, MedplumClient } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { createBotLog } from './lib/bot-runtime';
import { OOO_BOT_NAME } from './lib/reroute-plan';
import { onMessage } from './realtime/event';
import { readRerouteConfig } from './realtime/settings';
import type { RerouteSummary, SweepSummary } from './realtime/summary';
import { sweep } from './realtime/sweep';

export { triageMessage } from './realtime/event';
export type { Deferred, RerouteSummary, SweepSummary } from './realtime/summary';
export type { RerouteConfig } from './realtime/settings';

/**
 * Out-of-office reroute: the event path for a new message, the sweep for a cron run or an empty
 * `$execute`.
 *
 * Secrets: `OOO_COVERAGE`: JSON map of owner reference to covering provider reference;
 * `OOO_SERVICE_TYPE`: `system|code` list selecting which working-hours rule sets count;
 * `BOT_TIMEOUT_SECONDS` (10): the Bot's timeout.
 * @param medplum - The Medplum client, authenticated as the bot.
 * @param event - A Subscription event (input: the new message) or a cron event (input: the Bot).
 * @returns A summary.
 */
export async function handler(medplum: MedplumClient, event: BotEvent<Resource>): Promise<RerouteSummary | SweepSummary> {
  const log = createBotLog(OOO_BOT_NAME);
  const config = readRerouteConfig(event, log);
  const startedAt = Date.now();
  // Start no new work in the last 20% of the Bot's timeout (at least 2 s).
  const nearDeadline = (): boolean => Date.now() >= startedAt + config.timeoutMs - Math.max(2000, config.timeoutMs * 0.2);
  if (isSweepInput(event.input)) {
    return sweep(medplum, config, nearDeadline, log);
  }
  return onMessage(medplum, event.input, config, nearDeadline, log);
}

/**
 * Whether the input starts a sweep: the Bot resource (what the server passes on a cron run), or
 * nothing (`Bot/{id}/$execute` with an empty body).
 * @param input - `event.input`.
 * @returns True for a sweep.
 */
export function isSweepInput(input: unknown): boolean {
  if (input === undefined || input === null || input === '') {
    return true;
  }
  return typeof input === 'object' && (Object.keys(input).length === 0 || (input as Resource).resourceType === 'Bot');
}
