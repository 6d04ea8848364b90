// Strict command-line parsing for every command of this project: an unknown flag, a missing value or
// a stray argument is exit code 2 before anything else happens; `--help` prints the usage and exits 0.
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | undefined>;

/** How a command takes words that are not options. */
export interface Positionals {
  /** Whether the command takes them at all (default: no, a stray word is a mistake). */
  allow: boolean;
}

/**
 * Parses a command's arguments.
 * @param argv - The arguments after the command.
 * @param options - Its options (`--help` is added).
 * @param usage - The usage text.
 * @param print - Where usage and errors go: `out` for --help, `err` for a mistake.
 * @param print.out - Standard output.
 * @param print.err - Standard error.
 * @param positionals - Whether words that are not options are taken (e.g. `settings set NAME=VALUE`).
 * @returns The values, or the exit code to return at once.
 */
export function parseCommandLine(
  argv: string[],
  options: Options,
  usage: string,
  print: { out: (text: string) => void; err: (text: string) => void } = { out: (t) => console.log(t), err: (t) => console.error(t) },
  positionals: Positionals = { allow: false }
): { values: Values; positionals: string[] } | { exit: number } {
  let values: Values;
  let words: string[];
  try {
    const parsed = parseArgs({ args: argv, strict: true, allowPositionals: positionals.allow, options: { ...options, help: { type: 'boolean' } } });
    values = parsed.values;
    words = parsed.positionals;
  } catch (err) {
    print.err(`${(err as Error).message}\n\n${usage}`);
    return { exit: 2 };
  }
  if (values.help) {
    print.out(usage);
    return { exit: 0 };
  }
  return { values, positionals: words };
}
