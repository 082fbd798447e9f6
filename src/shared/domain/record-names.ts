import { createHash } from 'node:crypto';

// upstream: ctfer-io/chall-manager pkg/fs: ids are hashed into directory and key names, which keeps
// them path-safe whatever the id holds.
export const md5Hex = (s: string): string => createHash('md5').update(s).digest('hex');

/**
 * How reports (logs, `/healthcheck`) name an instance record: its path relative to DIR in
 * upstream's layout, which the operator can look up on disk.
 */
export const instanceRecordName = (challengeId: string, identity: string): string =>
  `chall/${md5Hex(challengeId)}/instance/${identity}/info.json`;
