import { runMain } from '../cli/main-wrapper.js';
import { containerCliMain } from '../cli/container-cli.js';

await runMain('nvidia-container-cli', () => containerCliMain(process.argv.slice(2)));
