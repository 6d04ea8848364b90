// Progress of a long command: a bar on a terminal (cli-progress), one line per phase and per wait
// otherwise, so a log file or CI output does not fill with redrawn bars.
import { SingleBar } from 'cli-progress';

/** What a long command reports. */
export interface Progress {
  /** A new phase starts (e.g. "histories", 1,200 Tasks). */
  phase(name: string, total: number): void;
  /** Items done in the current phase. */
  tick(done: number): void;
  /** Waiting this many seconds for the FHIR quota to reset. */
  waiting(seconds: number): void;
  done(): void;
}

/**
 * Progress on a stream: a redrawn bar when it is a terminal, plain lines otherwise.
 * @param stream - Usually process.stderr.
 * @returns The reporter.
 */
export function terminalProgress(stream: NodeJS.WriteStream): Progress {
  if (!stream.isTTY) {
    let current = '';
    return {
      phase: (name, total) => {
        current = name;
        stream.write(`sla-export: reading ${name}${total ? ` (${total})` : ''}\n`);
      },
      tick: () => undefined,
      waiting: (seconds) => stream.write(`sla-export: waiting ${seconds} s for the FHIR quota to reset (${current})\n`),
      done: () => undefined,
    };
  }
  const bar = new SingleBar({ stream, format: '{phase} [{bar}] {value}/{total} {note}', hideCursor: true, clearOnComplete: false });
  let started = false;
  return {
    phase: (name, total) => {
      if (started) {
        bar.stop();
      }
      bar.start(total, 0, { phase: name.padEnd(9), note: '' });
      started = true;
    },
    tick: (done) => bar.update(done, { note: '' }),
    waiting: (seconds) => bar.update({ note: `waiting ${seconds} s for the FHIR quota to reset` }),
    done: () => {
      if (started) {
        bar.stop();
        started = false;
      }
    },
  };
}
