import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IacOperationError, ScenarioInvalidError } from '../../src/shared/errors';
import type { IacEngine, StackRef } from '../../src/shared/ports/iac-engine.port';
import type { FetchedScenario } from '../../src/shared/ports/oci-registry.port';

/** An IaC engine and the scenarios the contract deploys with it. */
export interface IacEngineUnderTest {
  engine: IacEngine;
  /**
   * A scenario that deploys quickly and whose outputs depend on the identity (connection info)
   * and on the additional (the fixtures make `{ flags: '2' }` change them).
   */
  scenario: FetchedScenario;
  /**
   * A scenario whose `up` fails after creating a resource (the deployment's fault, not the
   * scenario's shape). Called before each use, so a scripted engine can arm its failure.
   */
  failingUp: () => FetchedScenario;
  /** Whatever the engine made of a stack outside its state (a resource left running, files). */
  leftOf: (stack: StackRef) => string[];
  cleanup: () => Promise<void>;
}

/**
 * The promised behaviour of {@link IacEngine} that the services build on, for every adapter:
 * the FakeIacEngine of the unit tests from its unit spec, the Pulumi adapter (real CLI, real
 * scenarios) from its e2e spec. Each test deploys its own stacks under a fresh challenge id.
 */
export function iacEngineContract(name: string, make: () => Promise<IacEngineUnderTest>): void {
  describe(`${name} (IacEngine contract)`, () => {
    let subject: IacEngineUnderTest;
    let engine: IacEngine;
    let scratch: string;

    beforeAll(async () => {
      subject = await make();
      engine = subject.engine;
      scratch = mkdtempSync(join(tmpdir(), 'cm-iac-contract-'));
    });
    afterAll(async () => {
      await subject?.cleanup();
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    });

    /** A stack of its own: a fresh challenge id, a fresh 16-hex identity. */
    const aStack = (): StackRef => ({
      challengeId: `contract-${randomUUID()}`,
      identity: randomBytes(8).toString('hex'),
    });
    const listed = async (stack: StackRef): Promise<boolean> =>
      (await engine.listStacks()).some(
        (s) => s.challengeId === stack.challengeId && s.identity === stack.identity,
      );
    /** A directory with files but no Pulumi.yaml: not a scenario. */
    const notAScenario = (): FetchedScenario => {
      const directory = mkdtempSync(join(scratch, 'not-a-scenario-'));
      writeFileSync(join(directory, 'index.js'), "exports.connection_info = 'x';\n");
      return {
        reference: 'registry.local/contract/not-a-scenario:v1',
        digest: `sha256:${randomBytes(32).toString('hex')}`,
        directory,
      };
    };

    describe('validate', () => {
      it('should resolve and leave no stack when the scenario is valid', async () => {
        const before = await engine.listStacks();
        await expect(engine.validate(subject.scenario, { flags: '2' })).resolves.toBeUndefined();
        expect(await engine.listStacks()).toEqual(before);
      });

      it('should reject with ScenarioInvalidError when the directory holds no Pulumi.yaml', async () => {
        await expect(engine.validate(notAScenario(), {})).rejects.toBeInstanceOf(
          ScenarioInvalidError,
        );
      });
    });

    describe('up', () => {
      it('should return a connection info and string flags, and list the stack', async () => {
        const stack = aStack();
        const out = await engine.up({ ...stack, scenario: subject.scenario, additional: {} });
        expect(out.connectionInfo).toEqual(expect.any(String));
        expect(out.connectionInfo).not.toBe('');
        expect(out.flags.every((f) => typeof f === 'string')).toBe(true);
        expect(await listed(stack)).toBe(true);
        await engine.destroy(stack);
      });

      it('should answer different outputs for two stacks of one scenario, and keep them apart', async () => {
        const [a, b] = [aStack(), aStack()];
        const [outA, outB] = await Promise.all(
          [a, b].map((s) => engine.up({ ...s, scenario: subject.scenario, additional: {} })),
        );
        expect(outA!.connectionInfo).not.toBe(outB!.connectionInfo);
        await engine.destroy(a);
        expect([await listed(a), await listed(b)]).toEqual([false, true]);
        await engine.destroy(b);
      });

      it('should update the stack in place when called again, with the outputs of the new additional', async () => {
        const stack = aStack();
        const first = await engine.up({ ...stack, scenario: subject.scenario, additional: {} });
        const again = await engine.up({ ...stack, scenario: subject.scenario, additional: {} });
        expect(again).toEqual(first);
        const updated = await engine.up({
          ...stack,
          scenario: subject.scenario,
          additional: { flags: '2' },
        });
        expect(updated).not.toEqual(first);
        const mine = (await engine.listStacks()).filter((s) => s.challengeId === stack.challengeId);
        expect(mine).toEqual([stack]);
        await engine.destroy(stack);
      });

      it('should reject with IacOperationError and leave no stack nor resource when a fresh up fails', async () => {
        const stack = aStack();
        await expect(
          engine.up({ ...stack, scenario: subject.failingUp(), additional: {} }),
        ).rejects.toBeInstanceOf(IacOperationError);
        expect(await listed(stack)).toBe(false);
        expect(subject.leftOf(stack)).toEqual([]);
      });

      it('should keep the stack, for destroy to remove, when an update of it fails', async () => {
        const stack = aStack();
        await engine.up({ ...stack, scenario: subject.scenario, additional: {} });
        await expect(
          engine.up({ ...stack, scenario: subject.failingUp(), additional: {} }),
        ).rejects.toBeInstanceOf(IacOperationError);
        expect(await listed(stack)).toBe(true);
        await engine.destroy(stack);
        expect(await listed(stack)).toBe(false);
        expect(subject.leftOf(stack)).toEqual([]);
      });

      it('should reject with ScenarioInvalidError and leave no stack when the directory holds no Pulumi.yaml', async () => {
        const stack = aStack();
        await expect(
          engine.up({ ...stack, scenario: notAScenario(), additional: {} }),
        ).rejects.toBeInstanceOf(ScenarioInvalidError);
        expect(await listed(stack)).toBe(false);
      });

      it('should reject and leave no stack when the signal is already aborted', async () => {
        const stack = aStack();
        const controller = new AbortController();
        controller.abort(new Error('client went away'));
        await expect(
          engine.up({ ...stack, scenario: subject.scenario, additional: {} }, controller.signal),
        ).rejects.toThrow();
        expect(await listed(stack)).toBe(false);
      });
    });

    describe('destroy', () => {
      it('should remove the stack and what it deployed', async () => {
        const stack = aStack();
        await engine.up({ ...stack, scenario: subject.scenario, additional: {} });
        await engine.destroy(stack);
        expect(await listed(stack)).toBe(false);
        expect(subject.leftOf(stack)).toEqual([]);
      });

      it('should succeed when the stack does not exist, and when called twice', async () => {
        const missing = aStack();
        await expect(engine.destroy(missing)).resolves.toBeUndefined();
        const stack = aStack();
        await engine.up({ ...stack, scenario: subject.scenario, additional: {} });
        await engine.destroy(stack);
        await expect(engine.destroy(stack)).resolves.toBeUndefined();
        expect(await listed(stack)).toBe(false);
      });
    });

    describe('after clean operations', () => {
      it('should list no pending create and reclaim no leftover', async () => {
        const stack = aStack();
        await engine.up({ ...stack, scenario: subject.scenario, additional: {} });
        await engine.destroy(stack);
        expect(
          (await engine.pendingCreates()).filter((p) => p.identity === stack.identity),
        ).toEqual([]);
        await expect(engine.reclaimLeftovers()).resolves.toBe(0);
      });
    });
  });
}
