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
  const sandbox = vmContextGlobals(medplum, event, botConsole, Date);
  return vm.runInContext(wrapBundle(readFileSync(distPath, 'utf8')), vm.createContext(sandbox), { filename: distPath }) as Promise<unknown>;
}

/**
 * The globals Medplum's vmcontext runtime gives a bot, and nothing else.
 * @param medplum - The client the handler gets.
 * @param event - The bot event.
 * @param botConsole - The sandbox's console, as the server's: `log` only.
 * @param date - The context has its own built-ins; the host's (or the simulation's) Date is passed in
 *   only so that a test's fixed time (vi.setSystemTime, the simulated clock) reaches the bot.
 * @returns The sandbox object for `vm.createContext`.
 */
export function vmContextGlobals(medplum: MedplumClient, event: BotEvent, botConsole: BotConsole, date: DateConstructor): Record<string, unknown> {
  return {
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
    Date: date,
  };
}

/**
 * A bundle wrapped as the server wraps it: `const exports = {}; const module = {exports}; <bundle>`,
 * then `exports.handler(medplum, event)`.
 * @param code - The bundle's text.
 * @returns Source whose value is the handler's promise.
 */
export function wrapBundle(code: string): string {
  return `(async () => {
  const exports = {};
  const module = { exports };
  ${code}
  return exports.handler(medplum, event);
})();`;
}

let lambdaRuns = 0;

/**
 * Runs a built bot the way Medplum's AWS Lambda runtime does (the server's default, and hosted
 * Medplum's): the bundle is saved as `user.cjs` next to a wrapper, loaded with Node's own
 * `require`, and `userCode.handler(medplum, event)` is called, with Node's globals all present.
 * (The wrapper builds its MedplumClient from the event's access token; here the test's client is
 * passed in, which is what the handler receives either way.)
 * @param distPath - Path of the built bundle.
 * @param medplum - The client the handler gets.
 * @param event - The bot event.
 * @returns What the handler returned.
 */
export async function runLambdaStyle(distPath: string, medplum: MedplumClient, event: BotEvent): Promise<unknown> {
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const { resolve } = await import('node:path');
  // Inside the project, so that `require("@medplum/core")` resolves from node_modules as the layer's does.
  const dir = resolve(`node_modules/.cache/lambda-style/${process.pid}-${lambdaRuns++}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/user.cjs`, readFileSync(distPath, 'utf8'));
  writeFileSync(
    `${dir}/index.cjs`,
    `const userCode = require("./user.cjs");
exports.handler = async (medplum, event) => {
  const { bot, requester, input, contentType, secrets, traceId, headers } = event;
  return userCode.handler(medplum, { bot, requester, input, contentType, secrets, traceId, headers });
};`
  );
  const wrapper = createRequire(`${dir}/index.cjs`)(`${dir}/index.cjs`) as { handler(m: MedplumClient, e: BotEvent): Promise<unknown> };
  return wrapper.handler(medplum, event);
}
