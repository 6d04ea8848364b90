// The scale test's clinic (test/e2e/scale.ts) is what its report says it is: the kinds in their
// shares, long threads on every kind, and each kind's messages placed where the bots must see them.
import { describe, expect, it } from 'vitest';
import { kindOf, longIndices, threadSpec } from './scale';
import type { Kind } from './scale';

const HOUR = 3_600_000;

describe('scale test clinic', () => {
  it('has the same shares per hundred threads at any size', () => {
    for (const threads of [2000, 20000]) {
      const counts = new Map<Kind, number>();
      for (let i = 0; i < threads; i++) {
        counts.set(kindOf(i), (counts.get(kindOf(i)) ?? 0) + 1);
      }
      const per100 = Object.fromEntries([...counts].map(([k, n]) => [k, (n * 100) / threads]));
      expect(per100).toEqual({ 'away-waiting': 1, 'away-answered': 1, 'present-waiting': 4, 'present-answered': 4, due: 1, 'stale-old': 1, reminded: 5, idle: 83 });
    }
  });

  it('spreads the long threads evenly, over every kind at 20,000', () => {
    const long = [...longIndices(20000, 100)];
    expect(long).toHaveLength(100);
    expect(new Set(long.map((i) => Math.floor(i / 200))).size).toBe(100);
    expect(new Set(long.map(kindOf))).toEqual(new Set(['away-waiting', 'away-answered', 'present-waiting', 'present-answered', 'due', 'stale-old', 'reminded', 'idle']));
  });

  it('puts each kind where the bots must find it, long or not', () => {
    for (let i = 0; i < 400; i++) {
      for (const long of [undefined, 500]) {
        const kind = kindOf(i);
        const spec = threadSpec(i, kind, long, 3);
        expect(spec.messages).toHaveLength(long ?? spec.messages.length);
        // Oldest first, no two at one instant.
        spec.messages.slice(1).forEach((m, k) => expect(m.age).toBeLessThan(spec.messages[k].age));
        const last = spec.messages[spec.messages.length - 1];
        if (['away-answered', 'present-answered', 'idle'].includes(kind)) {
          expect(last.role).toBe('care');
          expect(spec.firstUnanswered).toBeUndefined();
          continue;
        }
        const first = spec.messages[spec.firstUnanswered as number];
        expect(first.role).toBe('patient');
        expect(spec.messages[spec.lastCare as number].role).toBe('care');
        expect(spec.lastCare).toBe((spec.firstUnanswered as number) - 1);
        expect(spec.messages.slice(spec.firstUnanswered).every((m) => m.role === 'patient')).toBe(true);
        // The waiting clock: hours ago the first unanswered message was sent.
        const hours = first.age / HOUR;
        const range = { 'away-waiting': [2, 3], 'present-waiting': [2, 3], due: [73, 74], 'stale-old': [240, 241], reminded: [120, 121] }[kind as string] as number[];
        expect(hours).toBeGreaterThanOrEqual(range[0]);
        expect(hours).toBeLessThan(range[1]);
      }
    }
  });
});
