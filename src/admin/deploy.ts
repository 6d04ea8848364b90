// `npm run deploy`: checks what the Medplum CLI silently gets wrong, then runs `medplum bot deploy`
// for every bot in the config. (The CLI reports success and exits 0 when a `dist` file is missing.)
import type { BotConfig } from './project-setup';
import { PLACEHOLDER_BOT_ID } from './project-setup';

/** Credentials and server, as the Medplum CLI reads them from the environment. */
export interface DeployEnv {
  MEDPLUM_BASE_URL?: string;
  MEDPLUM_CLIENT_ID?: string;
  MEDPLUM_CLIENT_SECRET?: string;
}

/** Medplum's hosted API, the CLI's default. */
export const DEFAULT_BASE_URL = 'https://api.medplum.com/';

/**
 * Everything that would make a deploy fail or, worse, "succeed" without deploying.
 * @param env - The environment.
 * @param configFile - The config file name, for messages.
 * @param bots - Its bot entries.
 * @param fileSize - Size of a file in bytes, or undefined when it does not exist.
 * @returns One message per problem; empty when the deploy can go ahead.
 */
export function deployProblems(
  env: DeployEnv,
  configFile: string,
  bots: BotConfig[],
  fileSize: (path: string) => number | undefined
): string[] {
  const problems: string[] = [];
  for (const name of ['MEDPLUM_CLIENT_ID', 'MEDPLUM_CLIENT_SECRET'] as const) {
    if (!env[name]) {
      problems.push(`${name} is not set (client credentials of the Project; MEDPLUM_BASE_URL defaults to ${DEFAULT_BASE_URL})`);
    }
  }
  if (!bots.length) {
    problems.push(`${configFile} lists no bots`);
  }
  for (const bot of bots) {
    if (!bot.id || bot.id === PLACEHOLDER_BOT_ID || !/^[A-Za-z0-9\-.]{1,64}$/.test(bot.id)) {
      problems.push(`${bot.name}: no real Bot id in ${configFile} (run \`npm run setup\`, or put the id of the Bot there)`);
    }
    const size = fileSize(bot.dist);
    if (size === undefined) {
      problems.push(`${bot.name}: ${bot.dist} does not exist (run \`npm run build\`)`);
    } else if (size === 0) {
      problems.push(`${bot.name}: ${bot.dist} is empty`);
    }
  }
  return problems;
}

/**
 * Whether the Medplum CLI's output says the bot was deployed (it exits 0 in some failures).
 * @param exitCode - The CLI's exit code.
 * @param output - Its stdout and stderr.
 * @returns True when the deploy went through.
 */
export function cliDeploySucceeded(exitCode: number | null, output: string): boolean {
  return exitCode === 0 && /Deploy result: All OK/.test(output) && /Number of errors: 0/.test(output);
}
