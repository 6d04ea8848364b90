// `npm run status`: is each bot there, deployed, wired, and running well?
import type { MedplumClient } from '@medplum/core';
import type { AuditEvent, Bot, Subscription } from '@medplum/fhirtypes';
import type { BotConfig } from './project-setup';
import { BOT_WIRING, PLACEHOLDER_BOT_ID } from './project-setup';

/** One bot's state. */
export interface BotStatus {
  name: string;
  id: string;
  exists: boolean;
  deployed: boolean;
  membership: boolean;
  accessPolicy?: string;
  trigger: string;
  lastRuns: { time?: string; outcome: 'ok' | 'failed' | string }[];
  problems: string[];
}

/**
 * Reads each bot's state from the Project.
 * @param medplum - A client of the Project.
 * @param bots - The bot entries of the config.
 * @returns One status per bot, plus Project-level problems.
 */
export async function readStatus(medplum: MedplumClient, bots: BotConfig[]): Promise<{ bots: BotStatus[]; problems: string[] }> {
  const problems: string[] = [];
  const features = medplum.getProject()?.features;
  for (const feature of ['bots', 'cron']) {
    if (features && !features.includes(feature as never)) {
      problems.push(`the Project lacks the "${feature}" feature (only a super admin can enable it)`);
    }
  }
  const ourEndpoints = new Set(bots.map((b) => `Bot/${b.id}`));
  const criteria = new Set(Object.values(BOT_WIRING).flatMap((w) => (w.subscription ? [w.subscription.criteria] : [])));
  const subscriptions = await medplum.searchResources('Subscription', { _count: '1000' });
  for (const sub of subscriptions) {
    if (criteria.has(sub.criteria) && sub.status === 'active' && !ourEndpoints.has(sub.channel?.endpoint ?? '')) {
      problems.push(`Subscription/${sub.id} (${sub.criteria}) sends to ${sub.channel?.endpoint}, which is not one of our Bots`);
    }
  }
  const statuses: BotStatus[] = [];
  for (const config of bots) {
    statuses.push(await botStatus(medplum, config, subscriptions));
  }
  return { bots: statuses, problems };
}

async function botStatus(medplum: MedplumClient, config: BotConfig, subscriptions: Subscription[]): Promise<BotStatus> {
  const status: BotStatus = { name: config.name, id: config.id, exists: false, deployed: false, membership: false, trigger: '-', lastRuns: [], problems: [] };
  if (config.id === PLACEHOLDER_BOT_ID) {
    status.problems.push('no Bot id in the config (run `npm run setup`)');
    return status;
  }
  const bot = await medplum.readResource('Bot', config.id).catch(() => undefined as Bot | undefined);
  if (!bot) {
    status.problems.push(`Bot/${config.id} not found`);
    return status;
  }
  status.exists = true;
  status.deployed = !!bot.executableCode;
  if (!status.deployed) {
    status.problems.push('never deployed (run `npm run deploy`)');
  }
  const membership = await medplum.searchOne('ProjectMembership', { profile: `Bot/${config.id}` });
  status.membership = !!membership;
  status.accessPolicy = membership?.accessPolicy?.reference;
  if (!membership) {
    status.problems.push('no ProjectMembership: Subscriptions to this Bot fail (create it with the admin API / `npm run setup`)');
  } else if (!membership.accessPolicy) {
    status.problems.push('runs with the full rights of the Project (no AccessPolicy on its membership)');
  }
  const wiring = BOT_WIRING[config.name];
  if (wiring?.subscription) {
    const mine = subscriptions.filter((s) => s.channel?.endpoint === `Bot/${config.id}`);
    status.trigger = mine.map((s) => `Subscription/${s.id} ${s.status}`).join(', ') || 'no Subscription';
    if (!mine.some((s) => s.status === 'active')) {
      status.problems.push('no active Subscription sends messages to it');
    }
  } else if (wiring?.cron) {
    status.trigger = bot.cronString ? `cron ${bot.cronString}` : 'no cron';
    if (!bot.cronString) {
      status.problems.push('no cronString: it never runs');
    }
  }
  const runs = await medplum.searchResources('AuditEvent', { entity: `Bot/${config.id}`, _sort: '-_lastUpdated', _count: '5' });
  status.lastRuns = runs.map((e: AuditEvent) => ({
    time: e.recorded,
    outcome: e.outcome === '0' ? 'ok' : e.outcome === '4' ? 'failed' : `outcome ${e.outcome}`,
  }));
  return status;
}

/**
 * Formats statuses as a table an admin reads at a glance.
 * @param result - What readStatus returned.
 * @returns The text.
 */
export function formatStatus(result: { bots: BotStatus[]; problems: string[] }): string {
  const yes = (b: boolean): string => (b ? 'yes' : 'NO');
  const rows = [
    ['bot', 'id', 'exists', 'deployed', 'membership', 'access policy', 'trigger', 'last runs'],
    ...result.bots.map((b) => [
      b.name,
      b.id,
      yes(b.exists),
      yes(b.deployed),
      yes(b.membership),
      b.accessPolicy ?? 'none',
      b.trigger,
      b.lastRuns.map((r) => `${r.time?.slice(0, 16)} ${r.outcome}`).join('; ') || 'none yet',
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd());
  const problems = [...result.problems, ...result.bots.flatMap((b) => b.problems.map((p) => `${b.name}: ${p}`))];
  return [...lines, '', problems.length ? `Problems:\n${problems.map((p) => `- ${p}`).join('\n')}` : 'No problems found.'].join('\n');
}
