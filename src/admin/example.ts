// `npm run example -- [--yes] [--remove]`: the README's example clinic (examples/*.json) in the
// Project, to watch the bots work: Dr Ada is on vacation, her patient writes, her response Task goes
// to the team pool within seconds.
//
// The files carry readable ids (`pat`, `dr-ada`) and refer to each other by them; a server makes its
// own ids. So each resource is created in order (what it points at first, the message last), its
// references rewritten to the ids the server gave, every date moved so that the patient writes now,
// and each one tagged `urn:medplum-messaging-bots|example`. `--remove` deletes what carries that tag,
// and the Tasks the bots made on the example's thread (a lifecycle Task, a reminder). Without `--yes`
// nothing is written: the plan is printed.
import type { MedplumClient } from '@medplum/core';
import type { Resource, Task } from '@medplum/fhirtypes';
import { MANAGED_TAG_SYSTEM } from './project-setup';

/** The files, in creation order: what a resource points at exists before it; the message last. */
export const EXAMPLE_FILES = ['patient', 'practitioner', 'schedule', 'vacation-slot', 'thread-header', 'response-task', 'message'] as const;
export type ExampleName = (typeof EXAMPLE_FILES)[number];
/** When the example's patient wrote (the message's `sent`): every date moves by now minus this. */
export const EXAMPLE_WRITTEN = Date.parse('2026-12-22T15:04:00Z');
/** The tag of what `npm run example` creates. */
export const EXAMPLE_TAG = { system: MANAGED_TAG_SYSTEM, code: 'example' };
/** The resource types the example creates, in the order `--remove` deletes them (the message first). */
const REMOVE_ORDER = ['Communication', 'Task', 'Slot', 'Schedule', 'Practitioner', 'Patient'] as const;

/**
 * A resource of the example as it will be created: its file id is dropped, its dates moved, its
 * references to earlier files left as `Type/<file id>` until those exist.
 * @param resource - The file's resource.
 * @param shiftMs - Milliseconds added to every date-time.
 * @returns The resource to create (tagged), and its file id.
 */
export function prepare(resource: Resource, shiftMs: number): { fileId?: string; resource: Resource } {
  const { id, ...rest } = resource;
  const text = JSON.stringify(rest).replace(/"(\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d))"/g, (_m, iso: string) => `"${new Date(Date.parse(iso) + shiftMs).toISOString()}"`);
  const moved = JSON.parse(text) as Resource;
  return { fileId: id, resource: { ...moved, meta: { ...moved.meta, tag: [...(moved.meta?.tag ?? []), EXAMPLE_TAG] } } };
}

/**
 * Points references to the example's other files at the ids the server gave them.
 * @param resource - The prepared resource.
 * @param ids - `Type/<file id>` -> `Type/<server id>`.
 * @returns The resource with its references rewritten.
 */
export function rewriteReferences<T extends Resource>(resource: T, ids: Map<string, string>): T {
  return JSON.parse(JSON.stringify(resource).replace(/"reference":"(\w+\/[\w.-]+)"/g, (m, ref: string) => (ids.has(ref) ? `"reference":"${ids.get(ref)}"` : m))) as T;
}

/**
 * The Medplum App of a server (as sla-export's appUrlOf, which the admin commands do not import: it
 * would load the report's chart libraries): app.medplum.com for the hosted API, else the same origin.
 * @param baseUrl - MEDPLUM_BASE_URL.
 * @returns The App's URL.
 */
export function appOf(baseUrl: string): string {
  const url = new URL(baseUrl);
  return url.hostname === 'api.medplum.com' ? 'https://app.medplum.com/' : `${url.origin}/`;
}

/** What `npm run example` did or would do. */
export interface ExampleResult {
  lines: string[];
  /** 0 done, 1 refused or failed. */
  code: number;
}

/** What the example needs besides the server. */
export interface ExampleIo {
  /** Reads examples/<name>.json. */
  readExample: (name: ExampleName) => Resource;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  out: (line: string) => void;
}

/**
 * Loads the example clinic (or, with `yes` false, says what it would load).
 * @param medplum - A client of the Project.
 * @param io - Files, clock and output.
 * @param options - yes: write; waitSeconds: how long to watch the Task after the message (0: not at all); appUrl: the Medplum App.
 * @param options.yes - Write (else a dry run).
 * @param options.waitSeconds - How long to watch the Task for the reroute.
 * @param options.appUrl - Where the Medplum App opens the Task.
 * @returns The exit code.
 */
