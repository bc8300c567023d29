import yargs, { type Argv } from 'yargs';
import { isNvrError, NvrError } from '../errors.js';

/**
 * A yargs parser with our conventions: strict, usage errors become NvrError('INPUT') (one line, exit 1) instead of
 * yargs printing the whole help and exiting on its own, and output written through the injected `print`.
 */
export function baseParser(argv: string[], scriptName: string): Argv {
  return yargs(argv)
    .scriptName(scriptName)
    .strict()
    .help()
    .version(false)
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .exitProcess(false)
    .fail((msg, err) => {
      // Our own errors pass through; yargs' (a missing option value, a bad choice) become one usage line.
      if (err && isNvrError(err)) throw err;
      if (err && err.name !== 'YError') throw err;
      throw new NvrError('INPUT', msg ?? err?.message ?? 'invalid command line', { fix: `see ${scriptName} --help` });
    });
}
