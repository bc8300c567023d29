/**
 * `nvidia-ctk`: the admin CLI. Each subcommand lives in its own module; this file only composes them.
 */
import { cdiCommand } from './cdi-command.js';
import { configCommand } from './config-command.js';
import { doctorCommand } from './doctor-command.js';
import { explainCommand } from './explain-command.js';
import { mockDriverCommand } from './mock-driver-command.js';
import { runtimeCommand } from './runtime-command.js';
import { systemCommand } from './system-command.js';
import { baseParser } from './yargs-base.js';

export async function ctkMain(argv: string[]): Promise<void> {
  await baseParser(argv, 'nvidia-ctk')
    .usage('$0 <command> [options]')
    .command(mockDriverCommand)
    .command(explainCommand)
    .command(cdiCommand)
    .command(runtimeCommand)
    .command(configCommand)
    .command(systemCommand)
    .command(doctorCommand)
    .demandCommand(1, 'a command is required (see nvidia-ctk --help)')
    .parseAsync();
}
