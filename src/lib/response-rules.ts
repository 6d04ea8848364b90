// The clinic's response rules: how long a thread may wait, by category and urgency. Pure: no I/O.
//
// `STALE_RULES` (a Bot secret) is a JSON array, first match wins:
//   [{ "category": "http://example.org/thread-category|billing", "afterHours": 48 },
//    { "priority": "urgent", "afterHours": 4, "escalateAfterHours": 2, "reminderPriority": "asap" }]
// `category` matches any coding of the thread header's Communication.category; `priority` the
// header's Communication.priority (absent counts as routine). A thread matching no rule uses
// `STALE_AFTER_HOURS` / `ESCALATE_AFTER_HOURS`, and its reminder starts urgent.
import type { Communication } from '@medplum/fhirtypes';

export const PRIORITIES = ['routine', 'urgent', 'asap', 'stat'] as const;
export type Priority = (typeof PRIORITIES)[number];
const REMINDER_PRIORITIES: Priority[] = ['urgent', 'asap', 'stat'];
const RULE_KEYS = ['category', 'priority', 'afterHours', 'escalateAfterHours', 'reminderPriority'];

/** One rule, with the thresholds it sets. */
export interface ResponseRule {
  /** 1-based position in STALE_RULES; 0 for the default rule. */
  index: number;
  category?: string;
  priority?: Priority;
  afterHours: number;
  escalateAfterHours: number;
  reminderPriority: Priority;
}

/** What a rule is matched against. */
export interface ThreadKind {
  /** `system|code` of every coding of the header's category. */
  categories: string[];
  priority: Priority;
}

/**
 * Parses and checks STALE_RULES.
 * @param value - The parsed JSON.
 * @param defaults - The thresholds a rule without `escalateAfterHours` takes it from.
 * @param defaults.escalateAfterHours - ESCALATE_AFTER_HOURS.
 * @returns The rules, or what is wrong (naming the rule and the field).
 */
export function parseResponseRules(value: unknown, defaults: { escalateAfterHours: number }): { rules: ResponseRule[] } | { error: string } {
  if (!Array.isArray(value)) {
    return { error: 'must be a JSON array of rules' };
  }
  const rules: ResponseRule[] = [];
  for (const [i, raw] of value.entries()) {
    const at = `rule ${i + 1}`;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
      return { error: `${at} is not an object` };
    }
    const rule = raw as Record<string, unknown>;
    const unknown = Object.keys(rule).filter((k) => !RULE_KEYS.includes(k));
    if (unknown.length) {
      return { error: `${at}: unknown key(s) ${unknown.join(', ')} (allowed: ${RULE_KEYS.join(', ')})` };
    }
    if (rule.category !== undefined && (typeof rule.category !== 'string' || !/^[^|]+\|[^|]+$/.test(rule.category))) {
      return { error: `${at}: category must be "system|code"` };
    }
    if (rule.priority !== undefined && !PRIORITIES.includes(rule.priority as Priority)) {
      return { error: `${at}: priority must be one of ${PRIORITIES.join(', ')}` };
    }
    for (const key of ['afterHours', 'escalateAfterHours']) {
      if ((key === 'afterHours' || rule[key] !== undefined) && !(typeof rule[key] === 'number' && rule[key] > 0 && Number.isFinite(rule[key]))) {
        return { error: `${at}: ${key} must be a positive number of hours` };
      }
    }
    if (rule.reminderPriority !== undefined && !REMINDER_PRIORITIES.includes(rule.reminderPriority as Priority)) {
      return { error: `${at}: reminderPriority must be one of ${REMINDER_PRIORITIES.join(', ')}` };
    }
    rules.push({
      index: i + 1,
      category: rule.category as string | undefined,
      priority: rule.priority as Priority | undefined,
      afterHours: rule.afterHours as number,
      escalateAfterHours: (rule.escalateAfterHours as number | undefined) ?? defaults.escalateAfterHours,
      reminderPriority: (rule.reminderPriority as Priority | undefined) ?? 'urgent',
    });
  }
  return { rules };
}

/**
 * The kind of a thread, from its header.
 * @param header - The thread header (category and priority are enough).
 * @returns Its categories and priority.
 */
export function threadKind(header: Pick<Communication, 'category' | 'priority'>): ThreadKind {
  return {
    categories: (header.category ?? []).flatMap((c) => (c.coding ?? []).map((coding) => `${coding.system}|${coding.code}`)),
    priority: header.priority ?? 'routine',
  };
}

/**
 * The first rule a thread matches, or the default.
 * @param rules - STALE_RULES, parsed.
 * @param kind - The thread's kind.
 * @param fallback - The default rule (from STALE_AFTER_HOURS / ESCALATE_AFTER_HOURS).
 * @returns The rule that applies.
 */
export function matchRule(rules: ResponseRule[], kind: ThreadKind, fallback: ResponseRule): ResponseRule {
  return (
    rules.find(
      (r) => (r.category === undefined || kind.categories.includes(r.category)) && (r.priority === undefined || r.priority === kind.priority)
    ) ?? fallback
  );
}

/**
 * A rule in words, for a reminder's description and the setup plan.
 * @param rule - The rule.
 * @param clock - `business` or `wall`.
 * @returns E.g. `rule 2 (category http://x|billing, priority urgent): after 4 business hours, escalate every 2`.
 */
export function describeRule(rule: ResponseRule, clock: 'wall' | 'business'): string {
  const match = [rule.category && `category ${rule.category}`, rule.priority && `priority ${rule.priority}`].filter(Boolean).join(', ');
  const name = rule.index ? `rule ${rule.index}${match ? ` (${match})` : ' (any thread)'}` : 'default rule';
  const unit = clock === 'business' ? 'business hours' : 'hours';
  return `${name}: after ${rule.afterHours} ${unit}, escalate every ${rule.escalateAfterHours}, reminder ${rule.reminderPriority}`;
}
