// `npm run test:integration`: end to end against a real Medplum server (not part of `npm test`).
//
//   MEDPLUM_BASE_URL=http://localhost:8103/ MEDPLUM_CLIENT_ID=... MEDPLUM_CLIENT_SECRET=... npm run test:integration
//
// The client must be a Project admin; the Project needs the `bots` feature. It runs `npm run setup`
// and `npm run deploy` (so the Bots run under their AccessPolicies, through the setup's
// Subscription), then checks: a patient message in the thread of an absent provider reroutes only
// that provider's Task and recipient; executing the stale-thread bot creates one reminder for a
// silent thread and none where the care team spoke last. It deletes the data it created and exits
// non-zero on a failed check.
import { MedplumClient } from '@medplum/core';
import { execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

for (const script of ['setup', 'deploy']) {
  console.log(`> npm run ${script}`);
  execSync(`npm run --silent ${script}`, { stdio: 'inherit' });
}
const bots = Object.fromEntries(JSON.parse(readFileSync('medplum.config.json', 'utf8')).bots.map((b) => [b.name, b.id]));
const medplum = new MedplumClient({ baseUrl: process.env.MEDPLUM_BASE_URL ?? 'https://api.medplum.com/', fetch });
await medplum.startClientLogin(process.env.MEDPLUM_CLIENT_ID, process.env.MEDPLUM_CLIENT_SECRET);
const DAY = 86_400_000;
const ago = (ms) => new Date(Date.now() - ms).toISOString();
const ref = (r) => ({ reference: `${r.resourceType}/${r.id}` });
const created = [];
const create = async (resource) => {
  const result = await medplum.createResource(resource);
  created.push(result);
  return result;
};
let failures = 0;
const check = (label, ok, detail = '') => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${label}${detail ? ` (${detail})` : ''}`);
  failures += ok ? 0 : 1;
};

// Out-of-office reroute, fired by the Subscription setup made.
const tz = [{ url: 'http://hl7.org/fhir/StructureDefinition/timezone', valueCode: 'America/New_York' }];
const allDay = [
  {
    url: 'http://medplum.com/fhir/StructureDefinition/scheduling-parameters',
    extension: [
      { url: 'availability', valueTiming: { repeat: { dayOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], timeOfDay: ['00:00:00'], duration: 24, durationUnit: 'h' } } },
      { url: 'duration', valueDuration: { value: 30, unit: 'min' } },
    ],
  },
];
const onDuty = await create({ resourceType: 'Practitioner', extension: tz });
const away = await create({ resourceType: 'Practitioner', extension: tz });
await create({ resourceType: 'Schedule', active: true, actor: [ref(onDuty)], extension: allDay });
const awaySchedule = await create({ resourceType: 'Schedule', active: true, actor: [ref(away)], extension: allDay });
await create({ resourceType: 'Slot', schedule: ref(awaySchedule), status: 'busy-unavailable', start: ago(DAY), end: ago(-DAY) });
const patient = await create({ resourceType: 'Patient' });
const thread = await create({ resourceType: 'Communication', status: 'in-progress', subject: ref(patient), recipient: [ref(patient), ref(onDuty), ref(away)] });
const focus = { reference: `Communication/${thread.id}` };
const keptTask = await create({ resourceType: 'Task', status: 'in-progress', intent: 'order', focus, owner: ref(onDuty) });
const movedTask = await create({ resourceType: 'Task', status: 'accepted', intent: 'order', focus, owner: ref(away) });
await create({ resourceType: 'Communication', status: 'in-progress', partOf: [focus], sender: ref(patient), payload: [{ contentString: 'e2e' }] });
let moved;
for (let i = 0; i < 20 && !moved?.note; i++) {
  await new Promise((resolve) => setTimeout(resolve, 500));
  moved = await medplum.readResource('Task', movedTask.id);
}
const kept = await medplum.readResource('Task', keptTask.id);
check('OOO: the away owner\'s Task is back in the pool', !moved.owner && moved.status === 'requested' && moved.note?.length === 1);
check('OOO: the on-duty owner\'s Task is untouched', kept.meta.versionId === keptTask.meta.versionId);
const header = await medplum.readResource('Communication', thread.id);
check('OOO: only the away owner left the recipients', header.recipient.length === 2 && !header.recipient.some((r) => r.reference === `Practitioner/${away.id}`));

// Stale-thread reminders, run with $execute as the cron would.
const p2 = await create({ resourceType: 'Patient' });
const silent = await create({ resourceType: 'Communication', status: 'in-progress', subject: ref(p2), sent: ago(10 * DAY) });
await create({ resourceType: 'Communication', status: 'completed', partOf: [ref(silent)], sender: ref(onDuty), sent: ago(6 * DAY) });
await create({ resourceType: 'Communication', status: 'completed', partOf: [ref(silent)], sender: ref(p2), sent: ago(5 * DAY) });
const waiting = await create({ resourceType: 'Communication', status: 'in-progress', subject: ref(p2), sent: ago(10 * DAY) });
await create({ resourceType: 'Communication', status: 'completed', partOf: [ref(waiting)], sender: ref(onDuty), sent: ago(5 * DAY) });
const first = await medplum.post(medplum.fhirUrl('Bot', bots['stale-thread-reminders'], '$execute'), {});
const second = await medplum.post(medplum.fhirUrl('Bot', bots['stale-thread-reminders'], '$execute'), {});
console.log('stale runs:', JSON.stringify(first), JSON.stringify(second));
const reminders = await medplum.searchResources('Task', { focus: `Communication/${silent.id}` });
check('stale: one reminder for the silent thread after two runs', reminders.length === 1 && reminders[0].priority === 'urgent');
check('stale: none where the care team spoke last', (await medplum.searchResources('Task', { focus: `Communication/${waiting.id}` })).length === 0);
check('stale: the second run created nothing', second.created === 0 && second.failed === 0);
created.push(...reminders);

// Clean up: the bots' own writes (reminders) and everything this run made, newest first.
for (const resource of created.reverse()) {
  await medplum.deleteResource(resource.resourceType, resource.id).catch((err) => console.log(`could not delete ${resource.resourceType}/${resource.id}: ${err.message}`));
}
console.log(`deleted ${created.length} test resources`);

process.exit(failures ? 1 : 0);
