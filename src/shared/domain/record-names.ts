import { createHash } from 'node:crypto';

/** Bounds of the memo: a few thousand ids of a CTF's size, cleared rather than grown past it. */
const MD5_MEMO_SIZE = 20_000;
const MD5_MEMO_MAX_ID = 256;
const md5Memo = new Map<string, string>();

// upstream: ctfer-io/chall-manager pkg/fs: ids are hashed into directory and key names, which keeps
// them path-safe whatever the id holds.
export function md5Hex(s: string): string {
  let hex = md5Memo.get(s);
  if (hex === undefined) {
    hex = createHash('md5').update(s).digest('hex');
    // A claim hashes the same few ids about ten times (lock keys, index and flag paths).
    if (s.length <= MD5_MEMO_MAX_ID) {
      if (md5Memo.size >= MD5_MEMO_SIZE) md5Memo.clear();
      md5Memo.set(s, hex);
    }
  }
  return hex;
}

/**
 * How reports (logs, `/healthcheck`) name an instance record: its path relative to DIR in
 * upstream's layout, which the operator can look up on disk.
 */
export const instanceRecordName = (challengeId: string, identity: string): string =>
  `chall/${md5Hex(challengeId)}/instance/${identity}/info.json`;