export async function loadExample(medplum: MedplumClient, io: ExampleIo, options: { yes: boolean; waitSeconds: number; appUrl?: string }): Promise<number> {
  const loaded = await taggedResources(medplum);
  if (loaded.length) {
    io.out(`The example is already in this Project (${loaded.length} resources tagged ${EXAMPLE_TAG.system}|${EXAMPLE_TAG.code}): nothing loaded.`);
    io.out('Take it out first: npm run example -- --remove --yes');
    return 1;
  }
  const start = io.now();
  const shift = start - EXAMPLE_WRITTEN;
  if (!options.yes) {
    io.out(`Dry run: nothing written. With --yes, creates in this order (dates moved ${Math.abs(shift / 86_400_000).toFixed(1)} days ${shift < 0 ? 'earlier' : 'later'}, so the patient writes now):`);
    for (const name of EXAMPLE_FILES) {
      io.out(`  ${describe(name, prepare(io.readExample(name), shift).resource)}`);
    }
    io.out('Each is tagged urn:medplum-messaging-bots|example; npm run example -- --remove --yes takes them out again.');
    return 0;
  }
  const ids = new Map<string, string>();
  const made = {} as Record<ExampleName, Resource & { id: string }>;
  for (const name of EXAMPLE_FILES) {
    const { fileId, resource } = prepare(io.readExample(name), shift);
    const toCreate = rewriteReferences(resource, ids);
    if (toCreate.resourceType === 'Communication' && toCreate.partOf && toCreate.sent) {
      // The message is sent when it is created, after the Task: a Task a person made after the
      // patient wrote is a choice the bot keeps.
      toCreate.sent = new Date(Math.max(Date.parse(toCreate.sent), io.now())).toISOString();
    }
    const created = (await medplum.createResource(toCreate)) as Resource & { id: string };
    ids.set(`${created.resourceType}/${fileId}`, `${created.resourceType}/${created.id}`);
    made[name] = created;
    io.out(`created ${created.resourceType}/${created.id}: ${describe(name, created)}`);
  }
  const task = made['response-task'];
  const app = (options.appUrl ?? 'https://app.medplum.com/').replace(/\/?$/, '/');
  io.out('');
  io.out('What to watch:');
  io.out(`  Task/${task.id} (${app}Task/${task.id}): within seconds its owner goes (the team pool) and a note says`);
  io.out('    "Returned to the team pool: Dr Ada Able is away (vacation or leave on their schedule)."');
  io.out('  npm run status: ooo-reroute\'s last run says "event: rerouted 1".');
  io.out('  Take the example out again: npm run example -- --remove --yes');
  if (options.waitSeconds > 0) {
    const sent = Date.parse((made.message as { sent?: string }).sent ?? '') || io.now();
    for (let waited = 0; waited < options.waitSeconds * 1000; waited += 500) {
      const now = await medplum.readResource('Task', task.id, { cache: 'no-cache' });
      if (!now.owner) {
        io.out(`Rerouted ${((Date.parse(now.meta?.lastUpdated ?? '') - sent) / 1000).toFixed(1)} s after the message: ${now.note?.at(-1)?.text ?? '(no note)'}`);
        return 0;
      }
      await io.sleep(500);
    }
    io.out(`Not rerouted after ${options.waitSeconds} s: run npm run status (is ooo-reroute deployed, its Subscription active, its membership there?).`);
    return 1;
  }
  return 0;
}

/**
 * Takes the example out: every resource tagged as the example's, and the Tasks the bots made on its
 * thread (a lifecycle Task, a reminder). Nothing else.
 * @param medplum - A client of the Project.
 * @param io - Output.
 * @param options - yes: delete (else a dry run).
 * @param options.yes - Delete.
 * @returns The exit code.
 */
export async function removeExample(medplum: MedplumClient, io: Pick<ExampleIo, 'out'>, options: { yes: boolean }): Promise<number> {
  const tagged = await taggedResources(medplum);
  const threads = tagged.filter((r) => r.resourceType === 'Communication' && !r.partOf?.length).map((r) => `Communication/${r.id}`);
  const botTasks = threads.length
    ? (await medplum.searchResources('Task', { focus: threads.join(','), _count: '1000' }, { cache: 'no-cache' })).filter((t) => !tagged.some((r) => r.id === t.id))
    : [];
  const all = [...tagged, ...botTasks].sort((a, b) => REMOVE_ORDER.indexOf(a.resourceType as never) - REMOVE_ORDER.indexOf(b.resourceType as never));
  if (!all.length) {
    io.out('No example in this Project: nothing to remove.');
    return 0;
  }
  const list = all.map((r) => `${r.resourceType}/${r.id}`);
  if (!options.yes) {
    io.out(`Dry run: nothing deleted. With --yes, deletes ${all.length} resources: ${list.join(', ')}`);
    if (botTasks.length) {
      io.out(`(${botTasks.length} of them Tasks the bots made on the example's thread)`);
    }
    return 0;
  }
  for (const r of all) {
    await medplum.deleteResource(r.resourceType, r.id as string);
  }
  io.out(`Deleted ${all.length} resources: ${list.join(', ')}`);
  return 0;
}

async function taggedResources(medplum: MedplumClient): Promise<(Resource & { partOf?: unknown[] })[]> {
  const tag = `${EXAMPLE_TAG.system}|${EXAMPLE_TAG.code}`;
  const found: Resource[] = [];
  for (const type of REMOVE_ORDER) {
    found.push(...(await medplum.searchResources(type, { _tag: tag, _count: '1000' }, { cache: 'no-cache' })));
  }
  return found as (Resource & { partOf?: unknown[] })[];
}

function describe(name: ExampleName, r: Resource): string {
  switch (name) {
    case 'patient':
      return 'Patient Sam Sample';
    case 'practitioner':
      return 'Practitioner Dr Ada Able (time zone America/New_York)';
    case 'schedule':
      return "Schedule: Dr Ada's working hours";
    case 'vacation-slot':
      return `Slot busy-unavailable: her vacation, ${(r as { start?: string }).start?.slice(0, 16)} to ${(r as { end?: string }).end?.slice(0, 16)} UTC`;
    case 'thread-header':
      return 'Communication: the thread (header) between Sam and Dr Ada';
    case 'response-task':
      return `Task: the response Task, owner Dr Ada${(r as Task).owner?.reference ? ` (${(r as Task).owner?.reference})` : ''}`;
    default:
      return "Communication: Sam's message in the thread, sent now (created last: it runs the OOO bot)";
  }
}
