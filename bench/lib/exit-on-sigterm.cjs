// Preloaded (`node -r`) into a server the bench profiles: a SIGTERM ends the process through
// process.exit, so Node writes its --cpu-prof profile (a signal's default action would not).
process.on('SIGTERM', () => process.exit(0));
