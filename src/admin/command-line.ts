// Strict command-line parsing for every command of this project: an unknown flag, a missing value or
// a stray argument is exit code 2 before anything else happens; `--help` prints the usage and exits 0.
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | undefined>;

/**
 * Parses a command's arguments.
 * @param argv - The arguments after the command.
 * @param options - Its options (`--help` is added).
 * @param usage - The usage text.
 * @param print - Where usage and errors go: `out` for --help, `err` for a mistake.
 * @param print.out - Standard output.
 * @param print.err - Standard error.
 * @returns The values, or the exit code to return at once.
 */
export function parseCommandLine(
  argv: string[],
  options: Options,
  usage: string,
  print: { out: (text: string) => void; err: (text: string) => void } = { out: (t) => console.log(t), err: (t) => console.error(t) }
): { values: Values } | { exit: number } {
  let values: Values;
  try {
    values = parseArgs({ args: argv, strict: true, allowPositionals: false, options: { ...options, help: { type: 'boolean' } } }).values;
  } catch (err) {
    print.err(`${(err as Error).message}\n\n${usage}`);
    return { exit: 2 };
  }
  if (values.help) {
    print.out(usage);
    return { exit: 0 };
  }
  return { values };
}
