/**
 * `nvidia-ctk`: the admin CLI. Each subcommand lives in its own module; this file only composes them.
 */
import { explainCommand } from './explain-command.js';
import { mockDriverCommand } from './mock-driver-command.js';
import { baseParser } from './yargs-base.js';

export async function ctkMain(argv: string[]): Promise<void> {
  await baseParser(argv, 'nvidia-ctk')
    .usage('$0 <command> [options]')
    .command(mockDriverCommand)
    .command(explainCommand)
    .demandCommand(1, 'a command is required (see nvidia-ctk --help)')
    .parseAsync();
}
