// `npm run test:integration -- [--env NAME] [--yes]`: end to end against a real Medplum server (a
// clinic's staging Project, or ../shared/realserver), not part of `npm test`.
//
// With a Project admin client (MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET, from the
// environment or .env, or .env.NAME with --env NAME) it runs `npm run setup` and `npm run deploy`, so
// the Bots run under their AccessPolicies, then checks on the server:
// - the OOO Subscription: a patient message reroutes only the away owner's Task and recipient; a
//   booked provider (an appointment now) keeps theirs;
// - the OOO sweep (`$execute` with an empty body, as the cron would run it): a Task whose message
//   the event path could not see is rerouted, its held status kept;
// - how a clinic's day goes: a patient who wrote during a shift that has since ended stays with the
//   owner; a message after the shift whose event was lost is rerouted; a vacation that began after
//   the patient wrote hands the thread off; a provider between two appointments keeps it;
// - the stale bot (`$execute`, as the cron would): one reminder for a silent thread after two runs,
//   none where the care team spoke last, none for an auto-acknowledged one;
// - the end of a shift and a recipient (#26): a message after an owner's shift ended sends their Task
//   to the pool and leaves them on the thread; a vacation takes them off it;
// - the follow-up clock (#26): a patient who writes again does not restart the wait: one reminder,
//   named after the episode and dated from the first message, from an incremental run and from a full
//   reconcile, and none from the runs after.
// The sweep and the stale bot act on every open thread of the Project: with open threads the test
// did not make, it refuses unless told --yes, before it changes anything (setup and deploy come
// after). It leaves the Project as it found it (in a finally): everything it created is deleted, and
// everything the bots made because of it (the Tasks on its threads: response Tasks when
// RESPONSE_TASKS is on, reminders; the stale bot's progress marker when there was none before; see
// leave-as-found.ts); every secret it changed, setup's defaults included, is put back as it was. Two
// last checks say so. What it does not undo: the Bots carry the code it deployed, and with --yes
// the runs it started act on the Project's own open threads too (as the crons would).
import type { MedplumClient } from '@medplum/core';
import type { Communication, Extension, Resource, Task } from '@medplum/fhirtypes';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseCommandLine } from '../../src/admin/command-line';
import { connect, connectionEnv, dotEnvFile, loadDotEnv } from '../../src/admin/connect';
import { QuotaPacer } from '../../src/sla/quota-pacer';
import { readMarker } from '../../src/stale/reconcile';
import { createExamples, EXAMPLE_NOW } from '../example-data';
import { remainingOf, removeTestData } from './leave-as-found';
import { changedSecretNames, readSecrets, restoreSecrets, touchedSecrets, withSecret } from './project-secret';

const HELP = `Usage: npm run test:integration -- [--env NAME] [--yes]

  --env NAME   use medplum.NAME.config.json (its Bot ids) and pass --env NAME to setup and deploy
  --yes        run the sweep and the stale bot even though the Project has open threads of its own
               (they act on every open thread: reminders would be created on a clinic's real threads)`;

const DAY = 86_400_000;
const ago = (ms: number): string => new Date(Date.now() - ms).toISOString();
const ref = (r: Resource): { reference: string } => ({ reference: `${r.resourceType}/${r.id}` });
const TZ = [{ url: 'http://hl7.org/fhir/StructureDefinition/timezone', valueCode: 'America/New_York' }];
const ALL_DAY: Extension[] = [
  {
    url: 'http://medplum.com/fhir/StructureDefinition/scheduling-parameters',
    extension: [
      { url: 'availability', valueTiming: { repeat: { dayOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], timeOfDay: ['00:00:00'], duration: 24, durationUnit: 'h' } } },
      { url: 'duration', valueDuration: { value: 30, unit: 'min' } },
    ],
  },
];

/** What `main` needs from its surroundings (tests give their own). */
export interface IntegrationIo {
  /** Logs in with the Project admin client. */
  connect(): Promise<MedplumClient>;
  /** Runs `npm run <script> -- <args>`; its exit code. */
  runScript(script: string, args: string[]): number | Promise<number>;
  readFile(path: string): string;
  /** The checks; the real ones unless a test gives its own. */
  checks?: (context: CheckContext) => Promise<void>;
  /** Waits for the bots' late writes at the end. */
  sleep?: (ms: number) => Promise<void>;
}

