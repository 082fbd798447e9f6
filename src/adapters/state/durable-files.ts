import { randomBytes } from 'node:crypto';
import {
  access as accessCallback,
  close as closeCallback,
  fsync as fsyncCallback,
  open as openCallback,
  readdir as readdirCallback,
  read as readCallback,
  write as writeCallback,
} from 'node:fs';
import { mkdir, rename, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Crash-safe file operations of the records kept under DIR (instance and challenge records, flag
 * records): a reader sees the old file or the new one, never a torn one, and what a crash leaves
 * is a dot-named scratch entry no listing reads.
 */

/** Our temp files and tombstones start with a dot so no listing can mistake them for records. */
export const TEMP_MARK = '.tmp-';
export const TOMBSTONE_PREFIX = '.deleted-';

export function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string'
    ? err.code
    : undefined;
}

export const isNotFound = (err: unknown): boolean => {
  const code = errnoCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
};

/*
 * Reads go through the callback API: listings make thousands of them, and fs/promises' readFile
 * costs about twice as much per file (a FileHandle, more thread-pool round trips).
 */

export function exists(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    // access, not stat: no Stats object is built for a yes or no.
    accessCallback(path, (err) => {
      if (err === null) resolve(true);
      else if (isNotFound(err)) resolve(false);
      else reject(err);
    });
  });
}

/** Bytes asked by a read's first call: a record fits, so a read is open, one read, close. */
const FIRST_READ = 16 * 1024;

/**
 * The file's text, or undefined when it does not exist. fs.readFile stats the file first to
 * size its buffer: one thread-pool round trip more per record. Here a read that fills less than
 * it asked for is the end of the file (records are replaced by rename, never grown in place).
 */
export async function readIfExists(path: string): Promise<string | undefined> {
  let fd: number;
  try {
    fd = await openFd(path, 'r');
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  try {
    const chunks: Buffer[] = [];
    for (let size = FIRST_READ; ; size *= 2) {
      const buffer = Buffer.allocUnsafe(size);
      const read = await readFd(fd, buffer);
      chunks.push(buffer.subarray(0, read));
      if (read < size) break;
    }
    return chunks.length === 1
      ? chunks[0]!.toString('utf8')
      : Buffer.concat(chunks).toString('utf8');
  } finally {
    await closeFd(fd);
  }
}

export function readdirIfExists(path: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    readdirCallback(path, (err, names) => {
      if (err === null) resolve(names);
      else if (isNotFound(err)) resolve([]);
      else reject(err);
    });
  });
}

/**
 * `fn` over `items`, at most `limit` at a time, results in the order of `items`. A sliding
 * window: the next item starts as soon as one finishes, not when a whole batch has.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      out[index] = await fn(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export const scratchSuffix = (): string => `${process.pid}-${randomBytes(6).toString('hex')}`;

/**
 * Temp file in the same directory, fsync, rename over the target, fsync the directory. With
 * `mkdir`, a missing directory is created (as `ensureDir`) when the temp file finds none: most
 * writes replace a file in a directory that exists, and are spared the mkdir and its stat.
 */
export async function writeAtomic(
  path: string,
  data: string,
  mode: number,
  opts: { mkdir?: boolean } = {},
): Promise<void> {
  const staged = await stageAtomic(path, data, mode, opts);
  await staged.commit();
}

/** A file written and flushed beside its target, not yet in place. */
export interface StagedFile {
  /** Renames it over the target and flushes the directory (writeAtomic's second half). */
  commit(): Promise<void>;
  /** Removes it; the target stays as it was. */
  discard(): Promise<void>;
}

/**
 * writeAtomic's first half: the temp file written and flushed, the target untouched. Lets a
 * caller flush it while other work is in flight (a claim), and put it in place or drop it once
 * that work decided.
 */
