import type { FetchedScenario } from './oci-registry.port';

/** What a deployed stack tells players. */
export interface StackOutputs {
  connectionInfo: string;
  flags: string[];
  /** The `readiness` probes the stack exports, if any (checked by `parseReadiness`). */
  readiness?: string[];
}

/** One stack: the instance `identity` of challenge `challengeId`, deployed from `scenario`. */
export interface StackRef {
  challengeId: string;
  identity: string;
}

export interface UpRequest extends StackRef {
  scenario: FetchedScenario;
  /** The merged additional (challenge under instance), given to the program as JSON. */
  additional: Record<string, string>;
  /** Values never to log (the instance's current flags and connection info, on an update). */
  secrets?: string[];
}

/**
 * A resource whose creation was under way when its Pulumi process died (a crash, a `kill -9`,
 * a full disk): Pulumi drops such pending creates from the state on its next run, so the
 * resource may still exist with nothing left to destroy it. An operator must check it by hand.
 */
export interface PendingCreate extends StackRef {
  /** Pulumi URN of the resource. */
  urn: string;
  /** When it was found (RFC 3339). */
  foundAt: string;
}

/**
 * Deploys scenarios with an infrastructure-as-code engine.
 *
 * - `validate` checks the scenario's shape and previews it; leaves nothing behind.
 * - `up` creates the stack or updates it in place. If it fails, what it created is destroyed and
 *   the stack removed before the error is thrown (no orphans).
 * - `destroy` removes every resource and the stack; destroying a missing stack succeeds.
 * - Errors: ScenarioInvalidError (the scenario's fault), IacTimeoutError (it outlived the
 *   operation timeout and was cancelled), IacOperationError (the deployment failed).
 * - State lives under the data directory, so any replica can update or destroy any stack.
 * - Before `up` updates a stack or `destroy` removes it, creates a dead process left pending are
 *   recorded (they stay listed by `pendingCreates` until an operator clears them): such a stack
 *   is never reported clean.
 */
export abstract class IacEngine {
  abstract validate(scenario: FetchedScenario, additional: Record<string, string>): Promise<void>;
  abstract up(request: UpRequest, signal?: AbortSignal): Promise<StackOutputs>;
  abstract destroy(stack: StackRef, signal?: AbortSignal): Promise<void>;
  /**
   * Takes over a stack an upstream chall-manager (Go) deployed: imports `deployment` (the Pulumi
   * deployment upstream stored in the instance record, with or without its `{version,
   * deployment}` envelope) as the stack of `stack`, so `up` and `destroy` then manage its
   * resources. Idempotent: a stack already adopted (or ours) is left untouched, so a crash
   * after the import and before the record is rewritten is finished by calling it again.
   * Throws IacOperationError when the deployment cannot be imported.
   */
  abstract adopt(stack: StackRef, deployment: unknown, signal?: AbortSignal): Promise<void>;
  /** Every stack that exists (deployed, or left by an operation that never finished). */
  abstract listStacks(): Promise<StackRef[]>;
  /** Resources whose creation a dead process left pending (see {@link PendingCreate}). */
  abstract pendingCreates(): Promise<PendingCreate[]>;
  /**
   * Removes what failed operations left beside the stacks (state of a stack that has no project
   * directory, temporary files of writes that never finished). Returns how many were removed.
   */
  abstract reclaimLeftovers(): Promise<number>;
}
