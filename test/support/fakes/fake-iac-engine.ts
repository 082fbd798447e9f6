import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { IacOperationError, ScenarioInvalidError } from '../../../src/shared/errors';
import type { FetchedScenario } from '../../../src/shared/ports/oci-registry.port';
import {
  IacEngine,
  type PendingCreate,
  type StackOutputs,
  type StackRef,
  type UpRequest,
} from '../../../src/shared/ports/iac-engine.port';
import { deferred, type Deferred } from '../../contract/helpers';

/** A stack the fake holds, as the last successful `up` left it. */
export interface FakeStack {
  challengeId: string;
  identity: string;
  /** The merged additional the program was given. */
  additional: Record<string, string>;
  scenarioReference: string;
  scenarioDigest: string;
  /** How many successful `up` this stack has seen (1 = created, more = updated in place). */
  ups: number;
}

/** One call, in the order the engine saw it (successful or not). */
export type FakeIacCall =
  | { op: 'validate'; reference: string; additional: Record<string, string> }
  | { op: 'up'; challengeId: string; identity: string }
  | { op: 'destroy'; challengeId: string; identity: string }
  | { op: 'adopt'; challengeId: string; identity: string };

/** What `up` answers for a stack: deterministic, and different when the additional differs. */
export function fakeConnectionInfo(identity: string, additional: Record<string, string>): string {
  const sorted = Object.fromEntries(
    Object.entries(additional).sort(([a], [b]) => a.localeCompare(b)),
  );
  return `nc ${identity}.fake 1337 ${JSON.stringify(sorted)}`;
}

const keyOf = (stack: StackRef): string => `${stack.challengeId}/${stack.identity}`;

/** What the real engine says of a scenario directory without a project file, else nothing. */
function notAScenario(scenario: FetchedScenario): ScenarioInvalidError | undefined {
  const { directory } = scenario;
  if (existsSync(join(directory, 'Pulumi.yaml')) || existsSync(join(directory, 'Pulumi.yml'))) {
    return undefined;
  }
  return new ScenarioInvalidError(scenario.reference, 'no Pulumi.yaml or Pulumi.yml at the root');
}

/**
 * Stateful IacEngine double: keeps the stacks it deployed, keyed `challengeId/identity`, with
 * their additional and scenario digest. Honours the port's contract (test/contract): a failed
 * `up` of a new stack leaves no stack, a failed update leaves the stack as it was, a scenario
 * directory without `Pulumi.yaml` is ScenarioInvalidError, destroying a missing stack succeeds. Failures, delays and gates are scriptable so
 * services can be driven through their error and concurrency paths.
 */
export class FakeIacEngine implements IacEngine {
  readonly stacks = new Map<string, FakeStack>();
  readonly calls: FakeIacCall[] = [];
  /** Flags every `up` outputs. */
  flags: string[] = ['CTF{fake-flag}'];
  /**
   * Readiness probes every `up` outputs, as a function of the identity (undefined: none, as a
   * scenario without a `readiness` output).
   */
  readiness: ((identity: string) => string[]) | undefined = undefined;
  /** Real-time delay of each `up` (ms), to widen race windows. */
  upDelayMs = 0;

  private readonly upFailures: Error[] = [];
  private readonly upFailuresOf = new Map<string, Error>();
  private readonly destroyFailures = new Map<string, Error>();
  private validateFailure: Error | undefined;
  private readonly upGate = new Gate();
  private readonly destroyGate = new Gate();

  get upCount(): number {
    return this.calls.filter((c) => c.op === 'up').length;
  }

  get destroyCount(): number {
    return this.calls.filter((c) => c.op === 'destroy').length;
  }

  get validateCount(): number {
    return this.calls.filter((c) => c.op === 'validate').length;
  }

  /** Every IaC call made so far. */
  get totalCalls(): number {
    return this.calls.length;
  }

  /** The next `up` fails with `err` (queued: call twice to fail two). */
  failNextUp(err: Error = new IacOperationError('up', 'fake')): void {
    this.upFailures.push(err);
  }

  /** The next `up` of stack `identity` fails with `err` (other stacks are unaffected). */
  failNextUpOf(identity: string, err: Error = new IacOperationError('up', identity)): void {
    this.upFailuresOf.set(identity, err);
  }

  /** Every `destroy` of `identity` fails with `err` until {@link clearDestroyFailure}. */
  failDestroyOf(identity: string, err: Error = new IacOperationError('destroy', identity)): void {
    this.destroyFailures.set(identity, err);
  }

  clearDestroyFailure(identity: string): void {
    this.destroyFailures.delete(identity);
  }

  /** The next `validate` fails with `err`. */
  failNextValidate(err: Error): void {
    this.validateFailure = err;
  }

  /** From now on every `up` waits at the gate until {@link releaseUps}. */
  holdUps(): void {
    this.upGate.hold();
  }

  /** Opens the gate: held and future `up` calls proceed. */
  releaseUps(): void {
    this.upGate.release();
  }

  /** Resolves once `count` `up` calls are waiting at the gate (bound it with a timeout). */
  whenHeld(count: number): Promise<void> {
    return this.upGate.whenHeld(count);
  }

  /** From now on every `destroy` waits at its gate until {@link releaseDestroys}. */
  holdDestroys(): void {
    this.destroyGate.hold();
  }

  releaseDestroys(): void {
    this.destroyGate.release();
  }

