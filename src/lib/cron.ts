// Cron expressions as the Medplum server takes them. The server registers a Bot's cron job only when
// `isValidCron(cronString)` (the cron-validator package, default options) accepts it, and then hands
// the string to BullMQ (cron-parser) in the server's clock (UTC on Medplum's hosted service). A
// string the validator refuses is stored on the Bot and silently never runs. So `settings` refuses
// what the validator refuses, and `status` computes when a valid cron should have run.

/** One field of a 5-field cron expression. */
interface Field {
  name: string;
  min: number;
  max: number;
}

const FIELDS: Field[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day of week', min: 0, max: 6 },
];

const wholeNumber = (text: string): number => (/^\d+$/.test(text) ? Number(text) : NaN);

/**
 * Why one field is refused, the way cron-validator 1.4 (default options) decides: digits, `*`,
 * ranges `a-b`, lists `a,b` and steps `/n` (n > 0) only; no names (MON, JAN), no `?`, no `L`/`#`,
 * 0-6 for the day of the week.
 * @param text - The field.
 * @param field - Its bounds.
 * @returns The reason, or undefined when the server accepts it.
 */
function fieldProblem(text: string, field: Field): string | undefined {
  if (/[^\d\-,/*]/.test(text)) {
    return `${field.name} "${text}" has characters the server does not accept (only digits, *, -, , and /; no names such as MON or JAN, no ?)`;
  }
  for (const part of text.split(',')) {
    const pieces = part.split('/');
    if (part.endsWith('/') || pieces.length > 2) {
      return `${field.name} "${text}": a step is written /n once, after a value or range`;
    }
    const [range, step] = pieces;
    if (step !== undefined && !(wholeNumber(step) > 0)) {
      return `${field.name} "${text}": a step must be a whole number above 0`;
    }
    const sides = range.split('-');
    const inside = (n: number): boolean => n >= field.min && n <= field.max;
    const ok =
      sides.length === 1
        ? range === '*' || inside(wholeNumber(range))
        : sides.length === 2 && wholeNumber(sides[0]) <= wholeNumber(sides[1]) && inside(wholeNumber(sides[0])) && inside(wholeNumber(sides[1]));
    if (!ok) {
      return `${field.name} "${text}" must be * or within ${field.min}-${field.max}${field.name === 'day of week' ? ' (0 is Sunday; 7 is refused)' : ''}`;
    }
  }
  return undefined;
}

/**
 * Checks a cron expression as the Medplum server will before registering a Bot's cron job.
 * @param value - The expression.
 * @returns Its normalised text, or why the server would refuse it (and the Bot never run on schedule).
 */
export function checkCron(value: string): { cron: string } | { error: string } {
  const fields = value.trim().split(/\s+/);
  if (fields.length !== 5 || value.trim() === '') {
    return {
      error: `must be a cron expression of exactly 5 fields (minute hour day-of-month month day-of-week, in UTC), like */15 * * * *; ${
        fields.length === 6 ? 'a seconds field is refused by the server' : `it has ${value.trim() ? fields.length : 0}`
      } (the server would store it and never run the Bot on schedule)`,
    };
  }
  for (let i = 0; i < 5; i++) {
    const problem = fieldProblem(fields[i], FIELDS[i]);
    if (problem) {
      return { error: `${problem}; the server would store it and never run the Bot on schedule` };
    }
  }
  return { cron: fields.join(' ') };
}

/** A parsed cron: the values each field allows. */
export interface CronSchedule {
  text: string;
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  /** Whether day of month / day of week restrict (cron's rule: when both do, either matches). */
  daysRestricted: boolean;
  weekdaysRestricted: boolean;
}

function values(text: string, field: Field): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const [range, stepText] = part.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    let [from, to] = range === '*' ? [field.min, field.max] : range.split('-').map(Number);
    if (to === undefined) {
      to = stepText === undefined ? from : field.max;
    }
    for (let n = from; n <= to; n += step) {
      out.add(n);
    }
  }
  return out;
}

/**
 * Parses a cron expression the server accepts.
 * @param value - The expression.
 * @returns The schedule, or undefined when the server would refuse it.
 */
export function parseCron(value: string | undefined): CronSchedule | undefined {
  const checked = value === undefined ? undefined : checkCron(value);
  if (!checked || 'error' in checked) {
    return undefined;
  }
  const [m, h, dom, mon, dow] = checked.cron.split(' ');
  const days = values(dom, FIELDS[2]);
  const weekdays = values(dow, FIELDS[4]);
  return {
    text: checked.cron,
    minutes: values(m, FIELDS[0]),
    hours: values(h, FIELDS[1]),
    days,
    months: values(mon, FIELDS[3]),
    weekdays,
    daysRestricted: days.size < 31,
    weekdaysRestricted: weekdays.size < 7,
  };
}

/**
 * Whether a schedule fires at a minute (UTC).
 * @param cron - The schedule.
 * @param at - Epoch milliseconds (seconds ignored).
 * @returns True when the minute matches.
 */
export function firesAt(cron: CronSchedule, at: number): boolean {
  const d = new Date(at);
  if (!cron.minutes.has(d.getUTCMinutes()) || !cron.hours.has(d.getUTCHours()) || !cron.months.has(d.getUTCMonth() + 1)) {
    return false;
  }
  const dom = cron.days.has(d.getUTCDate());
  const dow = cron.weekdays.has(d.getUTCDay());
  return cron.daysRestricted && cron.weekdaysRestricted ? dom || dow : dom && dow;
}

const MINUTE = 60_000;

/**
 * The minutes a schedule fired at, newest first.
 * @param cron - The schedule.
 * @param before - Only ticks at or before this instant.
 * @param count - How many.
 * @param options - Which ticks count, and how far back to look (default 35 days).
 * @param options.where - Only ticks this accepts (e.g. those in the full-reconcile hour).
 * @param options.lookback - Milliseconds to look back at most.
 * @returns Epoch milliseconds of each tick.
 */
export function previousTicks(
  cron: CronSchedule,
  before: number,
  count: number,
  options: { where?: (tick: number) => boolean; lookback?: number } = {}
): number[] {
  const ticks: number[] = [];
  const stop = before - (options.lookback ?? 35 * 24 * 60 * MINUTE);
  for (let t = Math.floor(before / MINUTE) * MINUTE; t >= stop && ticks.length < count; t -= MINUTE) {
    if (firesAt(cron, t) && (options.where?.(t) ?? true)) {
      ticks.push(t);
    }
  }
  return ticks;
}
