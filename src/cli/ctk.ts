/**
 * `nvidia-ctk`: the admin CLI. Each subcommand lives in its own module; this file only composes them.
 */
import { mockDriverCommand } from './mock-driver-command.js';
import { baseParser } from './yargs-base.js';

export async function ctkMain(argv: string[]): Promise<number> {
  await baseParser(argv, 'nvidia-ctk')
    .usage('$0 <command> [options]')
    .command(mockDriverCommand)
    .demandCommand(1, 'a command is required (see nvidia-ctk --help)')
    .parseAsync();
  return 0;
}
