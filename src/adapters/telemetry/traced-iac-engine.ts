import {
  IacEngine,
  type FetchedScenario,
  type PendingCreate,
  type StackOutputs,
  type StackRef,
  type UpRequest,
} from '../../shared/ports';
import { ATTR, inSpan, recordDuration } from '../../shared/telemetry';

/**
 * IacEngine decorator: a child span per Pulumi operation, `scenario.validation` (upstream's
 * name; attr reference), `pulumi.up` and `pulumi.destroy` (attrs challenge_id, identity,
 * reference), and the `iac.up.duration` / `iac.destroy.duration` histograms. Outputs (flags,
 * connection_info) are never put on spans.
 */
export class TracedIacEngine extends IacEngine {
  constructor(private readonly inner: IacEngine) {
    super();
  }

  validate(scenario: FetchedScenario, additional: Record<string, string>): Promise<void> {
    return inSpan(
      'scenario.validation',
      { [ATTR.reference]: scenario.reference, digest: scenario.digest },
      () => this.inner.validate(scenario, additional),
    );
  }

  up(request: UpRequest, signal?: AbortSignal): Promise<StackOutputs> {
    return this.measured('up', request, { [ATTR.reference]: request.scenario.reference }, () =>
      this.inner.up(request, signal),
    );
  }

  destroy(stack: StackRef, signal?: AbortSignal): Promise<void> {
    return this.measured('destroy', stack, {}, () => this.inner.destroy(stack, signal));
  }

  adopt(stack: StackRef, deployment: unknown, signal?: AbortSignal): Promise<void> {
    return inSpan(
      'pulumi.import',
      { [ATTR.challengeId]: stack.challengeId, [ATTR.identity]: stack.identity },
      () => this.inner.adopt(stack, deployment, signal),
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

  private measured<T>(
    op: 'up' | 'destroy',
    stack: StackRef,
    extra: Record<string, string>,
    work: () => Promise<T>,
  ): Promise<T> {
    const started = performance.now();
    const attributes = {
      [ATTR.challengeId]: stack.challengeId,
      [ATTR.identity]: stack.identity,
      ...extra,
    };
    let outcome = 'error';
    return inSpan(`pulumi.${op}`, attributes, async () => {
      try {
        const result = await work();
        outcome = 'ok';
        return result;
      } finally {
        recordDuration(`iac.${op}.duration`, started, { challenge: stack.challengeId, outcome });
      }
    });
  }
}
