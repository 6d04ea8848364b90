// End-to-end check of the built bundles against a real Medplum server (not part of `npm test`).
//
//   npm run build
//   MEDPLUM_BASE_URL=http://localhost:8103/ MEDPLUM_CLIENT_ID=... MEDPLUM_CLIENT_SECRET=... \
//   MEDPLUM_PROJECT_ID=... node_modules/.bin/node test/e2e/real-server-check.mjs
//
// The client must be a Project admin (it creates Bots through the admin API) and the Project needs
// the `bots` feature. It creates two Bots, deploys dist/*.js, wires a Subscription for the OOO bot,
// and checks: a patient message reroutes only the away owner's Task; two stale-thread runs create
// exactly one reminder, none for a thread where the care team spoke last. It leaves its data behind
// (turning its Subscription off) and exits non-zero on a failed check.
import { MedplumClient } from '@medplum/core';
import { readFileSync } from 'node:fs';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return value;
};
const medplum = new MedplumClient({ baseUrl: env('MEDPLUM_BASE_URL', 'http://localhost:8103/'), fetch });
await medplum.startClientLogin(env('MEDPLUM_CLIENT_ID'), env('MEDPLUM_CLIENT_SECRET'));
const projectId = env('MEDPLUM_PROJECT_ID');
const DAY = 86_400_000;
const ago = (ms) => new Date(Date.now() - ms).toISOString();
const ref = (r) => ({ reference: `${r.resourceType}/${r.id}` });
let failures = 0;
const check = (label, ok, detail = '') => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${label}${detail ? ` (${detail})` : ''}`);
  failures += ok ? 0 : 1;
};

async function createBot(name, dist) {
  const bot = await medplum.post(`admin/projects/${projectId}/bot`, { name: `${name}-e2e-${Date.now().toString(36)}` });
  await medplum.post(medplum.fhirUrl('Bot', bot.id, '$deploy'), { code: readFileSync(dist, 'utf8'), filename: `${name}.js` });
  return bot;
}

const ooo = await createBot('ooo-reroute', 'dist/ooo-reroute.js');
const stale = await createBot('stale-thread-reminders', 'dist/stale-thread-reminders.js');

// Out-of-office reroute, fired by a real Subscription.
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
const onDuty = await medplum.createResource({ resourceType: 'Practitioner', extension: tz });
const away = await medplum.createResource({ resourceType: 'Practitioner', extension: tz });
await medplum.createResource({ resourceType: 'Schedule', active: true, actor: [ref(onDuty)], extension: allDay });
const awaySchedule = await medplum.createResource({ resourceType: 'Schedule', active: true, actor: [ref(away)], extension: allDay });
await medplum.createResource({ resourceType: 'Slot', schedule: ref(awaySchedule), status: 'busy-unavailable', start: ago(DAY), end: ago(-DAY) });
const patient = await medplum.createResource({ resourceType: 'Patient' });
const thread = await medplum.createResource({ resourceType: 'Communication', status: 'in-progress', subject: ref(patient), recipient: [ref(patient), ref(onDuty), ref(away)] });
const focus = { reference: `Communication/${thread.id}` };
const keptTask = await medplum.createResource({ resourceType: 'Task', status: 'in-progress', intent: 'order', focus, owner: ref(onDuty) });
const movedTask = await medplum.createResource({ resourceType: 'Task', status: 'accepted', intent: 'order', focus, owner: ref(away) });
const subscription = await medplum.createResource({
  resourceType: 'Subscription',
  status: 'active',
  reason: 'ooo-reroute e2e check',
  criteria: 'Communication?part-of:missing=false&status=in-progress',
  channel: { type: 'rest-hook', endpoint: `Bot/${ooo.id}` },
  extension: [{ url: 'https://medplum.com/fhir/StructureDefinition/subscription-supported-interaction', valueCode: 'create' }],
});
await medplum.createResource({ resourceType: 'Communication', status: 'in-progress', partOf: [focus], sender: ref(patient), payload: [{ contentString: 'e2e' }] });
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
await medplum.updateResource({ ...subscription, status: 'off' });

// Stale-thread reminders, run with $execute as the cron would.
const p2 = await medplum.createResource({ resourceType: 'Patient' });
const silent = await medplum.createResource({ resourceType: 'Communication', status: 'in-progress', subject: ref(p2), sent: ago(10 * DAY) });
await medplum.createResource({ resourceType: 'Communication', status: 'completed', partOf: [ref(silent)], sender: ref(onDuty), sent: ago(6 * DAY) });
await medplum.createResource({ resourceType: 'Communication', status: 'completed', partOf: [ref(silent)], sender: ref(p2), sent: ago(5 * DAY) });
const waiting = await medplum.createResource({ resourceType: 'Communication', status: 'in-progress', subject: ref(p2), sent: ago(10 * DAY) });
await medplum.createResource({ resourceType: 'Communication', status: 'completed', partOf: [ref(waiting)], sender: ref(onDuty), sent: ago(5 * DAY) });
const first = await medplum.post(medplum.fhirUrl('Bot', stale.id, '$execute'), {});
const second = await medplum.post(medplum.fhirUrl('Bot', stale.id, '$execute'), {});
console.log('stale runs:', JSON.stringify(first), JSON.stringify(second));
const reminders = await medplum.searchResources('Task', { focus: `Communication/${silent.id}` });
check('stale: one reminder for the silent thread after two runs', reminders.length === 1 && reminders[0].priority === 'urgent');
check('stale: none where the care team spoke last', (await medplum.searchResources('Task', { focus: `Communication/${waiting.id}` })).length === 0);
check('stale: the second run created nothing', second.created === 0 && second.failed === 0);

process.exit(failures ? 1 : 0);
