// Who is available: the facts behind `availabilityAt`, read once per distinct owner and run, in a
// few batched searches (Schedules with their actors, then the absence blocks of those Schedules).
import { formatHumanName, getReferenceString } from '@medplum/core';
import type { MedplumClient, WithId } from '@medplum/core';
import type { HumanName, Resource, Schedule, Slot } from '@medplum/fhirtypes';
import { availabilityAt, fallbackEffect, isJudgedWithoutHours } from '../lib/availability';
import type { OwnerFacts } from '../lib/availability';
import type { BotLog } from '../lib/bot-runtime';
import { QUOTA_COST } from '../lib/quota';
import { guardOf, ReadStopped, searchGuarded } from '../lib/read-guard';
import type { Guard, ReadLimits } from '../lib/read-guard';
import { isReroutableOwner } from '../lib/reroute-plan';
import { declaredTimeZone, parseRuleSets } from '../lib/schedule-rules';
import type { Interval } from '../lib/schedule-rules';

/** Owners per Schedule search, and Schedules per Slot search (the references go in the URL). */
const PER_SEARCH = 50;


/** Facts per owner, kept for the run: each owner's Schedules and blocks are read once. */
export class OwnerDirectory {
  private readonly schedules = new Map<string, WithId<Schedule>[]>();
  private readonly actors = new Map<string, Resource>();
  private readonly blocks = new Map<string, { window: Interval; slots: WithId<Slot>[] }>();
  private readonly warned = new Set<string>();
  /** Facts built, per owner: `availabilityAt` asks for them per Task and instant. */
  private readonly built = new Map<string, OwnerFacts>();

  /**
   * Takes the owners and Schedules a Task search included (`_include=Task:owner`,
   * `_revinclude:iterate=Schedule:actor`): every Schedule of each included owner comes with it.
   * @param included - Included resources.
   */
  addIncluded(included: WithId<Resource>[]): void {
    const schedules = included.filter((r): r is WithId<Schedule> => r.resourceType === 'Schedule');
    for (const actor of included.filter((r) => isReroutableOwner(getReferenceString(r)))) {
      const ref = getReferenceString(actor);
      this.actors.set(ref, actor);
      this.schedules.set(ref, schedules.filter((s) => s.actor?.some((a) => a.reference === ref)));
      this.built.delete(ref);
    }
  }

  /**
   * Reads what is not known yet of some owners: their Schedules, then the absence blocks over a
   * window. Owners are read in the order given; those the quota or deadline leaves are returned.
   * @param medplum - The client.
   * @param owners - Owner references, most urgent first.
   * @param window - The instants that will be decided.
   * @param limits - The run's guard (asked before each search and page), or a deadline.
   * @returns The owners not read, and why.
   */
  async read(medplum: MedplumClient, owners: string[], window: Interval, limits: ReadLimits): Promise<{ notRead: string[]; why: 'quota' | 'deadline' }> {
    const guard = guardOf(limits);
    // Owners already known over the window (an event's retry, a sweep's later chunk) cost nothing.
    const wanted = [...new Set(owners.filter((o) => isReroutableOwner(o) && !this.knownOver(o, window)))];
    for (let i = 0; i < wanted.length; i += PER_SEARCH) {
      // Both searches of a chunk (Schedules, then blocks), or neither.
      const stop = guard.check(2 * QUOTA_COST.search);
      if (stop) {
        return { notRead: wanted.slice(i), why: stop };
      }
      const chunk = wanted.slice(i, i + PER_SEARCH);
      try {
        await this.readSchedules(medplum, chunk.filter((o) => !this.schedules.has(o)), guard);
        await this.readBlocks(medplum, chunk, window, guard);
      } catch (err) {
        if (!(err instanceof ReadStopped)) {
          throw err;
        }
        return { notRead: wanted.slice(i), why: err.why };
      }
    }
    return { notRead: [], why: 'quota' };
  }