const defaultIo = (envName: string | undefined): IntegrationIo => ({
  connect: async () => {
    const file = dotEnvFile(envName);
    if (file) {
      loadDotEnv(file);
    }
    return connect(connectionEnv());
  },
  runScript: (script, args) => spawnSync('npm', ['run', '--silent', script, '--', ...args], { stdio: 'inherit' }).status ?? 1,
  readFile: (path) => readFileSync(path, 'utf8'),
});

/** What the checks are given. */
export interface CheckContext {
  medplum: MedplumClient;
  bots: Record<string, string>;
  create: Create;
  /** Everything the test made, and the bots' Tasks it read; the clean-up deletes it. */
  created: Resource[];
  check: Check;
}

/**
 * Runs the integration test. It leaves the Project as it found it: the refusal comes before anything
 * is written; everything the test made, and what the bots made because of it, is deleted; every
 * secret the run changed (setup's defaults and the checks' settings) is put back as it was.
 * @param argv - Options.
 * @param io - Connection, scripts and files (tests give their own).
 * @returns The exit code.
 */
export async function main(argv: string[], io?: IntegrationIo): Promise<number> {
  const parsed = parseCommandLine(argv, { env: { type: 'string' }, yes: { type: 'boolean' } }, HELP);
  if ('exit' in parsed) {
    return parsed.exit;
  }
  const values = parsed.values as { env?: string; yes?: boolean };
  const envArgs = values.env ? ['--env', values.env] : [];
  const { connect: login, runScript, readFile, checks = allChecks, sleep } = io ?? defaultIo(values.env);
  touchedSecrets.clear();
  const medplum = await login();
  const projectId = medplum.getProject()?.id as string;
  // Refuse before anything is written (setup and deploy write secrets, Bots and Subscriptions): the
  // sweep and the stale bot act on every open thread of the Project.
  const foreignThreads = await countOpenThreads(medplum);
  if (foreignThreads > 0 && !values.yes) {
    console.error(
      `Not running: the Project has ${foreignThreads} open thread(s) this test did not make, and the sweep and the ` +
        'stale bot act on every open thread (reminders would land on them). Nothing was changed. Run again with --yes on a Project where that is fine.'
    );
    return 1;
  }
  // What the end puts back: the secrets as they are now, and whether the stale bot's marker exists.
  const secretsBefore = await readSecrets(medplum, projectId);
  const markerBefore = !!(await readMarker(medplum));
  const pacer = new QuotaPacer(medplum, { onWait: (s) => console.log(`waiting ${s} s for the FHIR quota to reset`) });
  const created: Resource[] = [];
  const create = async <T extends Resource>(resource: T): Promise<T & { id: string }> => {
    const result = (await pacer.run(100, () => medplum.createResource(resource))) as T & { id: string };
    created.push(result);
    return result;
  };
  let failures = 0;
  const check = (label: string, ok: boolean, detail = ''): void => {
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${label}${detail ? ` (${detail})` : ''}`);
    failures += ok ? 0 : 1;
  };
  let setupChanged: string[] | undefined;
  try {
    for (const script of ['setup', 'deploy']) {
      console.log(`> npm run ${script} ${envArgs.join(' ')}`);
      if ((await runScript(script, envArgs)) !== 0) {
        console.error(`npm run ${script} failed; see above`);
        return 1;
      }
    }
    setupChanged = changedSecretNames(secretsBefore, await readSecrets(medplum, projectId));
    if (setupChanged.length) {
      console.log(`setup changed the secrets ${setupChanged.join(', ')}; they are put back as they were at the end`);
    }
    const configFile = values.env ? `medplum.${values.env}.config.json` : 'medplum.config.json';
    const bots = Object.fromEntries((JSON.parse(readFile(configFile)).bots as { name: string; id: string }[]).map((b) => [b.name, b.id]));
    await checks({ medplum, bots, create, created, check });
  } finally {
    const cleanup = await removeTestData(medplum, created, { markerBefore, pace: (points, fn) => pacer.run(points, fn), sleep, log: (l) => console.log(l) });
    for (const line of cleanup.failed) {
      console.log(`could not delete ${line}`);
    }
    console.log(`deleted ${cleanup.deleted} test resources and ${cleanup.botMade.length} the bots made for them`);
    // Setup's changes (all of them when it stopped half-way) and the checks' settings.
    const touched = new Set([...(setupChanged ?? changedSecretNames(secretsBefore, await readSecrets(medplum, projectId))), ...touchedSecrets]);
    const restored = await restoreSecrets(medplum, projectId, secretsBefore, touched);
    if (restored.length) {
      console.log(`secrets put back as they were: ${restored.join(', ')}`);
    }
    const left = await remainingOf(medplum, created, markerBefore);
    check('leaves the Project as found: nothing the test or the bots made for it remains', left.length === 0, left.slice(0, 10).join(', '));
    const secretsAfter = await readSecrets(medplum, projectId);
    const differ = changedSecretNames(secretsBefore, secretsAfter);
    check('leaves the Project as found: every secret the run changed is as it was', !differ.some((name) => touched.has(name)), differ.filter((name) => touched.has(name)).join(', '));
    const others = differ.filter((name) => !touched.has(name));
    if (others.length) {
      console.log(`secrets changed during the run by someone else, left as they are: ${others.join(', ')}`);
    }
  }
  return failures ? 1 : 0;
}

async function allChecks({ medplum, bots, create, created, check }: CheckContext): Promise<void> {
  await eventPath(medplum, create, check);
  await sweep(medplum, bots['ooo-reroute'], create, check);
  await clinicDay(medplum, bots['ooo-reroute'], create, check);
  await responseLifecycle(medplum, create, created, check);
  await readmeExample(medplum, create, check);
  await staleBot(medplum, bots['stale-thread-reminders'], create, created, check);
  await endOfShiftRecipient(medplum, create, created, check);
  await followUpClock(medplum, bots['stale-thread-reminders'], create, created, check);
}

async function countOpenThreads(medplum: MedplumClient): Promise<number> {
  const bundle = await medplum.search('Communication', { 'part-of:missing': 'true', status: 'in-progress', _count: '0', _total: 'accurate' }, { cache: 'no-cache' });
  return bundle.total ?? 0;
}

type Create = <T extends Resource>(resource: T) => Promise<T & { id: string }>;
type Check = (label: string, ok: boolean, detail?: string) => void;

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  let value = await read();
  for (let i = 0; i < 40 && !done(value); i++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    value = await read();
  }
  return value;
}

async function provider(create: Create, status?: 'busy' | 'busy-unavailable'): Promise<Resource & { id: string }> {
  const practitioner = await create({ resourceType: 'Practitioner', extension: TZ });
  const schedule = await create({ resourceType: 'Schedule', active: true, actor: [ref(practitioner)], extension: ALL_DAY });
  if (status) {
    await create({ resourceType: 'Slot', schedule: ref(schedule), status, start: ago(DAY), end: ago(-DAY) });
  }
  return practitioner;
}

async function eventPath(medplum: MedplumClient, create: Create, check: Check): Promise<void> {
  const onDuty = await provider(create);
  const booked = await provider(create, 'busy');
  const away = await provider(create, 'busy-unavailable');
  const patient = await create({ resourceType: 'Patient' });
  const thread = await create<Communication>({ resourceType: 'Communication', status: 'in-progress', subject: ref(patient), recipient: [ref(patient), ref(onDuty), ref(booked), ref(away)] });
  const focus = ref(thread);
  const keptTask = await create<Task>({ resourceType: 'Task', status: 'in-progress', intent: 'order', focus, owner: ref(onDuty) });
  const bookedTask = await create<Task>({ resourceType: 'Task', status: 'in-progress', intent: 'order', focus, owner: ref(booked) });
  const movedTask = await create<Task>({ resourceType: 'Task', status: 'accepted', intent: 'order', focus, owner: ref(away) });
  await create<Communication>({ resourceType: 'Communication', status: 'in-progress', partOf: [focus], sender: ref(patient), payload: [{ contentString: 'e2e' }] });
  const moved = await waitFor(() => medplum.readResource('Task', movedTask.id), (t) => !!t.note);
  check("OOO event: the away owner's Task is back in the pool", !moved.owner && moved.status === 'requested' && moved.note?.length === 1);
  check("OOO event: the on-duty owner's Task is untouched", (await medplum.readResource('Task', keptTask.id)).meta?.versionId === keptTask.meta?.versionId);
  check("OOO event: the booked owner's Task is untouched", (await medplum.readResource('Task', bookedTask.id)).meta?.versionId === bookedTask.meta?.versionId);
  const header = await medplum.readResource('Communication', thread.id);
  check('OOO event: only the away owner left the recipients', header.recipient?.length === 3 && !header.recipient.some((r) => r.reference === `Practitioner/${away.id}`));
}

async function sweep(medplum: MedplumClient, botId: string, create: Create, check: Check): Promise<void> {
  const away = await provider(create, 'busy-unavailable');
  const patient = await create({ resourceType: 'Patient' });
  const thread = await create<Communication>({ resourceType: 'Communication', status: 'in-progress', subject: ref(patient), recipient: [ref(patient), ref(away)] });
  await create<Communication>({ resourceType: 'Communication', status: 'in-progress', partOf: [ref(thread)], sender: ref(patient), payload: [{ contentString: 'e2e' }], sent: ago(60_000) });
  await new Promise((resolve) => setTimeout(resolve, 2000)); // the Subscription's run finds no Task yet: a lost event
  const task = await create<Task>({ resourceType: 'Task', status: 'on-hold', intent: 'order', focus: ref(thread), owner: ref(away) });
  const summary = await medplum.post(medplum.fhirUrl('Bot', botId, '$execute'), {});
  console.log('sweep:', JSON.stringify(summary));
  const swept = await medplum.readResource('Task', task.id);
  check('OOO sweep: the Task whose event was lost is rerouted, its hold kept', !swept.owner && swept.status === 'on-hold' && swept.note?.length === 1);
  check('OOO sweep: the away owner left the recipients', !(await medplum.readResource('Communication', thread.id)).recipient?.some((r) => r.reference === `Practitioner/${away.id}`));
}

/** Working hours in UTC from `startAgo` before now for `hours`, every day (minutes rounded down). */
function shift(startAgo: number, hours: number): Extension[] {
  const start = new Date(Date.now() - startAgo);
  const hhmm = `${String(start.getUTCHours()).padStart(2, '0')}:${String(start.getUTCMinutes()).padStart(2, '0')}:00`;
  return [
    {
      url: 'http://medplum.com/fhir/StructureDefinition/scheduling-parameters',
      extension: [
        { url: 'availability', valueTiming: { repeat: { dayOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], timeOfDay: [hhmm], duration: hours, durationUnit: 'h' } } },
        { url: 'duration', valueDuration: { value: 30, unit: 'min' } },
      ],
    },
  ];
}

async function clinicDay(medplum: MedplumClient, botId: string, create: Create, check: Check): Promise<void> {
  const HOUR = 3_600_000;
  const UTC = [{ url: 'http://hl7.org/fhir/StructureDefinition/timezone', valueCode: 'UTC' }];
  const patient = await create({ resourceType: 'Patient' });
  const person = async (hours: Extension[]): Promise<{ practitioner: Resource & { id: string }; schedule: Resource & { id: string } }> => {
    const practitioner = await create({ resourceType: 'Practitioner', name: [{ given: ['Dana'], family: 'Test' }], extension: UTC });
    return { practitioner, schedule: await create({ resourceType: 'Schedule', active: true, actor: [ref(practitioner)], extension: hours }) };
  };
  const threadWithTask = async (owner: Resource, wroteAgo: number, lostEvent = false): Promise<Task & { id: string }> => {
    const thread = await create<Communication>({ resourceType: 'Communication', status: 'in-progress', subject: ref(patient), recipient: [ref(patient), ref(owner)] });
    const task = (): Promise<Task & { id: string }> => create<Task>({ resourceType: 'Task', status: 'in-progress', intent: 'order', focus: ref(thread), owner: ref(owner) });
    const first = lostEvent ? undefined : await task();
    await create<Communication>({ resourceType: 'Communication', status: 'in-progress', partOf: [ref(thread)], sender: ref(patient), payload: [{ contentString: 'e2e' }], sent: ago(wroteAgo) });
    await new Promise((resolve) => setTimeout(resolve, 2000)); // the event path's run
    return first ?? task(); // created after the message: its event found no Task, as if lost
  };
  // A shift that began 5 h ago and ended 1 h ago; and an all-day one.
  const ended = await person(shift(5 * HOUR, 4));
  const allDay = await person(ALL_DAY);
  const endOfShift = await threadWithTask(ended.practitioner, 2 * HOUR);
  const afterShift = await threadWithTask(ended.practitioner, 30 * 60_000, true);
  const vacation = await threadWithTask(allDay.practitioner, 2 * HOUR);
  const booked = await person(ALL_DAY);
  await create({ resourceType: 'Slot', schedule: ref(booked.schedule), status: 'busy', start: ago(2 * HOUR), end: ago(5 * 60_000) });
  await create({ resourceType: 'Slot', schedule: ref(booked.schedule), status: 'busy', start: ago(-5 * 60_000), end: ago(-2 * HOUR) });
  const gap = await threadWithTask(booked.practitioner, 60_000);
  const untouched = async (task: Task & { id: string }): Promise<boolean> => (await medplum.readResource('Task', task.id)).meta?.versionId === task.meta?.versionId;
  check('a clinic day, event path: a patient who wrote during the shift, and one between two appointments, keep their owner', (await untouched(endOfShift)) && (await untouched(gap)));
  // The vacation begins after the patient wrote.
  await create({ resourceType: 'Slot', schedule: ref(allDay.schedule), status: 'busy-unavailable', start: ago(60_000), end: ago(-DAY) });
  const summary = await medplum.post<Record<string, unknown>>(medplum.fhirUrl('Bot', botId, '$execute'), {});
  console.log('sweep:', JSON.stringify(summary));
  check('a clinic day, sweep: the end of a shift hands nothing off', await untouched(endOfShift));
  const lost = await medplum.readResource('Task', afterShift.id);
  check('a clinic day, sweep: a message after the shift whose event was lost is rerouted', !lost.owner && /outside their working hours when the patient wrote/.test(lost.note?.[0]?.text ?? ''), lost.note?.[0]?.text);
  const away = await medplum.readResource('Task', vacation.id);
  check('a clinic day, sweep: a vacation that began after the patient wrote hands the thread off', !away.owner && /is away/.test(away.note?.[0]?.text ?? ''), away.note?.[0]?.text);
  check('a clinic day, sweep: between two appointments is being at work', await untouched(gap));
  check('a clinic day, sweep: counted as kept because on duty when the patient wrote', Number(summary.keptOnDuty) >= 1, `keptOnDuty=${summary.keptOnDuty}`);
}

/**
 * The response lifecycle (RESPONSE_TASKS=on for the length of this check, then as it was): a
 * patient's message opens a Task for the on-shift recipient; they go on vacation and the patient
 * writes again: the Task goes to the pool; a colleague replies: the Task is completed, their reply
 * as its output and them as its owner.
 */
async function responseLifecycle(medplum: MedplumClient, create: Create, created: Resource[], check: Check): Promise<void> {
  await withSecret(medplum, 'RESPONSE_TASKS', 'on', async () => {
    const UTC = [{ url: 'http://hl7.org/fhir/StructureDefinition/timezone', valueCode: 'UTC' }];
    const nurse = await create({ resourceType: 'Practitioner', name: [{ given: ['Noor'], family: 'Nurse' }], extension: UTC });
    const schedule = await create({ resourceType: 'Schedule', active: true, actor: [ref(nurse)], extension: ALL_DAY });
    const colleague = await create({ resourceType: 'Practitioner', name: [{ given: ['Cole'], family: 'League' }], extension: UTC });
    const patient = await create({ resourceType: 'Patient' });
    const thread = await create<Communication>({ resourceType: 'Communication', status: 'in-progress', subject: ref(patient), recipient: [ref(patient), ref(nurse)] });
    const tasks = (): Promise<Task[]> => medplum.searchResources('Task', { focus: `Communication/${thread.id}` }, { cache: 'no-cache' });
    const say = (sender: Resource): Promise<Communication> =>
      create<Communication>({ resourceType: 'Communication', status: 'in-progress', partOf: [ref(thread)], sender: ref(sender), payload: [{ contentString: 'e2e' }], sent: new Date().toISOString() });
    await say(patient);
    const [opened] = await waitFor(tasks, (t) => t.length > 0);
    created.push(...(opened ? [opened] : []));
    check('lifecycle: a patient message opens one response Task, for the on-shift recipient', opened?.owner?.reference === `Practitioner/${nurse.id}` && opened.status === 'requested', opened?.note?.[0]?.text);
    await create({ resourceType: 'Slot', schedule: ref(schedule), status: 'busy-unavailable', start: ago(60_000), end: ago(-DAY) });
    await say(patient);
    const [pooled] = await waitFor(tasks, (t) => !t[0]?.owner);
    check('lifecycle: the owner goes on vacation, the patient writes again: the Task goes to the pool', !pooled?.owner && (pooled?.note?.length ?? 0) === 2, pooled?.note?.at(-1)?.text);
    const reply = await say(colleague);
    const [done] = await waitFor(tasks, (t) => t[0]?.status === 'completed');
    check(
      'lifecycle: a reply completes it, the reply as output and the replier as owner',
      done?.status === 'completed' && done.output?.[0]?.valueReference?.reference === `Communication/${reply.id}` && done.owner?.reference === `Practitioner/${colleague.id}`
    );
    check('lifecycle: one Task for the whole episode', (await tasks()).length === 1);
  });
}

/** The README's example data (examples/*.json), replayed now: Dr Ada is on vacation when the patient writes. */
async function readmeExample(medplum: MedplumClient, create: Create, check: Check): Promise<void> {
  const made = await createExamples((r) => create(r), Date.now() - EXAMPLE_NOW);
  const task = await waitFor(() => medplum.readResource('Task', made['response-task'].id), (t) => !t.owner);
  check('the README example: the patient writes while Dr Ada is on vacation, her Task goes to the pool', !task.owner, task.note?.[0]?.text);
}

async function staleBot(medplum: MedplumClient, botId: string, create: Create, created: Resource[], check: Check): Promise<void> {
  const onDuty = await create({ resourceType: 'Practitioner', extension: TZ });
  const patient = await create({ resourceType: 'Patient' });
  const silent = await create<Communication>({ resourceType: 'Communication', status: 'in-progress', subject: ref(patient), sent: ago(10 * DAY) });
  await create({ resourceType: 'Communication', status: 'completed', partOf: [ref(silent)], sender: ref(onDuty), sent: ago(6 * DAY) });
  await create({ resourceType: 'Communication', status: 'completed', partOf: [ref(silent)], sender: ref(patient), sent: ago(5 * DAY) });
  const acked = await create<Communication>({ resourceType: 'Communication', status: 'in-progress', subject: ref(patient), sent: ago(10 * DAY) });
  await create({ resourceType: 'Communication', status: 'completed', partOf: [ref(acked)], sender: ref(patient), sent: ago(5 * DAY) });
  await create({ resourceType: 'Communication', status: 'completed', partOf: [ref(acked)], sender: { reference: `Bot/${botId}` }, sent: ago(5 * DAY - 60_000) });
  const waiting = await create<Communication>({ resourceType: 'Communication', status: 'in-progress', subject: ref(patient), sent: ago(10 * DAY) });
  await create({ resourceType: 'Communication', status: 'completed', partOf: [ref(waiting)], sender: ref(onDuty), sent: ago(5 * DAY) });
  const first = await medplum.post<Record<string, unknown>>(medplum.fhirUrl('Bot', botId, '$execute'), {});
  const second = await medplum.post<Record<string, unknown>>(medplum.fhirUrl('Bot', botId, '$execute'), {});
  console.log('stale runs:', JSON.stringify(first), JSON.stringify(second));
  const reminders = (thread: Communication): Promise<Task[]> => medplum.searchResources('Task', { focus: `Communication/${thread.id}` }, { cache: 'no-cache' });
  const silentReminders = await reminders(silent);
  const ackedReminders = await reminders(acked);
  created.push(...silentReminders, ...ackedReminders);
  check('stale: one reminder for the silent thread after two runs', silentReminders.length === 1 && silentReminders[0].priority === 'urgent');
  check('stale: an auto-acknowledgement is no answer: reminded too', ackedReminders.length === 1);
  check('stale: none where the care team spoke last', (await reminders(waiting)).length === 0);
  check('stale: the second run created nothing', second.created === 0 && second.failed === 0);
}


/** Waits (20 s at most) until the Bot run a message triggered is recorded: its AuditEvent names the message. */
async function runRecorded(medplum: MedplumClient, message: Resource): Promise<void> {
  await waitFor(
    () => medplum.searchResources('AuditEvent', { entity: `${message.resourceType}/${message.id}` }, { cache: 'no-cache' }),
    (events) => events.length > 0
  );
}

/** Adds to `created` the Tasks the bots made on these threads (for the finally to delete), once each. */
async function tasksOn(medplum: MedplumClient, thread: Communication, created: Resource[]): Promise<Task[]> {
  const tasks = await medplum.searchResources('Task', { focus: `Communication/${thread.id}` }, { cache: 'no-cache' });
  const known = new Set(created.map((r) => `${r.resourceType}/${r.id}`));
  created.push(...tasks.filter((t) => !known.has(`Task/${t.id}`)));
  return tasks;
}

/**
 * The end of a shift and a thread's recipients (#26). A provider whose working hours ended two hours
 * ago (no absence) owns an open Task on a thread they receive; the patient writes now: the Task goes
 * to the pool with a note, and the provider stays a recipient (the thread is still in their inbox next
 * morning). A provider on vacation (a busy-unavailable Slot over now): the Task goes to the pool and
 * they leave the recipients. Each read waits for the run the message triggered to be recorded, so a
 * recipient still listed is the run's answer, not a read made before it.
 */
async function endOfShiftRecipient(medplum: MedplumClient, create: Create, created: Resource[], check: Check): Promise<void> {
  const HOUR = 3_600_000;
  const UTC = [{ url: 'http://hl7.org/fhir/StructureDefinition/timezone', valueCode: 'UTC' }];
  const patient = await create({ resourceType: 'Patient' });
  const person = async (hours: Extension[]): Promise<{ practitioner: Resource & { id: string }; schedule: Resource & { id: string } }> => {
    const practitioner = await create({ resourceType: 'Practitioner', name: [{ given: ['Sam'], family: 'Shift' }], extension: UTC });
    return { practitioner, schedule: await create({ resourceType: 'Schedule', active: true, actor: [ref(practitioner)], extension: hours }) };
  };
  const patientWrites = async (owner: Resource): Promise<{ thread: Communication & { id: string }; task: Task & { id: string } }> => {
    const thread = await create<Communication>({ resourceType: 'Communication', status: 'in-progress', subject: ref(patient), recipient: [ref(patient), ref(owner)] });
    const task = await create<Task>({ resourceType: 'Task', status: 'in-progress', intent: 'order', focus: ref(thread), owner: ref(owner) });
    const message = await create<Communication>({
      resourceType: 'Communication',
      status: 'in-progress',
      partOf: [ref(thread)],
      sender: ref(patient),
      payload: [{ contentString: 'e2e' }],
      sent: new Date().toISOString(),
    });
    await runRecorded(medplum, message);
    await tasksOn(medplum, thread, created);
    return { thread, task };
  };
  const listed = async (thread: Communication, who: Resource): Promise<boolean> =>
    !!(await medplum.readResource('Communication', thread.id as string)).recipient?.some((r) => r.reference === `Practitioner/${who.id}`);

  // Working hours from 10 h ago for 8 h, every day: the shift ended 2 h ago; nothing on their calendar.
  const offShift = await person(shift(10 * HOUR, 8));
  const evening = await patientWrites(offShift.practitioner);
  const handedOff = await waitFor(() => medplum.readResource('Task', evening.task.id), (t) => !!t.note);
  check(
    'end of shift (#26): a message after the shift sends the Task to the pool, with a note',
    !handedOff.owner && handedOff.status === 'requested' && handedOff.note?.length === 1,
    handedOff.note?.[0]?.text
  );
  check('end of shift (#26): the provider stays a recipient of the thread', await listed(evening.thread, offShift.practitioner));

  const onVacation = await person(ALL_DAY);
  await create({ resourceType: 'Slot', schedule: ref(onVacation.schedule), status: 'busy-unavailable', start: ago(DAY), end: ago(-DAY) });
  const away = await patientWrites(onVacation.practitioner);
  const pooled = await waitFor(() => medplum.readResource('Task', away.task.id), (t) => !!t.note);
  check('vacation (#26): the Task goes to the pool, with a note', !pooled.owner && pooled.status === 'requested' && pooled.note?.length === 1, pooled.note?.[0]?.text);
  check('vacation (#26): the provider leaves the recipients of the thread', !(await listed(away.thread, onVacation.practitioner)));
}

/**
 * The follow-up clock (#26): a patient waits from their FIRST message after the care team last spoke
 * (or the thread's start); writing again does not restart the clock. The first message 80 h ago, a
 * follow-up 10 h ago, STALE_AFTER_HOURS 72 (for the check, then as it was): the thread is due. Its one
 * reminder names the episode, `<thread id>:after:<the care team's last message id | start>`, and
 * records the first message's time as where the silence started.
 * - Thread A, decided by an incremental run (`{"full": false}`): the care team spoke 120 h ago, before
 *   the window such a run reads by default (72 h + 24 h of lookback), so it has to know the episode
 *   from more than its window.
 * - Thread B, made after that run and decided by a full reconcile (`{"full": true}`): the care team
 *   never spoke (`:after:start`).
 * Then one more run of each kind: neither thread gets a second reminder.
 */
async function followUpClock(medplum: MedplumClient, botId: string, create: Create, created: Resource[], check: Check): Promise<void> {
  const HOUR = 3_600_000;
  const run = (full: boolean): Promise<Record<string, unknown>> => medplum.post<Record<string, unknown>>(medplum.fhirUrl('Bot', botId, '$execute'), { full });
  await withSecret(medplum, 'STALE_AFTER_HOURS', '72', async () => {
    const nurse = await create({ resourceType: 'Practitioner', extension: TZ });
    const patient = await create({ resourceType: 'Patient' });
    const say = (thread: Resource, sender: Resource, sentAgo: number): Promise<Communication & { id: string }> =>
      create<Communication>({ resourceType: 'Communication', status: 'completed', partOf: [ref(thread)], sender: ref(sender), payload: [{ contentString: 'e2e' }], sent: ago(sentAgo) });
    const thread = async (careTeamSpokeAgo?: number): Promise<{ thread: Communication & { id: string }; episode: string; first: Communication }> => {
      const header = await create<Communication>({ resourceType: 'Communication', status: 'in-progress', subject: ref(patient), sent: ago(150 * HOUR) });
      const careTeam = careTeamSpokeAgo ? await say(header, nurse, careTeamSpokeAgo) : undefined;
      const first = await say(header, patient, 80 * HOUR);
      await say(header, patient, 10 * HOUR); // the follow-up
      return { thread: header, episode: `${header.id}:after:${careTeam ? careTeam.id : 'start'}`, first };
    };
    const oneReminder = async (label: string, t: Awaited<ReturnType<typeof thread>>): Promise<void> => {
      const tasks = await tasksOn(medplum, t.thread, created);
      const started = tasks[0]?.extension?.find((e) => e.url === 'urn:medplum-messaging-bots:silence-started')?.valueInstant;
      check(
        `follow-up clock (#26), ${label}: one reminder, for the episode, its silence started at the first message`,
        tasks.length === 1 && !!tasks[0].identifier?.some((i) => i.value === t.episode) && Date.parse(started ?? '') === Date.parse(t.first.sent ?? ''),
        `${tasks.length} Task(s); identifiers ${JSON.stringify(tasks.map((x) => x.identifier?.map((i) => i.value)))}, want ${t.episode}; silence started ${started}, first message ${t.first.sent}`
      );
    };

    const a = await thread(120 * HOUR);
    const incremental = await run(false);
    console.log('stale run {"full": false}:', JSON.stringify(incremental));
    await oneReminder('thread A, incremental run', a);

    const b = await thread();
    const full = await run(true);
    console.log('stale run {"full": true}:', JSON.stringify(full));
    await oneReminder('thread B, full reconcile', b);

    const again = [await run(false), await run(true)];
    console.log('stale runs again:', again.map((s) => JSON.stringify(s)).join(' '));
    const after = [await tasksOn(medplum, a.thread, created), await tasksOn(medplum, b.thread, created)];
    check(
      'follow-up clock (#26): the runs after add no reminder to either thread, and leave each open',
      after.every((tasks) => tasks.length === 1 && tasks[0].status === 'requested'),
      `Tasks per thread: ${after.map((tasks) => tasks.map((t) => t.status).join('+') || 'none').join(', ')}`
    );
  });
}
