import { Span } from 'nestjs-otel/lib/tracing/decorators/span';
import {
  IacEngine,
  type FetchedScenario,
  type PendingCreate,
  type StackOutputs,
  type StackRef,
  type UpRequest,
} from '../../shared/ports';
import { ATTR, type ServiceMetrics } from '../../shared/telemetry';

const stackAttributes = (stack: StackRef): Record<string, string> => ({
  [ATTR.challengeId]: stack.challengeId,
  [ATTR.identity]: stack.identity,
});

/**
 * IacEngine decorator: a child span per Pulumi operation, `scenario.validation` (upstream's
 * name; attr reference), `pulumi.up` and `pulumi.destroy` (attrs challenge_id, identity,
 * reference), and the `iac.up.duration` / `iac.destroy.duration` histograms. Outputs (flags,
 * connection_info) are never put on spans.
 */
export class TracedIacEngine extends IacEngine {
  constructor(
    private readonly inner: IacEngine,
    private readonly metrics: ServiceMetrics,
  ) {
    super();
  }

  @Span(
    'scenario.validation',
    (scenario: FetchedScenario, _additional: Record<string, string>) => ({
      attributes: { [ATTR.reference]: scenario.reference, digest: scenario.digest },
    }),
  )
  validate(scenario: FetchedScenario, additional: Record<string, string>): Promise<void> {
    return this.inner.validate(scenario, additional);
  }

  @Span('pulumi.up', (request: UpRequest) => ({
    attributes: { ...stackAttributes(request), [ATTR.reference]: request.scenario.reference },
  }))
  up(request: UpRequest, signal?: AbortSignal): Promise<StackOutputs> {
    return this.metrics.timed('iac.up.duration', { challenge: request.challengeId }, () =>
      this.inner.up(request, signal),
    );
  }

  @Span('pulumi.destroy', (stack: StackRef) => ({ attributes: stackAttributes(stack) }))
  destroy(stack: StackRef, signal?: AbortSignal): Promise<void> {
    return this.metrics.timed('iac.destroy.duration', { challenge: stack.challengeId }, () =>
      this.inner.destroy(stack, signal),
    );
  }

  @Span('pulumi.import', (stack: StackRef, _deployment: unknown, _signal?: AbortSignal) => ({
    attributes: stackAttributes(stack),
  }))
  adopt(stack: StackRef, deployment: unknown, signal?: AbortSignal): Promise<void> {
    return this.inner.adopt(stack, deployment, signal);
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
}