export async function stageAtomic(
  path: string,
  data: string,
  mode: number,
  opts: { mkdir?: boolean } = {},
): Promise<StagedFile> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}${TEMP_MARK}${scratchSuffix()}`);
  try {
    try {
      await writeAndSync(tmp, data, mode);
    } catch (err) {
      if (opts.mkdir !== true || !isNotFound(err)) throw err;
      await ensureDir(dir);
      await writeAndSync(tmp, data, mode);
    }
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  const discard = (): Promise<void> => unlink(tmp).catch(() => undefined);
  return {
    commit: async () => {
      try {
        await rename(tmp, path);
      } catch (err) {
        await discard();
        throw err;
      }
      await fsyncDir(dir);
    },
    discard,
  };
}

/*
 * Writes and flushes go through the callback API too: a claim makes about a dozen of them, and a
 * FileHandle of fs/promises costs an object, its GC tracking and a promise per step.
 */

function openFd(path: string, flags: string, mode?: number): Promise<number> {
  return new Promise((resolve, reject) => {
    openCallback(path, flags, mode, (err, fd) => (err === null ? resolve(fd) : reject(err)));
  });
}

/** Reads into all of `buffer` from the file's current position; the bytes read. */
function readFd(fd: number, buffer: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    readCallback(fd, buffer, 0, buffer.length, null, (err, read) =>
      err === null ? resolve(read) : reject(err),
    );
  });
}

function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fsyncCallback(fd, (err) => (err === null ? resolve() : reject(err)));
  });
}

function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    closeCallback(fd, (err) => (err === null ? resolve() : reject(err)));
  });
}

/** Writes all of `data` at the file's start (a write may take fewer bytes than asked). */
async function writeAll(fd: number, data: Buffer): Promise<void> {
  for (let done = 0; done < data.length;) {
    done += await new Promise<number>((resolve, reject) => {
      writeCallback(fd, data, done, data.length - done, done, (err, written) =>
        err === null ? resolve(written) : reject(err),
      );
    });
  }
}

/** Creates `path` exclusively (O_EXCL), writes `data` and fsyncs it. */
export async function writeAndSync(path: string, data: string, mode: number): Promise<void> {
  const fd = await openFd(path, 'wx', mode);
  try {
    await writeAll(fd, Buffer.from(data, 'utf8'));
    await fsyncFd(fd);
  } finally {
    await closeFd(fd);
  }
}

/** Creates the empty file `path` exclusively (O_EXCL), not flushed; false when it exists. */
export async function createEmpty(path: string, mode: number): Promise<boolean> {
  let fd: number;
  try {
    fd = await openFd(path, 'wx', mode);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return false;
    throw err;
  }
  await closeFd(fd);
  return true;
}

/** mkdir -p, then fsync the parents of what was created so the new entries survive a crash. */
export async function ensureDir(path: string): Promise<void> {
  const first = await mkdir(path, { recursive: true, mode: 0o700 });
  await Promise.all(parentsOfCreated(path, first).map(fsyncDir));
}

/**
 * Renames the directory to a tombstone (atomic), then removes the tombstone. A crash midway
 * leaves only a tombstone, which no listing reads and startup removes.
 */
export async function removeDirDurably(dir: string): Promise<void> {
  const tombstone = join(dirname(dir), `${TOMBSTONE_PREFIX}${basename(dir)}-${scratchSuffix()}`);
  try {
    await rename(dir, tombstone);
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  await fsyncDir(dirname(dir));
  await rm(tombstone, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * The directories that gained an entry when `mkdir -p path` created `first` (undefined: nothing
 * was created) and everything below it down to `path`.
 */
export function parentsOfCreated(path: string, first: string | undefined): string[] {
  const parents: string[] = [];
  if (first === undefined) return parents;
  for (let dir = path; ; dir = dirname(dir)) {
    parents.push(dirname(dir));
    if (dir === first || dirname(dir) === dir) break;
  }
  return parents;
}

/** fsync a directory so a rename or new entry in it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  let fd: number | undefined;
  try {
    fd = await openFd(dir, 'r');
    await fsyncFd(fd);
  } catch (err) {
    // Some filesystems (and platforms) cannot fsync a directory; the rename is still atomic.
    const code = errnoCode(err);
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw err;
  } finally {
    if (fd !== undefined) await closeFd(fd);
  }
}
