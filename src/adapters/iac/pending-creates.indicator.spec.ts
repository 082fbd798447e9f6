import { describe, expect, it } from 'vitest';
import { FakeIacEngine } from '../../../test/support/fakes/fake-iac-engine';
import { PendingCreatesIndicator } from './pending-creates.indicator';

describe('PendingCreatesIndicator', () => {
  it('should pass when no create was left pending', async () => {
    await expect(new PendingCreatesIndicator(new FakeIacEngine()).check()).resolves.toBeUndefined();
  });

  it('should fail, not critically, naming every resource when creates were left pending', async () => {
    const iac = new FakeIacEngine();
    const at = new Date(0).toISOString();
    iac.pending.push(
      { challengeId: 'c', identity: 'a'.repeat(16), urn: 'urn:one', foundAt: at },
      { challengeId: 'c', identity: 'b'.repeat(16), urn: 'urn:two', foundAt: at },
    );
    const indicator = new PendingCreatesIndicator(iac);
    expect(indicator.critical).toBe(false);
    await expect(indicator.check()).rejects.toThrow(/2 resource\(s\).*urn:one, urn:two/);
  });
});
