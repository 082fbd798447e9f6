import { Logger } from '@nestjs/common';
import { ConcurrencyGate, currentPriority } from '../../shared/concurrency-gate';
import {
  IacEngine,
  type FetchedScenario,
  type PendingCreate,
  type StackOutputs,
  type StackRef,
  type UpRequest,
} from '../../shared/ports';

/**
 * IacEngine decorator: every operation (preview, up, destroy) waits for a slot of one gate, so
 * no more than its limit of Pulumi CLIs run at once whatever arrives. Player and operator
 * requests go first; background work (pool spin-ups, janitor sweeps, see `inBackground`) waits.
 * Challenges take turns within a priority. Only IaC work waits here: claims, reads and renewals
 * never reach it. Listing stacks and pending creates, and reclaiming leftovers, read and remove
 * files without Pulumi and are not gated.
 */
export class GatedIacEngine extends IacEngine {
  private readonly logger = new Logger('IacEngine');

  constructor(
    private readonly inner: IacEngine,
    private readonly gate: ConcurrencyGate,
  ) {
    super();
  }

  validate(scenario: FetchedScenario, additional: Record<string, string>): Promise<void> {
    return this.gated(
      'preview',
      `scenario ${scenario.reference}`,
      scenario.reference,
      undefined,
      () => this.inner.validate(scenario, additional),
    );
  }

  up(request: UpRequest, signal?: AbortSignal): Promise<StackOutputs> {
    return this.gated('up', stackOf(request), request.challengeId, signal, () =>
      this.inner.up(request, signal),
    );
  }

  destroy(stack: StackRef, signal?: AbortSignal): Promise<void> {
    return this.gated('destroy', stackOf(stack), stack.challengeId, signal, () =>
      this.inner.destroy(stack, signal),
    );
  }

  adopt(stack: StackRef, deployment: unknown, signal?: AbortSignal): Promise<void> {
    return this.gated('import', stackOf(stack), stack.challengeId, signal, () =>
      this.inner.adopt(stack, deployment, signal),
    );
  }

  listStacks(): Promise<StackRef[]> {
    return this.inner.listStacks();
  }

  pendingCreates(): Promise<PendingCreate[]> {
    return this.inner.pendingCreates();
  }

  reclaimLeftovers(): Promise<number> {
    return this.inner.reclaimLeftovers();
  }

  private gated<T>(
    operation: string,
    what: string,
    key: string,
    signal: AbortSignal | undefined,
    work: () => Promise<T>,
  ): Promise<T> {
    const priority = currentPriority();
    return this.gate.run(
      {
        key,
        priority,
        signal,
        onQueued: () =>
          this.logger.log(
            `${operation} of ${what} waiting for an IaC slot (${priority}; ${this.gate.running} running, ${this.gate.waiting} waiting, limit ${this.gate.limit})`,
          ),
      },
      work,
    );
  }
}

const stackOf = (stack: StackRef): string =>
  `instance ${stack.identity} of challenge ${stack.challengeId}`;
