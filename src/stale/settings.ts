// The stale bot's settings, read from Bot secrets.
import type { BotEvent } from '@medplum/core';
import { readJsonSecret, readNumberSecret, readStringSecret } from '../lib/bot-runtime';
import type { BotLog } from '../lib/bot-runtime';
import { businessClock, parseBusinessHours, parseHourOfDay, WALL_CLOCK } from '../lib/business-hours';
import type { Clock } from '../lib/business-hours';
import { parseResponseRules } from '../lib/response-rules';
import type { ResponseRule } from '../lib/response-rules';

/** Settings, from Bot secrets. */
export interface StaleConfig {
  /** STALE_RULES, first match wins. */
  rules: ResponseRule[];
  /** STALE_AFTER_HOURS / ESCALATE_AFTER_HOURS: for threads no rule matches. */
  defaultRule: ResponseRule;
  /** BUSINESS_HOURS when set, else every hour counts. */
  clock: Clock;
  /** STALE_LOOKBACK_HOURS: wall hours back from a run in which a threshold crossed still counts, for missed runs. */
  lookbackHours: number;
  /** STALE_FULL_RECONCILE_HOUR: the UTC hour whose cron run starts the daily full reconcile. */
  fullReconcileHour: number;
}

/**
 * Reads the bot's settings; malformed rules or hours are logged once and the defaults used.
 * @param event - The bot event.
 * @param log - Logger.
 * @returns The settings.
 */
export function readStaleConfig(event: BotEvent, log: BotLog): StaleConfig {
  const afterHours = readNumberSecret(event, 'STALE_AFTER_HOURS', 72, log);
  const escalateAfterHours = readNumberSecret(event, 'ESCALATE_AFTER_HOURS', 24, log);
  const defaultRule: ResponseRule = { index: 0, afterHours, escalateAfterHours, reminderPriority: 'urgent' };
  const rules = readJsonSecret(event, 'STALE_RULES', (v) => parseResponseRules(v, { escalateAfterHours }), log);
  const hours = readJsonSecret(event, 'BUSINESS_HOURS', parseBusinessHours, log);
  const hour = readStringSecret(event, 'STALE_FULL_RECONCILE_HOUR', parseHourOfDay, log)?.hour ?? 3;
  return {
    rules: rules && 'rules' in rules ? rules.rules : [],
    defaultRule,
    clock: hours && 'hours' in hours ? businessClock(hours.hours) : WALL_CLOCK,
    lookbackHours: readNumberSecret(event, 'STALE_LOOKBACK_HOURS', 24, log),
    fullReconcileHour: hour,
  };
}
