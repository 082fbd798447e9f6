import type { FetchedScenario } from './oci-registry.port';

/** What a deployed stack tells players. */
export interface StackOutputs {
  connectionInfo: string;
  flags: string[];
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
 * Deploys scenarios with an infrastructure-as-code engine.
 *
 * - `validate` checks the scenario's shape and previews it; leaves nothing behind.
 * - `up` creates the stack or updates it in place. If it fails, what it created is destroyed and
 *   the stack removed before the error is thrown (no orphans).
 * - `destroy` removes every resource and the stack; destroying a missing stack succeeds.
 * - Errors: ScenarioInvalidError (the scenario's fault), IacTimeoutError (it outlived the
 *   operation timeout and was cancelled), IacOperationError (the deployment failed).
 * - State lives under the data directory, so any replica can update or destroy any stack.
 */
export abstract class IacEngine {
  abstract validate(scenario: FetchedScenario, additional: Record<string, string>): Promise<void>;
  abstract up(request: UpRequest, signal?: AbortSignal): Promise<StackOutputs>;
  abstract destroy(stack: StackRef, signal?: AbortSignal): Promise<void>;
  /** Every stack that exists (deployed, or left by an operation that never finished). */
  abstract listStacks(): Promise<StackRef[]>;
}
