/** Bounds on what one scenario pull may download and write. */
export interface OciLimits {
  /** Largest single layer (file), in bytes. */
  maxLayerBytes: number;
  /** Most layers a manifest may list. */
  maxLayers: number;
  /** Largest sum of layer sizes, in bytes. */
  maxTotalBytes: number;
}

/** What HttpOciRegistry needs; built from AppConfig by the module that binds the port. */
export interface HttpOciRegistryOptions {
  /** Upstream `CACHE`; scenarios are unpacked under `<cacheDir>/oci/`. */
  cacheDir: string;
  /** Plain HTTP instead of HTTPS (upstream `OCI_INSECURE`). */
  insecure: boolean;
  /** Basic credentials, used only when both are non-empty (upstream `OCI_USERNAME`/`OCI_PASSWORD`). */
  username?: string;
  password?: string;
  limits: OciLimits;
  /** Time allowed for response headers, and then between two chunks of a body. */
  requestTimeoutMs: number;
  /**
   * Time allowed for a whole resolve, pull or push, however steadily bytes arrive
   * (default DEFAULT_OCI_TRANSFER_TIMEOUT_MS).
   */
  transferTimeoutMs?: number;
}

/**
 * The defaults of OCI_MAX_LAYER_SIZE, OCI_MAX_LAYERS, OCI_MAX_TOTAL_SIZE, OCI_TIMEOUT and
 * OCI_TRANSFER_TIMEOUT (the configuration reads them from here), also used by the push CLI.
 */
export const DEFAULT_OCI_LIMITS: Readonly<OciLimits> = Object.freeze({
  maxLayerBytes: 64 * 1024 * 1024,
  maxLayers: 256,
  maxTotalBytes: 256 * 1024 * 1024,
});

export const DEFAULT_OCI_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_OCI_TRANSFER_TIMEOUT_MS = 5 * 60_000;
