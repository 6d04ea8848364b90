// `npm run example`: the README's example clinic loaded into a Project in one command, with server
// ids, references resolved and times moved to now; the reroute follows; --remove takes it out.
import type { Communication, Patient, Resource, Schedule, Slot, Task } from '@medplum/fhirtypes';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, test } from 'vitest';
import { EXAMPLE_FILES } from '../../src/admin/example';
import { handler } from '../../src/ooo-reroute';
import type { RerouteSummary } from '../../src/ooo-reroute';
import { botEvent } from '../harness/fixtures';
import { indexDefinitions } from '../harness/server-mock';
import { admin } from './admin-harness';
import type { Admin } from './admin-harness';

beforeAll(() => indexDefinitions(), 60_000); // the FHIR definitions, once, outside any test's time

const TAG = 'urn:medplum-messaging-bots|example';
const writes = (a: Admin): string[] => a.server.requests.filter((r) => r.method !== 'GET').map((r) => r.key);

function withExamples(): Admin {
  const a = admin();
  for (const name of EXAMPLE_FILES) {
    a.files.set(`examples/${name}.json`, readFileSync(`examples/${name}.json`, 'utf8'));
  }
  return a;
}

const tagged = async (a: Admin): Promise<Resource[]> =>
  (await Promise.all(['Patient', 'Practitioner', 'Schedule', 'Slot', 'Communication', 'Task'].map((t) => a.server.searchAll(t as 'Patient', `_tag=${TAG}`)))).flat();

