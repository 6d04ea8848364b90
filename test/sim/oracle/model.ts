// The oracle's view of the clinic's rules: who is available when, which response rule a thread
// falls under, and when its silence crosses the rule's threshold. From the clinic's own settings,
// with the oracle's own clock arithmetic (hours.ts).
import type { Clinic, Priority, Provider, Rule } from '../clinic';
import { CATEGORY_SYSTEM, PRIORITIES } from '../clinic';
import { absenceAt, clockHours, crossing, onShift } from './hours';
import type { ThreadRecord } from './record';

export class ClinicModel {
  private readonly providers: Map<string, Provider>;

  constructor(readonly clinic: Clinic) {
    this.providers = new Map(clinic.providers.map((p) => [p.ref, p]));
  }

  isProvider(ref: string | undefined): ref is string {
    return !!ref && this.providers.has(ref);
  }

  /**
   * Whether a provider is available at an instant, by the absences recorded by `knownAt`.
   * @param ref - Provider reference.
   * @param instant - Epoch ms.
   * @param knownAt - Absences recorded after this do not count.
   * @returns True when on shift and not absent.
   */
  available(ref: string, instant: number, knownAt: number): boolean {
    const p = this.providers.get(ref);
    return !!p && onShift(p.zone, p.rules, instant) && !absenceAt(p.absences, instant, knownAt);
  }

  /** Whether a recorded absence (busy-unavailable Slot) covers the instant. */
  absent(ref: string, instant: number, knownAt: number): boolean {
    const p = this.providers.get(ref);
    return !!p && !!absenceAt(p.absences, instant, knownAt);
  }

  /** The rule a thread falls under: the first of STALE_RULES it matches, else the defaults. */
  rule(thread: ThreadRecord): Required<Pick<Rule, 'afterHours' | 'escalateAfterHours' | 'reminderPriority'>> {
    const category = `${CATEGORY_SYSTEM}|${thread.category}`;
    const match = this.clinic.rules.find(
      (r) => (r.category === undefined || r.category === category) && (r.priority === undefined || r.priority === thread.priority)
    );
    return {
      afterHours: match?.afterHours ?? this.clinic.defaultAfterHours,
      escalateAfterHours: match?.escalateAfterHours ?? this.clinic.defaultEscalateHours,
      reminderPriority: match?.reminderPriority ?? 'urgent',
    };
  }

  /** When a silence that began at `from` crosses the thread's threshold (business hours where set). */
  crossing(thread: ThreadRecord, from: number): number {
    return crossing(this.clinic.businessHours, from, this.rule(thread).afterHours);
  }

  /** The highest priority a reminder may have reached by `at`: its start plus one step per period. */
  dueLevel(thread: ThreadRecord, authoredOn: number, at: number): number {
    const rule = this.rule(thread);
    const periods = Math.floor(clockHours(this.clinic.businessHours, authoredOn, at) / rule.escalateAfterHours);
    return Math.min(PRIORITIES.indexOf(rule.reminderPriority) + periods, PRIORITIES.length - 1);
  }
}

/** A priority's place on the ladder (routine 0 … stat 3). */
export function level(priority: string | undefined): number {
  return PRIORITIES.indexOf((priority ?? 'routine') as Priority);
}
