// Runs a built bot bundle the way Medplum's vmcontext runtime does: the bundle text is evaluated in
// a fresh V8 context whose only globals are the ones the server provides, wrapped in
// `const exports = {}; const module = {exports}; <bundle>` and then `exports.handler(medplum, event)`.
import { ContentType, Hl7Message, MedplumClient } from '@medplum/core';
import type { BotEvent } from '@medplum/core';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import vm from 'node:vm';

const require = createRequire(import.meta.url);

/** The server's bot console (`MockConsole`): `log` only, collected as the run's output. */
export class BotConsole {
  readonly messages: string[] = [];

  log(...params: unknown[]): void {
    this.messages.push(params.join(' '));
  }
}

/**
 * Runs a bundled bot's handler in a vmcontext-style sandbox.
 * @param distPath - Path of the built bundle.
 * @param medplum - The client the handler gets.
 * @param event - The bot event.
 * @param botConsole - The sandbox's console, as the server's: `log` only.
 * @returns What the handler returned.
 */
export async function runBundledBot(
  distPath: string,
  medplum: MedplumClient,
  event: BotEvent,
  botConsole = new BotConsole()
): Promise<unknown> {
  const code = readFileSync(distPath, 'utf8');
  const sandbox = {
    console: botConsole,
    fetch,
    require,
    ContentType,
    Hl7Message,
    MedplumClient,
    TextDecoder,
    TextEncoder,
    URL,
    URLSearchParams,
    medplum,
    event,
    // The context has its own built-ins; the host's Date is passed in only so that tests' fixed
    // time (vi.setSystemTime) reaches the bot.
    Date,
  };
  const wrapped = `
(async () => {
  const exports = {};
  const module = { exports };
  ${code}
  return exports.handler(medplum, event);
})();`;
  return vm.runInContext(wrapped, vm.createContext(sandbox), { filename: distPath });
}