  /** Resolves once `count` `destroy` calls are waiting at the gate. */
  whenDestroysHeld(count: number): Promise<void> {
    return this.destroyGate.whenHeld(count);
  }

  stackOf(challengeId: string, identity: string): FakeStack | undefined {
    return this.stacks.get(keyOf({ challengeId, identity }));
  }

  /** Stacks of one challenge. */
  listStacks(): Promise<StackRef[]> {
    return Promise.resolve(
      [...this.stacks.values()].map((s) => ({ challengeId: s.challengeId, identity: s.identity })),
    );
  }

  /** What `pendingCreates` lists; a test puts there what a dead `up` would have left. */
  readonly pending: PendingCreate[] = [];
  /** Pending creates to record when `destroy` runs on these identities (a crashed `up`'s). */
  readonly pendingOnDestroy = new Map<string, string[]>();
  /** What the next `reclaimLeftovers` reports. */
  leftovers = 0;

  pendingCreates(): Promise<PendingCreate[]> {
    return Promise.resolve([...this.pending]);
  }

  reclaimLeftovers(): Promise<number> {
    const n = this.leftovers;
    this.leftovers = 0;
    return Promise.resolve(n);
  }

  stacksOf(challengeId: string): FakeStack[] {
    return [...this.stacks.values()].filter((s) => s.challengeId === challengeId);
  }

  validate(scenario: FetchedScenario, additional: Record<string, string>): Promise<void> {
    this.calls.push({
      op: 'validate',
      reference: scenario.reference,
      additional: { ...additional },
    });
    const failure = this.validateFailure ?? notAScenario(scenario);
    this.validateFailure = undefined;
    return failure === undefined ? Promise.resolve() : Promise.reject(failure);
  }

  async up(request: UpRequest, signal?: AbortSignal): Promise<StackOutputs> {
    this.calls.push({ op: 'up', challengeId: request.challengeId, identity: request.identity });
    await this.upGate.pass();
    if (this.upDelayMs > 0) await new Promise((r) => setTimeout(r, this.upDelayMs));
    signal?.throwIfAborted();
    const invalid = notAScenario(request.scenario);
    const failure =
      invalid ??
      (this.upFailuresOf.has(request.identity)
        ? this.upFailuresOf.get(request.identity)
        : this.upFailures.shift());
    if (invalid === undefined) this.upFailuresOf.delete(request.identity);
    const previous = this.stacks.get(keyOf(request));
    if (failure !== undefined) {
      // As the real engine: a failed `up` of a new stack leaves nothing behind; a failed update
      // leaves the stack as it was, for a later `up` or `destroy`.
      throw failure;
    }
    this.stacks.set(keyOf(request), {
      challengeId: request.challengeId,
      identity: request.identity,
      additional: { ...request.additional },
      scenarioReference: request.scenario.reference,
      scenarioDigest: request.scenario.digest,
      ups: (previous?.ups ?? 0) + 1,
    });
    return {
      connectionInfo: fakeConnectionInfo(request.identity, request.additional),
      flags: [...this.flags],
      ...(this.readiness === undefined ? {} : { readiness: this.readiness(request.identity) }),
    };
  }

  async destroy(stack: StackRef, signal?: AbortSignal): Promise<void> {
    this.calls.push({ op: 'destroy', challengeId: stack.challengeId, identity: stack.identity });
    await this.destroyGate.pass();
    signal?.throwIfAborted();
    const failure = this.destroyFailures.get(stack.identity);
    if (failure !== undefined) throw failure;
    for (const urn of this.pendingOnDestroy.get(stack.identity) ?? []) {
      this.pending.push({ ...stack, urn, foundAt: new Date(0).toISOString() });
    }
    this.stacks.delete(keyOf(stack));
  }

  /** Adopted stacks start as if `up` had run once, with what upstream's deployment says. */
  adopt(stack: StackRef, deployment: unknown, signal?: AbortSignal): Promise<void> {
    this.calls.push({ op: 'adopt', challengeId: stack.challengeId, identity: stack.identity });
    signal?.throwIfAborted();
    const failure = this.adoptFailures.get(stack.identity);
    if (failure !== undefined) return Promise.reject(failure);
    this.adopted.set(keyOf(stack), deployment);
    if (!this.stacks.has(keyOf(stack))) {
      this.stacks.set(keyOf(stack), {
        challengeId: stack.challengeId,
        identity: stack.identity,
        additional: {},
        scenarioReference: 'upstream',
        scenarioDigest: 'upstream',
        ups: 1,
      });
    }
    return Promise.resolve();
  }

  /** Deployments adopted, keyed `challengeId/identity`. */
  readonly adopted = new Map<string, unknown>();
  /** `adopt` of these identities fails with the given error. */
  readonly adoptFailures = new Map<string, Error>();
}

/** Holds calls while closed; counts the held ones so tests can wait for them (bounded). */
export class Gate {
  private open: Deferred<void> | undefined;
  private held = 0;
  private waiters: { count: number; resolve: () => void }[] = [];

  hold(): void {
    this.open ??= deferred();
  }

  release(): void {
    this.open?.resolve();
    this.open = undefined;
  }

  whenHeld(count: number): Promise<void> {
    if (this.held >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  async pass(): Promise<void> {
    const open = this.open;
    if (!open) return;
    this.held++;
    for (const w of this.waiters.filter((x) => x.count <= this.held)) w.resolve();
    this.waiters = this.waiters.filter((x) => x.count > this.held);
    await open.promise;
    this.held--;
  }
}
