// The action's main step: start.sh writes the config and starts the loft daemon.
import { runScript } from './run-script.mjs';

runScript('start.sh');
