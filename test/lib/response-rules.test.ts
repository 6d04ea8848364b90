import { describe, expect, test } from 'vitest';
import { describeRule, matchRule, parseResponseRules, threadKind } from '../../src/lib/response-rules';
import type { ResponseRule } from '../../src/lib/response-rules';

const BILLING = 'http://example.org/thread-category|billing';
const fallback: ResponseRule = { index: 0, afterHours: 72, escalateAfterHours: 24, reminderPriority: 'urgent' };

function rules(value: unknown): ResponseRule[] {
  const parsed = parseResponseRules(value, { escalateAfterHours: 24 });
  if ('error' in parsed) {
    throw new Error(parsed.error);
  }
  return parsed.rules;
}

describe('STALE_RULES', () => {
  const parsed = rules([
    { category: BILLING, afterHours: 48 },
    { priority: 'urgent', afterHours: 4, escalateAfterHours: 2, reminderPriority: 'asap' },
    { category: BILLING, priority: 'stat', afterHours: 1 },
  ]);

  test('first match wins; category matches any coding; absent priority is routine', () => {
    const billingUrgent = threadKind({ category: [{ coding: [{ system: 'x', code: 'y' }, { system: 'http://example.org/thread-category', code: 'billing' }] }], priority: 'urgent' });
    expect(matchRule(parsed, billingUrgent, fallback).index).toBe(1);
    expect(matchRule(parsed, threadKind({ priority: 'urgent' }), fallback).index).toBe(2);
    expect(matchRule(parsed, threadKind({}), fallback)).toBe(fallback);
    expect(threadKind({}).priority).toBe('routine');
    expect(threadKind({ category: [{ text: 'billing' }, { coding: [{ system: 's', code: 'c' }] }] }).categories).toEqual(['s|c']);
    expect(threadKind({}).categories).toEqual([]);
    expect(rules([{ reminderPriority: 'stat', afterHours: 1 }, { reminderPriority: 'asap', afterHours: 1 }]).map((r) => r.reminderPriority)).toEqual(['stat', 'asap']);
    expect(matchRule(rules([{ priority: 'routine', afterHours: 8 }]), threadKind({}), fallback).index).toBe(1);
  });

  test('defaults: escalation from ESCALATE_AFTER_HOURS, reminders start urgent', () => {
    expect(parsed[0]).toEqual({ index: 1, category: BILLING, priority: undefined, afterHours: 48, escalateAfterHours: 24, reminderPriority: 'urgent' });
    expect(parsed[1]).toMatchObject({ escalateAfterHours: 2, reminderPriority: 'asap' });
  });

  test('a rule in words names what it matched and its thresholds', () => {
    expect(describeRule(parsed[1], 'business')).toBe('rule 2 (priority urgent): after 4 business hours, escalate every 2, reminder asap');
    expect(describeRule(parsed[0], 'wall')).toBe(`rule 1 (category ${BILLING}): after 48 hours, escalate every 24, reminder urgent`);
    expect(describeRule(fallback, 'wall')).toBe('default rule: after 72 hours, escalate every 24, reminder urgent');
    expect(describeRule(rules([{ afterHours: 5 }])[0], 'wall')).toBe('rule 1 (any thread): after 5 hours, escalate every 24, reminder urgent');
  });

  test.each<[string, unknown, string]>([
    ['not an array', { afterHours: 4 }, 'must be a JSON array'],
    ['a rule that is not an object', [4], 'rule 1 is not an object'],
    ['an unknown key', [{ afterHours: 4, after: 3 }], 'rule 1: unknown key(s) after'],
    ['a category without system', [{ category: 'billing', afterHours: 4 }], 'rule 1: category must be "system|code"'],
    ['an unknown priority', [{ priority: 'high', afterHours: 4 }], 'rule 1: priority must be one of routine, urgent, asap, stat'],
    ['no afterHours', [{ afterHours: 4 }, { priority: 'stat' }], 'rule 2: afterHours must be a positive number'],
    ['afterHours as text', [{ afterHours: '4' }], 'afterHours must be a positive number'],
    ['a negative escalation', [{ afterHours: 4, escalateAfterHours: -1 }], 'escalateAfterHours must be a positive number'],
    ['a routine reminder', [{ afterHours: 4, reminderPriority: 'routine' }], 'reminderPriority must be one of urgent, asap, stat'],
    ['a category with two bars', [{ category: 'http://x|billing|2', afterHours: 4 }], 'rule 1: category must be "system|code"'],
    ['a category without code', [{ category: 'http://x|', afterHours: 4 }], 'rule 1: category must be "system|code"'],
    ['a category without system', [{ category: '|billing', afterHours: 4 }], 'rule 1: category must be "system|code"'],
    ['a category that is not text', [{ category: 4, afterHours: 4 }], 'rule 1: category must be "system|code"'],
    ['two unknown keys', [{ afterHours: 4, after: 3, before: 2 }], 'rule 1: unknown key(s) after, before (allowed: category, priority, afterHours, escalateAfterHours, reminderPriority)'],
    ['escalation as text', [{ afterHours: 4, escalateAfterHours: '2' }], 'rule 1: escalateAfterHours must be a positive number of hours'],
    ['a routine reminder, in full', [{ afterHours: 4, reminderPriority: 'routine' }], 'rule 1: reminderPriority must be one of urgent, asap, stat'],
  ])('says what is wrong: %s', (_name, value, message) => {
    const parsed = parseResponseRules(value, { escalateAfterHours: 24 });
    expect('error' in parsed && parsed.error).toContain(message);
  });
});
