// The real-time bot's settings, from Bot secrets, each validated with a safe default.
import type { BotEvent } from '@medplum/core';
import { checkCron } from '../lib/cron';
import type { BotLog } from '../lib/bot-runtime';
import { readJsonSecret, readListSecret, readStringSecret, runTimeoutMs } from '../lib/bot-runtime';
import { DEFAULT_RESPONSE_CODE, parseCoding, parseOnOff } from '../lib/response-lifecycle';
import type { LifecycleConfig } from '../lib/response-lifecycle';
import { parseCoverage } from '../lib/reroute-plan';

/** Settings, from Bot secrets. */
export interface RerouteConfig {
  coverage: Record<string, string>;
  serviceTypes: string[];
  timeoutMs: number;
  /** The response-Task lifecycle (RESPONSE_TASKS, RESPONSE_TASK_CODE, RESPONSE_POOL). */
  lifecycle: LifecycleConfig;
  /** The sweep's schedule (the cronString a cron run passes, else OOO_SWEEP_CRON): the sweep numbers its runs by it. */
  sweepCron?: string;
}


/**
 * Reads the settings. A malformed secret is logged once and its default used.
 * @param event - The bot event.
 * @param log - Logger.
 * @returns The settings.
 */
export function readRerouteConfig(event: BotEvent, log: BotLog): RerouteConfig {
  return {
    coverage: readJsonSecret(event, 'OOO_COVERAGE', parseCoverage, log)?.coverage ?? {},
    serviceTypes: readListSecret(event, 'OOO_SERVICE_TYPE'),
    timeoutMs: runTimeoutMs(event, log),
    lifecycle: {
      enabled: readStringSecret(event, 'RESPONSE_TASKS', parseOnOff, log)?.on ?? false,
      code: readStringSecret(event, 'RESPONSE_TASK_CODE', parseCoding, log)?.coding ?? DEFAULT_RESPONSE_CODE,
      pool: readStringSecret(event, 'RESPONSE_POOL', parseCoding, log)?.coding,
    },
    sweepCron: [(event.input as { cronString?: unknown } | undefined)?.cronString, event.secrets?.OOO_SWEEP_CRON?.valueString].find(
      (c): c is string => typeof c === 'string' && !('error' in checkCron(c))
    ),
  };
}