  /**
   * The facts of an owner, when read.
   * @param owner - Owner reference.
   * @returns The facts, or undefined when not read.
   */
  facts(owner: string): OwnerFacts | undefined {
    const known = this.built.get(owner);
    if (known) {
      return known;
    }
    const schedules = this.schedules.get(owner);
    const blocks = this.blocks.get(owner);
    if (!schedules || !blocks) {
      return undefined;
    }
    const actor = this.actors.get(owner) as { extension?: []; name?: unknown } | undefined;
    const facts: OwnerFacts = {
      owner,
      timeZone: declaredTimeZone(actor),
      name: displayName(actor as Resource | undefined),
      schedules: schedules
        .filter((s) => s.active !== false)
        .map((s) => {
          const ref = getReferenceString(s);
          return {
            schedule: ref,
            rules: parseRuleSets(s),
            blocks: blocks.slots
              .filter((b) => b.schedule?.reference === ref)
              .map((b) => ({ slot: getReferenceString(b), start: Date.parse(b.start), end: Date.parse(b.end) })),
          };
        }),
    };
    this.built.set(owner, facts);
    return facts;
  }

  /**
   * Logs, once per owner and run, an owner whose working hours cannot be judged (no time zone, no
   * rules, an invalid zone, unreadable rules, no Schedule).
   * @param owners - Owners whose facts were read.
   * @param now - The decision instant.
   * @param serviceTypes - Which rule sets count.
   * @param log - Logger.
   */
  warnUnjudged(owners: string[], now: number, serviceTypes: string[], log: BotLog): void {
    for (const owner of owners) {
      const facts = this.facts(owner);
      const availability = availabilityAt(facts, now, serviceTypes);
      if (!facts || this.warned.has(owner) || !isJudgedWithoutHours(availability)) {
        continue;
      }
      this.warned.add(owner);
      log.warn(`${owner}: working hours cannot be judged (${availability.reason}); ${fallbackEffect(availability)}. npm run status lists such owners`);
    }
  }

  private async readSchedules(medplum: MedplumClient, owners: string[], guard: Guard): Promise<void> {
    if (!owners.length) {
      return;
    }
    const found = await searchGuarded(
      medplum,
      'Schedule',
      [
        ['actor', owners.join(',')],
        ['_include', 'Schedule:actor'],
      ],
      guard,
      'owner Schedule read'
    );
    for (const owner of owners) {
      this.built.delete(owner);
      this.schedules.set(owner, found.filter((r): r is WithId<Schedule> => r.resourceType === 'Schedule' && !!r.actor?.some((a) => a.reference === owner)));
      const actor = found.find((r) => getReferenceString(r) === owner);
      if (actor) {
        this.actors.set(owner, actor);
      }
    }
  }

  private knownOver(owner: string, window: Interval): boolean {
    const known = this.blocks.get(owner)?.window;
    return this.schedules.has(owner) && !!known && known.start <= window.start && known.end >= window.end;
  }

  private async readBlocks(medplum: MedplumClient, owners: string[], window: Interval, guard: Guard): Promise<void> {
    const pending = owners.filter((o) => !this.knownOver(o, window));
    const refs = [...new Set(pending.flatMap((o) => (this.schedules.get(o) ?? []).filter((s) => s.active !== false).map((s) => getReferenceString(s))))];
    const slots: WithId<Slot>[] = [];
    if (refs.length) {
      // Date search compares at the value's precision, so the exact overlap is checked here.
      const found = await searchGuarded(
        medplum,
        'Slot',
        [
          ['schedule', refs.join(',')],
          ['status', 'busy-unavailable'],
          ['start', `lt${new Date(window.end).toISOString()}`],
          ['end', `gt${new Date(window.start).toISOString()}`],
        ],
        guard,
        'owner absence read'
      );
      slots.push(
        ...found.filter(
          (r): r is WithId<Slot> =>
            r.resourceType === 'Slot' && r.status === 'busy-unavailable' && Date.parse(r.start) < window.end && Date.parse(r.end) > window.start
        )
      );
    }
    for (const owner of pending) {
      const mine = new Set((this.schedules.get(owner) ?? []).map((s) => getReferenceString(s)));
      this.blocks.set(owner, { window, slots: slots.filter((s) => mine.has(s.schedule?.reference ?? '')) });
      this.built.delete(owner);
    }
  }
}

/**
 * A person's name for a note a clinician reads: the resource's name, else the display of the
 * practitioner a PractitionerRole points at.
 * @param resource - Practitioner, PractitionerRole...
 * @returns The name, or undefined.
 */
export function displayName(resource: Resource | undefined): string | undefined {
  const r = resource as { name?: HumanName[]; practitioner?: { display?: string } } | undefined;
  return (r?.name?.[0] && formatHumanName(r.name[0])) || r?.practitioner?.display || undefined;
}
