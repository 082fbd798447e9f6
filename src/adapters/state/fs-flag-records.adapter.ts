import { Logger } from '@nestjs/common';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { link, readFile, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { IDENTITY_PATTERN, type Claimed, type Instance } from '../../shared/domain/instance';
import { md5Hex } from '../../shared/domain/record-names';
import { FlagRecords, type StagedWrite } from '../../shared/ports/flag-records.port';
import {
  TEMP_MARK,
  ensureDir,
  errnoCode,
  fsyncDir,
  isNotFound,
  readIfExists,
  readdirIfExists,
  removeDirDurably,
  scratchSuffix,
  writeAndSync,
  stageAtomic,
  writeAtomic,
} from './durable-files';

/** Options of {@link FsFlagRecords}. */
export interface FsFlagRecordsOptions {
  /** DIR: records live under `<dir>/flag`. */
  dir: string;
  /** FLAG_HASH_KEY; undefined: generated once in `<dir>/flag/key`. */
  hashKey?: string;
  /** How long the flags of a deleted instance stay valid. */
  retentionMs: number;
  /**
   * A live record whose instance is gone is marked deleted only once it is older than this
   * (default 5 minutes): a record is written just before its instance, so a young one may belong
   * to an instance being saved.
   */
  orphanAfterMs?: number;
}

const FLAG_SUBDIR = 'flag';
const KEY_FILE = 'key';
const DEFAULT_ORPHAN_AFTER_MS = 5 * 60_000;
const HASH_PATTERN = /^[0-9a-f]{64}$/;

const flagRecord = z.object({
  challenge_id: z.string(),
  source_id: z.string(),
  identity: z.string().regex(IDENTITY_PATTERN),
  since: z.string(),
  until: z.string().optional(),
  deleted_at: z.string().optional(),
  /** HMAC-SHA256 (hex) of each current flag. */
  flags: z.array(z.string().regex(HASH_PATTERN)),
  /** Flags a redeployment replaced: valid until `at` + retention, as a deleted instance's. */
  retired: z.array(z.object({ hash: z.string().regex(HASH_PATTERN), at: z.string() })),
});
type FlagRecord = z.output<typeof flagRecord>;

const serialize = (r: FlagRecord): string => `${JSON.stringify(r)}\n`;

/** A stage with nothing to write (the record is already as it would be). */
const UNCHANGED: StagedWrite = {
  commit: () => Promise.resolve(),
  discard: () => Promise.resolve(),
};

/**
 * Flag records as files, beside the instance records:
 *
 * ```
 * <dir>/flag/key                                      (generated HMAC key, 0600)
 * <dir>/flag/<md5_hex(challenge_id)>/<identity>.json  (one per claimed instance, 0600)
 * ```
 *
 * Written as the state store writes (temp file + fsync + rename). A record's writers are the
 * holders of its instance's lock, and the janitor's purge, which only touches records whose
 * instance is gone.
 */
export class FsFlagRecords extends FlagRecords {
  private readonly logger = new Logger(FsFlagRecords.name);
  private readonly root: string;
  private key?: Promise<Buffer>;

  constructor(private readonly opts: FsFlagRecordsOptions) {
    super();
    this.root = join(opts.dir, FLAG_SUBDIR);
  }

  async stage(instance: Claimed<Instance>, at: Date): Promise<StagedWrite> {
    const path = this.recordPath(instance.challengeId, instance.identity);
    const previous = await this.read(path);
    const hashes = await Promise.all(
      [...new Set(instance.flags)].map((f) => this.hash(instance.challengeId, f)),
    );
    const dropped = (previous?.flags ?? []).filter((h) => !hashes.includes(h));
    const next: FlagRecord = {
      challenge_id: instance.challengeId,
      source_id: instance.sourceId,
      identity: instance.identity,
      since: instance.since.toISOString(),
      ...(instance.until === undefined ? {} : { until: instance.until.toISOString() }),
      flags: hashes,
      retired: [
        ...(previous?.retired ?? []).filter(
          (r) => !hashes.includes(r.hash) && !this.expired(r.at, at),
        ),
        ...dropped.map((hash) => ({ hash, at: at.toISOString() })),
      ],
    };
    // Most saves (renewals aside) change nothing here: spare them a flushed write.
    if (previous !== undefined && serialize(previous) === serialize(next)) return UNCHANGED;
    return stageAtomic(path, serialize(next), 0o600, { mkdir: true });
  }

  async markDeleted(challengeId: string, identity: string, at: Date): Promise<void> {
    const path = this.recordPath(challengeId, identity);
    const previous = await this.read(path);
    if (previous === undefined || previous.deleted_at !== undefined) return;
    await writeAtomic(path, serialize({ ...previous, deleted_at: at.toISOString() }), 0o600);
  }

  async removeChallenge(challengeId: string): Promise<void> {
    await removeDirDurably(join(this.root, md5Hex(challengeId)));
  }

  async sourcesOf(challengeId: string, flag: string, now: Date): Promise<string[]> {
    const wanted = Buffer.from(await this.hash(challengeId, flag), 'hex');
    const sources = new Set<string>();
    for (const { record } of await this.recordsOf(md5Hex(challengeId))) {
      if (record.challenge_id !== challengeId) continue;
      // Every stored hash is compared, in constant time each: how long a check takes says
      // nothing about which record, or which of its flags, matched.
      let match = false;
      for (const hash of this.validHashes(record, now)) {
        if (timingSafeEqual(Buffer.from(hash, 'hex'), wanted)) match = true;
      }
      if (match) sources.add(record.source_id);
    }
    return [...sources].sort();
  }

  async purge(
    now: Date,
    isLive: (challengeId: string, identity: string) => Promise<boolean>,
  ): Promise<number> {
    let removed = 0;
    for (const dir of await readdirIfExists(this.root)) {
      if (!/^[0-9a-f]{32}$/.test(dir)) continue;
      for (const { path, record, mtimeMs } of await this.recordsOf(dir)) {
        if (record.deleted_at === undefined) {
          if (now.getTime() - mtimeMs < (this.opts.orphanAfterMs ?? DEFAULT_ORPHAN_AFTER_MS)) {
            continue;
          }
          // A live instance's record is its lock holders' to write (its expired `retired`
          // entries go at its next save): rewriting it here could undo a concurrent save.
          if (await isLive(record.challenge_id, record.identity)) continue;
          await this.markDeleted(record.challenge_id, record.identity, now);
          continue;
        }
        if (!this.expired(record.deleted_at, now)) continue;
        await unlink(path).catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        });
        removed++;
      }
      await this.removeStaleScratch(join(this.root, dir), now);
    }
    return removed;
  }

  /** Hashes of `record` that still check as valid at `now`. */
  private validHashes(record: FlagRecord, now: Date): string[] {
    const current =
      record.deleted_at === undefined || !this.expired(record.deleted_at, now) ? record.flags : [];
    return [
      ...current,
      ...record.retired.filter((r) => !this.expired(r.at, now)).map((r) => r.hash),
    ];
  }

  private expired(since: string, now: Date): boolean {
    return now.getTime() > new Date(since).getTime() + this.opts.retentionMs;
  }

  /** HMAC-SHA256 of the challenge id (length-prefixed, so no two pairs collide) and the flag. */
  private async hash(challengeId: string, flag: string): Promise<string> {
    return createHmac('sha256', await this.hashKey())
      .update(`${Buffer.byteLength(challengeId, 'utf8')}:${challengeId}`, 'utf8')
      .update(flag, 'utf8')
      .digest('hex');
  }

  private hashKey(): Promise<Buffer> {
    this.key ??= (
      this.opts.hashKey !== undefined
        ? Promise.resolve(Buffer.from(this.opts.hashKey, 'utf8'))
        : this.loadOrCreateKey()
    ).catch((err: unknown) => {
      // Not remembered: the next call tries again.
      this.key = undefined;
      throw err;
    });
    return this.key;
  }

  /**
   * The key file, created once: written to a temp file, then hard-linked into place, which
   * fails when the file exists, so replicas racing to create it all end up reading the same key.
   */
  private async loadOrCreateKey(): Promise<Buffer> {
    const path = join(this.root, KEY_FILE);
    const existing = await readIfExists(path);
    if (existing !== undefined) return this.parseKey(existing);
    await ensureDir(this.root);
    const tmp = join(this.root, `.${KEY_FILE}${TEMP_MARK}${scratchSuffix()}`);
    await writeAndSync(tmp, `${randomBytes(32).toString('hex')}\n`, 0o600);
    try {
      await link(tmp, path);
      await fsyncDir(this.root);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    return this.parseKey(await readFile(path, 'utf8'));
  }

  private parseKey(text: string): Buffer {
    const hex = text.trim();
    if (!/^([0-9a-f]{2}){16,}$/.test(hex)) {
      throw new Error(`${FLAG_SUBDIR}/${KEY_FILE} does not hold a hex key of at least 16 bytes`);
    }
    return Buffer.from(hex, 'hex');
  }

  private recordPath(challengeId: string, identity: string): string {
    if (!IDENTITY_PATTERN.test(identity)) throw new Error(`invalid instance identity ${identity}`);
    return join(this.root, md5Hex(challengeId), `${identity}.json`);
  }

  private async read(path: string): Promise<FlagRecord | undefined> {
    const text = await readIfExists(path);
    return text === undefined ? undefined : flagRecord.parse(JSON.parse(text));
  }

  /** The readable records of a challenge directory; unreadable ones are skipped with a warning. */
  private async recordsOf(
    dir: string,
  ): Promise<{ path: string; record: FlagRecord; mtimeMs: number }[]> {
    const out: { path: string; record: FlagRecord; mtimeMs: number }[] = [];
    for (const name of (await readdirIfExists(join(this.root, dir))).sort()) {
      if (name.startsWith('.') || !name.endsWith('.json')) continue;
      const path = join(this.root, dir, name);
      try {
        const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
        out.push({ path, record: flagRecord.parse(JSON.parse(text)), mtimeMs: st.mtimeMs });
      } catch (err) {
        if (isNotFound(err)) continue;
        this.logger.warn(`skipping flag record ${FLAG_SUBDIR}/${dir}/${name}: ${String(err)}`);
      }
    }
    return out;
  }

  /** Temp files of writes a crash interrupted (older than the orphan delay: surely dead). */
  private async removeStaleScratch(dir: string, now: Date): Promise<void> {
    for (const name of await readdirIfExists(dir)) {
      if (!name.startsWith('.') || !name.includes(TEMP_MARK)) continue;
      const path = join(dir, name);
      const st = await stat(path).catch(() => undefined);
      if (st === undefined) continue;
      if (now.getTime() - st.mtimeMs < (this.opts.orphanAfterMs ?? DEFAULT_ORPHAN_AFTER_MS)) {
        continue;
      }
      await rm(path, { force: true });
    }
  }
}
