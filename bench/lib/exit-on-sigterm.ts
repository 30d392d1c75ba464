// Imported (`node --import`) into a server the bench profiles: a SIGTERM ends the process through
// process.exit, so Node writes its --cpu-prof profile (a signal's default action would not).
// Node 24 runs this TypeScript file directly: it has no type syntax to strip.
process.on('SIGTERM', () => process.exit(0));
export {};
