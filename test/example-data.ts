// The README's example resources (examples/*.json), loaded by the harness test and by the
// integration test on a real server, so that what the README shows stays true. Paths are relative
// to the project root, where npm and vitest run.
import type { Resource } from '@medplum/fhirtypes';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** In creation order: what a resource points at exists before it. */
export const EXAMPLE_FILES = ['patient', 'practitioner', 'schedule', 'vacation-slot', 'thread-header', 'response-task', 'message'] as const;

/** When the example's patient wrote: every example date is relative to it. */
export const EXAMPLE_NOW = Date.parse('2026-12-22T15:04:00Z');

/**
 * Reads the examples.
 * @returns Each file's resource, by file name.
 */
export function readExamples(): Record<(typeof EXAMPLE_FILES)[number], Resource> {
  return Object.fromEntries(
    EXAMPLE_FILES.map((name) => [name, JSON.parse(readFileSync(resolve('examples', `${name}.json`), 'utf8')) as Resource])
  ) as Record<(typeof EXAMPLE_FILES)[number], Resource>;
}

/**
 * Creates the examples, in order, replacing their ids with the server's and moving every date by
 * `shiftMs` (to replay the story at another time).
 * @param create - Creates one resource and returns it with its id.
 * @param shiftMs - Milliseconds added to every date-time.
 * @returns The created resources, by file name.
 */
export async function createExamples(
  create: (resource: Resource) => Promise<Resource & { id: string }>,
  shiftMs = 0
): Promise<Record<(typeof EXAMPLE_FILES)[number], Resource & { id: string }>> {
  const examples = readExamples();
  const ids = new Map<string, string>();
  const created = {} as Record<(typeof EXAMPLE_FILES)[number], Resource & { id: string }>;
  for (const name of EXAMPLE_FILES) {
    const { id, ...rest } = examples[name];
    const text = JSON.stringify(rest)
      .replace(/"reference":"(\w+)\/([\w-]+)"/g, (m, type: string, ref: string) => (ids.has(`${type}/${ref}`) ? `"reference":"${type}/${ids.get(`${type}/${ref}`)}"` : m))
      .replace(/"(\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d))"/g, (_m, iso: string) => `"${new Date(Date.parse(iso) + shiftMs).toISOString()}"`);
    const parsed = JSON.parse(text) as Resource;
    if (parsed.resourceType === 'Communication' && parsed.partOf && parsed.sent) {
      // The message comes last and is sent no earlier than now: a Task changed after the patient
      // wrote is a person's choice the bot keeps, so the story needs the Task made before the message.
      parsed.sent = new Date(Math.max(Date.parse(parsed.sent), Date.now())).toISOString();
    }
    const resource = await create(parsed);
    ids.set(`${resource.resourceType}/${id}`, resource.id);
    created[name] = resource;
  }
  return created;
}
