import { afterAll, beforeAll, expect } from 'vitest';
import { leftoversOfThisRun, ticksNow } from '../../support/leftover-processes';

// Each e2e file must stop what it started: services, Pulumi's processes, and the resources of
// the instances it created (a flag server keeps serving its flag until its instance is deleted).
// Checked after the file's own clean-up hooks, which run before this one; what is found is
// killed, so one file's leak does not fail the next.
let since = 0;

beforeAll(() => {
  since = ticksNow();
});

afterAll(async () => {
  const left = await leftoversOfThisRun(since);
  expect(left, 'processes this file left running (killed)').toBe('');
});
