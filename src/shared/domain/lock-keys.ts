import { md5Hex as md5 } from './record-names';

/** A key of the distributed lock; built only here so every replica derives the same names. */
export type LockKey = string & { readonly __lockKey: unique symbol };

// upstream: ctfer-io/chall-manager pkg/fs and pkg/lock (md5 of ids keep keys path-safe).
export const lockKeys = {
  challenge: (challengeId: string) => `chall/${md5(challengeId)}` as LockKey,
  /** Serialises the work of one source on one challenge (create/delete/renew of its instance). */
  source: (challengeId: string, sourceId: string) =>
    `chall/${md5(challengeId)}/src/${md5(sourceId)}` as LockKey,
  instance: (challengeId: string, identity: string) =>
    `chall/${md5(challengeId)}/inst/${md5(identity)}` as LockKey,
  janitor: () => 'janitor' as LockKey,
  /** Appends to the event journal: one writer at a time keeps event ids monotonic. */
  events: () => 'events' as LockKey,
  /** Held by the replica delivering webhooks, so deliveries stay in order. */
  webhook: () => 'webhook' as LockKey,
};
