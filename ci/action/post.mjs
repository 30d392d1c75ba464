// The action's post step (after every other step of the job): stop.sh waits for the queue, then
// stops the daemon.
import { runScript } from './run-script.mjs';

runScript('stop.sh');
