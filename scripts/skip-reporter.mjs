// A node:test reporter that writes one JSON line per skipped test or suite ({file, name, reason})
// and nothing else; scripts/run-tests.mjs runs it beside the spec reporter and judges the lines with
// scripts/skip-policy.mjs after the run.
export default async function* skipReporter(source) {
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { skip, name, file } = event.data;
    if (skip === undefined || skip === false) continue;
    yield `${JSON.stringify({ file: file ?? '', name, reason: skip })}\n`;
  }
}
