import { OciRegistry, type FetchedScenario } from '../../shared/ports';
import { ATTR, inSpan } from '../../shared/telemetry';

/** OciRegistry decorator: child spans `scenario.resolve` and `scenario.pull` (attr reference). */
export class TracedOciRegistry extends OciRegistry {
  constructor(private readonly inner: OciRegistry) {
    super();
  }

  checkReference(reference: string): void {
    this.inner.checkReference(reference);
  }

  resolve(reference: string, signal?: AbortSignal): Promise<string> {
    return inSpan('scenario.resolve', { [ATTR.reference]: reference }, async (span) => {
      const digest = await this.inner.resolve(reference, signal);
      span.setAttribute('digest', digest);
      return digest;
    });
  }

  fetchScenario(
    reference: string,
    signal?: AbortSignal,
    recordedDigest?: string,
  ): Promise<FetchedScenario> {
    return inSpan('scenario.pull', { [ATTR.reference]: reference }, async (span) => {
      const fetched = await this.inner.fetchScenario(reference, signal, recordedDigest);
      span.setAttribute('digest', fetched.digest);
      return fetched;
    });
  }
}
