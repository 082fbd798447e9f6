import * as Automation from '@pulumi/pulumi/automation';
import { describe, expect, it } from 'vitest';
import { ConcurrentUpdateError, PulumiCommand, StackNotFoundError } from './pulumi-automation';

describe('pulumi-automation (the Automation API loaded at first use)', () => {
  it("should answer false for any error when the SDK's error classes are checked before its first use", () => {
    expect(new Error('stack not found') instanceof StackNotFoundError).toBe(false);
    expect(new Error('update in progress') instanceof ConcurrentUpdateError).toBe(false);
  });

  it("should recognise exactly the SDK's own errors once a call has loaded it", async () => {
    // A CLI under a root that does not exist: the call fails, but only after loading the SDK.
    await expect(
      PulumiCommand.get({ root: '/nonexistent/pulumi', skipVersionCheck: true }),
    ).rejects.toThrow();
    const notFound = Object.create(Automation.StackNotFoundError.prototype) as Error;
    const concurrent = Object.create(Automation.ConcurrentUpdateError.prototype) as Error;
    expect(notFound instanceof StackNotFoundError).toBe(true);
    expect(notFound instanceof ConcurrentUpdateError).toBe(false);
    expect(concurrent instanceof ConcurrentUpdateError).toBe(true);
    expect(new Error('x') instanceof StackNotFoundError).toBe(false);
  });
});
