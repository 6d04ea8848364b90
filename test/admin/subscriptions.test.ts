// One Subscription sends thread messages to the OOO bot, whatever earlier versions or admins left:
// setup (plain or --adopt) keeps one and turns the others off, saying which; status flags two active.
import type { Bot, Subscription } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, test } from 'vitest';
import { admin, PROJECT } from './admin-harness';
import type { Admin } from './admin-harness';
import { indexDefinitions } from '../harness/server-mock';

beforeAll(() => indexDefinitions(), 60_000); // the FHIR definitions, once, outside any test's time

const CRITERIA = 'Communication?part-of:missing=false&status=in-progress';
const flat = (text: string): string => text.replace(/\n {2}(?! )/g, ' ');
const activeTo = async (a: Admin, botId: string): Promise<Subscription[]> =>
  (await a.server.searchAll<Subscription>('Subscription')).filter((s) => s.channel?.endpoint === `Bot/${botId}` && s.status === 'active');

describe('one Subscription to the bot', () => {
  test('the upgrade path: an older setup\'s untagged Subscription, its criteria edited by hand: --adopt takes it over instead of adding a second', async () => {
    const a = admin();
    const ooo = await a.server.medplum.post<Bot>(`admin/projects/${PROJECT}/bot`, { name: 'ooo-reroute' });
    await a.server.medplum.post<Bot>(`admin/projects/${PROJECT}/bot`, { name: 'stale-thread-reminders' });
    const old = await a.server.seed<Subscription>({
      resourceType: 'Subscription',
      status: 'active',
      reason: 'older setup, edited by hand',
      criteria: 'Communication?status=in-progress',
      channel: { type: 'rest-hook', endpoint: `Bot/${ooo.id}` },
    });
    const { code, out } = await a.run('setup', '--adopt');
    expect(code).toBe(0);
    expect(out).toContain(`update-subscription [ooo-reroute]: Subscription/${old.id} is taken over (--adopt); criteria Communication?status=in-progress becomes ${CRITERIA}`);
    const active = await activeTo(a, ooo.id as string);
    expect(active.map((s) => s.id)).toEqual([old.id]);
    expect(active[0].criteria).toBe(CRITERIA);
    expect((await a.run('status')).out).not.toContain('several active Subscriptions');
    expect((await a.run('setup')).out).toContain('Nothing to change');
  });

  test('plain setup: a hand-made Subscription to our bot next to ours is turned off, naming both; other Subscriptions are not touched', async () => {
    const a = admin();
    await a.run('setup');
    const botId = a.ids()['ooo-reroute'];
    const [ours] = await activeTo(a, botId);
    const handMade = await a.server.seed<Subscription>({
      resourceType: 'Subscription',
      status: 'active',
      reason: 'made by hand',
      criteria: 'Communication?part-of:missing=false',
      channel: { type: 'rest-hook', endpoint: `Bot/${botId}` },
    });
    const otherBots = await a.server.seed<Subscription>({ resourceType: 'Subscription', status: 'active', reason: 'another integration', criteria: CRITERIA, channel: { type: 'rest-hook', endpoint: 'Bot/someone-elses' } });
    const tasksToUs = await a.server.seed<Subscription>({ resourceType: 'Subscription', status: 'active', reason: 'not messages', criteria: 'Task?status=ready', channel: { type: 'rest-hook', endpoint: `Bot/${botId}` } });

    const status = await a.run('status');
    expect(status.code).toBe(1);
    expect(flat(status.out)).toContain(
      `ooo-reroute: several active Subscriptions send it the same messages: each message runs it more than once (and spends its quota as often): Subscription/${ours.id} (its criteria), Subscription/${handMade.id} (Communication?part-of:missing=false). Fix: npm run setup`
    );

    const dry = await a.run('setup', '--dry-run');
    expect(dry.out).toContain(`Subscription/${handMade.id} (Communication?part-of:missing=false, not created by setup) also sends thread messages to the bot: turned off`);
    expect((await activeTo(a, botId)).length).toBe(3);

    const { code, out } = await a.run('setup');
    expect(code).toBe(0);
    expect(out).toContain(`update-subscription [ooo-reroute]: Subscription/${handMade.id} (Communication?part-of:missing=false, not created by setup) also sends thread messages to the bot: turned off (each message would run the bot twice); Subscription/${ours.id} is kept`);
    const left = await activeTo(a, botId);
    expect(left.filter((s) => s.criteria?.startsWith('Communication')).map((s) => s.id)).toEqual([ours.id]);
    expect((await a.server.read<Subscription>('Subscription', otherBots.id)).status).toBe('active');
    expect((await a.server.read<Subscription>('Subscription', tasksToUs.id)).status).toBe('active');
    expect((await a.server.read<Subscription>('Subscription', handMade.id)).reason).toBe('made by hand');
    expect((await a.run('setup')).out).toContain('Nothing to change');
  });

  test('two untagged ones to our bot and none of ours: plain setup keeps the one with the bot\'s criteria as it is and turns the other off', async () => {
    const a = admin();
    await a.run('setup');
    const botId = a.ids()['ooo-reroute'];
    const [ours] = await activeTo(a, botId);
    await a.server.update({ ...ours, meta: { ...ours.meta, tag: [] }, reason: 'an older setup' });
    const second = await a.server.seed<Subscription>({ resourceType: 'Subscription', status: 'active', reason: 'by hand', criteria: 'Communication?status=in-progress', channel: { type: 'rest-hook', endpoint: `Bot/${botId}` } });
    const { out } = await a.run('setup');
    expect(out).toContain(`Subscription/${second.id} (Communication?status=in-progress, not created by setup) also sends thread messages to the bot: turned off`);
    expect(out).toContain(`kept [ooo-reroute]: Subscription/${ours.id} sends new messages to the bot but setup did not create it: left as is`);
    expect((await activeTo(a, botId)).map((s) => s.id)).toEqual([ours.id]);
    expect((await a.server.read<Subscription>('Subscription', ours.id as string)).reason).toBe('an older setup');
  });
});