describe('npm run example', () => {
  test('without --yes: the plan, nothing written', async () => {
    const a = withExamples();
    const { code, out } = await a.run('example');
    expect(code).toBe(0);
    expect(out).toContain('Dry run: nothing written. With --yes, creates in this order');
    expect(out).toContain("Communication: Sam's message in the thread, sent now (created last: it runs the OOO bot)");
    expect(writes(a)).toEqual([]);
  });

  test('--yes: server ids, references to each other resolved, the vacation around now, the message last and sent now; the reroute follows', async () => {
    const a = withExamples();
    const before = Date.now();
    const { code, out } = await a.run('example', '--yes', '--wait', '0');
    expect(code).toBe(0);
    const made = await tagged(a);
    expect(made).toHaveLength(7);
    const one = <T extends Resource>(type: T['resourceType'], pick: (r: T) => boolean = () => true): T => made.find((r) => r.resourceType === type && pick(r as T)) as T;
    const patient = one<Patient>('Patient');
    const doctor = one('Practitioner');
    const schedule = one<Schedule>('Schedule');
    const slot = one<Slot>('Slot');
    const thread = one<Communication>('Communication', (c) => !c.partOf);
    const message = one<Communication>('Communication', (c) => !!c.partOf);
    const task = one<Task>('Task');
    for (const r of made) {
      expect(r.id).not.toMatch(/^(pat|dr-ada|thread|message|response-task)/);
    }
    expect(schedule.actor).toEqual([{ reference: `Practitioner/${doctor.id}` }]);
    expect(slot.schedule).toEqual({ reference: `Schedule/${schedule.id}` });
    expect(thread.recipient).toEqual([{ reference: `Patient/${patient.id}` }, { reference: `Practitioner/${doctor.id}` }]);
    expect(task).toMatchObject({ focus: { reference: `Communication/${thread.id}` }, owner: { reference: `Practitioner/${doctor.id}` }, for: { reference: `Patient/${patient.id}` } });
    expect(message.partOf).toEqual([{ reference: `Communication/${thread.id}` }]);
    expect(Date.parse(slot.start as string)).toBeLessThan(before);
    expect(Date.parse(slot.end as string)).toBeGreaterThan(Date.now() + 7 * 86_400_000);
    expect(Date.parse(message.sent as string)).toBeGreaterThanOrEqual(Date.parse(task.authoredOn as string));
    expect(Math.abs(Date.parse(message.sent as string) - Date.now())).toBeLessThan(60_000);
    const order = a.server.requests.filter((r) => r.method === 'POST').map((r) => r.path);
    expect(order).toEqual(['Patient', 'Practitioner', 'Schedule', 'Slot', 'Communication', 'Task', 'Communication']);
    expect(out).toContain(`Task/${task.id} (https://app.medplum.com/Task/${task.id}): within seconds its owner goes (the team pool)`);
    expect(out).toContain('Take the example out again: npm run example -- --remove --yes');

    // What the Subscription does with the message: the README's reroute.
    const summary = (await handler(a.server.medplum, botEvent(message))) as RerouteSummary;
    expect(summary).toMatchObject({ outcome: 'done', rerouted: 1 });
    const after = await a.server.read<Task>('Task', task.id as string);
    expect(after.owner).toBeUndefined();
    expect(after.note?.[0].text).toBe('Returned to the team pool: Dr Ada Able is away (vacation or leave on their schedule).');

    // A second load is refused rather than making a second clinic.
    const again = await a.run('example', '--yes');
    expect(again.code).toBe(1);
    expect(again.out).toContain('The example is already in this Project (7 resources');
    expect(await tagged(a)).toHaveLength(7);
  });

  test('--wait: watches the Task and says when it was rerouted, or what to check when it was not', async () => {
    const a = withExamples();
    let sleeps = 0;
    a.server.beforeRequest = async (request) => {
      // The bot, as the Subscription runs it: once the message exists, on the second look at the Task.
      if (request.method === 'GET' && request.path.startsWith('Task/') && ++sleeps === 2) {
        a.server.beforeRequest = undefined;
        const [message] = (await a.server.searchAll<Communication>('Communication', `_tag=${TAG}`)).filter((c) => c.partOf);
        await handler(a.server.medplum, botEvent(message));
      }
    };
    const seen = await a.run('example', '--yes', '--wait', '5');
    expect(seen.code).toBe(0);
    expect(seen.out).toMatch(/Rerouted -?\d+\.\d s after the message: Returned to the team pool: Dr Ada Able is away/);
    await a.run('example', '--remove', '--yes');
    const unseen = await a.run('example', '--yes', '--wait', '1');
    expect(unseen.code).toBe(1);
    expect(unseen.out).toContain('Not rerouted after 1 s: run npm run status');
  });

  test('--remove: a dry run lists, --yes deletes what it made and the Tasks the bots made on its thread, nothing else', async () => {
    const a = withExamples();
    const other = await a.server.seed<Patient>({ resourceType: 'Patient', name: [{ family: 'Real' }] });
    const otherTask = await a.server.seed<Task>({ resourceType: 'Task', status: 'requested', intent: 'order' });
    await a.run('example', '--yes', '--wait', '0');
    const thread = (await a.server.searchAll<Communication>('Communication', `_tag=${TAG}`)).find((c) => !c.partOf) as Communication;
    // A Task the lifecycle opened on the example's thread (not tagged: the bot made it).
    const lifecycle = await a.server.seed<Task>({ resourceType: 'Task', status: 'requested', intent: 'order', focus: { reference: `Communication/${thread.id}` } });
    a.server.resetCounts();
    const dry = await a.run('example', '--remove');
    expect(dry.out).toContain('Dry run: nothing deleted. With --yes, deletes 8 resources');
    expect(dry.out).toContain('(1 of them Tasks the bots made on the example\'s thread)');
    expect(writes(a)).toEqual([]);
    const { code, out } = await a.run('example', '--remove', '--yes');
    expect(code).toBe(0);
    expect(out).toContain('Deleted 8 resources');
    expect(out.indexOf('Communication/')).toBeLessThan(out.indexOf('Patient/'));
    expect(await tagged(a)).toEqual([]);
    expect(await a.server.searchAll('Task', `_id=${lifecycle.id}`)).toEqual([]);
    expect(await a.server.read('Patient', other.id)).toMatchObject({ id: other.id });
    expect(await a.server.read('Task', otherTask.id)).toMatchObject({ id: otherTask.id });
    expect((await a.run('example', '--remove', '--yes')).out).toContain('No example in this Project: nothing to remove.');
  });

  test('strict arguments: exit 2 before any request', async () => {
    for (const argv of [['example', '--force'], ['example', '--wait', 'soon'], ['example', '--wait', '-1'], ['example', 'now'], ['example', '--app-url', 'ftp://x']]) {
      const a = withExamples();
      expect((await a.run(...argv)).code, argv.join(' ')).toBe(2);
      expect(a.server.count()).toBe(0);
    }
    const help = await withExamples().run('example', '--help');
    expect(help.code).toBe(0);
    expect(help.out).toContain('Usage: npm run example -- [--yes] [--remove] [options]');
  });
});
