// The real-time bot's settings, from Bot secrets, each validated with a safe default.
import type { BotEvent } from '@medplum/core';
import type { BotLog } from '../lib/bot-runtime';
import { readJsonSecret, readListSecret, readNumberSecret, readStringSecret } from '../lib/bot-runtime';
import { DEFAULT_RESPONSE_CODE, parseCoding } from '../lib/response-lifecycle';
import type { LifecycleConfig } from '../lib/response-lifecycle';
import { isReroutableOwner } from '../lib/reroute-plan';

export const DEFAULT_TIMEOUT_SECONDS = 10;

/** Settings, from Bot secrets. */
export interface RerouteConfig {
  coverage: Record<string, string>;
  serviceTypes: string[];
  timeoutMs: number;
  /** The response-Task lifecycle (RESPONSE_TASKS, RESPONSE_TASK_CODE, RESPONSE_POOL). */
  lifecycle: LifecycleConfig;
}

/**
 * Checks a `RESPONSE_TASKS` value.
 * @param value - The secret's value.
 * @returns Whether the lifecycle is on, or what is wrong.
 */
export function parseOnOff(value: string): { on: boolean } | { error: string } {
  const v = value.trim().toLowerCase();
  return v === 'on' || v === 'off' ? { on: v === 'on' } : { error: 'must be on or off' };
}

/**
 * Checks an `OOO_COVERAGE` value: a JSON object from a Practitioner or PractitionerRole reference
 * to another one.
 * @param value - The parsed JSON.
 * @returns The coverage, or what is wrong.
 */
export function parseCoverage(value: unknown): { coverage: Record<string, string> } | { error: string } {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    return { error: 'must be a JSON object like {"Practitioner/a": "Practitioner/b"}' };
  }
  const coverage: Record<string, string> = {};
  for (const [owner, cover] of Object.entries(value)) {
    if (!isReroutableOwner(owner) || typeof cover !== 'string' || !isReroutableOwner(cover) || cover === owner) {
      return { error: `entry "${owner}" must map a Practitioner or PractitionerRole reference to another one` };
    }
    coverage[owner] = cover;
  }
  return { coverage };
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
    timeoutMs: readNumberSecret(event, 'BOT_TIMEOUT_SECONDS', DEFAULT_TIMEOUT_SECONDS, log) * 1000,
    lifecycle: {
      enabled: readStringSecret(event, 'RESPONSE_TASKS', parseOnOff, log)?.on ?? false,
      code: readStringSecret(event, 'RESPONSE_TASK_CODE', parseCoding, log)?.coding ?? DEFAULT_RESPONSE_CODE,
      pool: readStringSecret(event, 'RESPONSE_POOL', parseCoding, log)?.coding,
    },
  };
}
