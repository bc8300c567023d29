import { isNvrError } from '../errors.js';

/**
 * The one top-level error handler of a CLI binary: a typed error becomes one line on stderr and its exit code;
 * anything else is a bug, reported in one line too (with the stack only when NVIDIA_CTK_DEBUG is set).
 */
export async function runMain(program: string, main: () => Promise<number | void>): Promise<void> {
  try {
    const code = await main();
    if (code !== undefined) process.exitCode = code; // commands may also set process.exitCode themselves
  } catch (e) {
    if (isNvrError(e)) {
      process.stderr.write(`${program}: ${e.userMessage()}\n`);
      process.exitCode = e.exitCode;
      return;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    process.stderr.write(`${program}: internal error: ${err.message}\n`);
    if (process.env.NVIDIA_CTK_DEBUG) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 2;
  }
}
