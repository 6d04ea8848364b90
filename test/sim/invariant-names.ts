// The seven invariants, in the words the issue (#28) and docs/testing.md use.
export const INVARIANTS: Record<number, string> = {
  1: 'a waiting patient\'s response Task is with someone available',
  2: 'the end of a shift hands nothing off',
  3: 'the bots never undo a person',
  4: 'reminders',
  5: 'response Task lifecycle',
  6: 'runs: none fails, deferred work is finished, nothing throttled',
  7: 'cost within the published bounds',
};
