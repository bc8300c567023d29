import { runMain } from '../cli/main-wrapper.js';
import { ctkMain } from '../cli/ctk.js';

await runMain('nvidia-ctk', () => ctkMain(process.argv.slice(2)));
