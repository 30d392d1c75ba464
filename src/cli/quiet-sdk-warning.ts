// Imported first by main.ts, before the AWS SDK loads. The SDK warns on every start that its
// releases after early 2027 will need Node 22; loft pins its SDK version in the lockfile, so the
// warning says nothing actionable to a user and would clutter every command's output and the
// service's journal. Every other process warning is still printed.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  // The SDK emits it as a plain 'Warning' whose message starts with the name, so match both.
  if (warning.name === 'NodeVersionSupportWarning' || warning.message.startsWith('NodeVersionSupportWarning'))
    return;
  process.stderr.write(`${warning.name}: ${warning.message}\n`);
});
