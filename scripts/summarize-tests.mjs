// Sums vitest JSON reports into the closing line CI reads: "N passed, N failed".
// Usage: node scripts/summarize-tests.mjs <failed-static-checks> <report.json>...
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';

const [checkFailures, ...reports] = process.argv.slice(2);
let passed = 0;
let failed = Number(checkFailures) || 0;
for (const file of reports) {
  if (!existsSync(file)) {
    console.log(`${basename(file)}: no report (the suite did not run)`);
    failed += 1;
    continue;
  }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  const suiteFailed =
    r.numFailedTests + (r.numFailedTestSuites > 0 && r.numFailedTests === 0 ? 1 : 0);
  console.log(
    `${basename(file, '.json')}: ${r.numPassedTests} passed, ${suiteFailed} failed, ${r.numPendingTests + r.numTodoTests} skipped`,
  );
  passed += r.numPassedTests;
  failed += suiteFailed;
  // A skipped test is a defect here, not progress.
  failed += r.numPendingTests + r.numTodoTests;
}
if (passed + failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
