import { Span } from 'nestjs-otel/lib/tracing/decorators/span';
import { OciRegistry, type FetchedScenario } from '../../shared/ports';
import { ATTR } from '../../shared/telemetry';

/** OciRegistry decorator: child spans `scenario.resolve` and `scenario.pull` (attr reference). */
export class TracedOciRegistry extends OciRegistry {
  constructor(private readonly inner: OciRegistry) {
    super();
  }

  checkReference(reference: string): void {
    this.inner.checkReference(reference);
  }

  @Span('scenario.resolve', (reference: string) => ({
    attributes: { [ATTR.reference]: reference },
    onResult: (digest: string) => ({ attributes: { digest } }),
  }))
  resolve(reference: string, signal?: AbortSignal): Promise<string> {
    return this.inner.resolve(reference, signal);
  }

  @Span('scenario.pull', (reference: string) => ({
    attributes: { [ATTR.reference]: reference },
    onResult: (fetched: FetchedScenario) => ({ attributes: { digest: fetched.digest } }),
  }))
  fetchScenario(
    reference: string,
    signal?: AbortSignal,
    recordedDigest?: string,
  ): Promise<FetchedScenario> {
    return this.inner.fetchScenario(reference, signal, recordedDigest);
  }
}
