/** A scenario pulled from a registry and unpacked in the cache. */
export interface FetchedScenario {
  /** The reference as the challenge stores it. */
  reference: string;
  /** `sha256:<hex>` of the manifest the reference resolved to. */
  digest: string;
  /** Read-only directory holding the scenario's files (root has `Pulumi.yaml`). */
  directory: string;
}

/**
 * Resolves scenario references and fetches their files into the cache (upstream `CACHE`).
 *
 * - `resolve` asks the registry every time (a re-pushed tag is seen at once).
 * - `fetchScenario` is idempotent per digest; concurrent calls for one digest share one pull, and
 *   a failed pull leaves no cache entry.
 * - Errors: OciReferenceMalformedError, OciReferenceNotFoundError, OciInteractionError, and
 *   ScenarioInvalidError for an artifact that is not a scenario we can unpack (its `problem`
 *   says what is wrong).
 * - Aborting `signal` abandons the pull; nothing half-written is left.
 */
export abstract class OciRegistry {
  /** Throws OciReferenceMalformedError when `reference` does not parse; touches no network. */
  abstract checkReference(reference: string): void;
  abstract resolve(reference: string, signal?: AbortSignal): Promise<string>;
  /**
   * `recordedDigest`: the digest the caller last saw `reference` at (the challenge's). When the
   * registry cannot be reached and that digest is in the cache, it is served from there (with
   * a warning) instead of failing; a reachable registry always has the last word.
   */
  abstract fetchScenario(
    reference: string,
    signal?: AbortSignal,
    recordedDigest?: string,
  ): Promise<FetchedScenario>;
}
