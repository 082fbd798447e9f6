export { HttpOciRegistry } from './http-oci-registry.adapter';
export {
  DEFAULT_OCI_LIMITS,
  DEFAULT_OCI_REQUEST_TIMEOUT_MS,
  DEFAULT_OCI_TRANSFER_TIMEOUT_MS,
  type HttpOciRegistryOptions,
  type OciLimits,
} from './http-oci-registry.options';
export { parseOciReference, type OciReference } from './oci-reference';
