import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { link, mkdir, rm, rmdir, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join, relative, resolve, sep, isAbsolute } from 'node:path';
import { z } from 'zod';
import type { Challenge } from '../../shared/domain/challenge';
import { instanceRecordName, md5Hex as md5 } from '../../shared/domain/record-names';
import { IDENTITY_PATTERN, isClaimed, type Instance } from '../../shared/domain/instance';
import {
  StateStore,
  type ClaimSave,
  type CreationMark,
  type PoolState,
} from '../../shared/ports/state-store.port';
import { SingleFlight } from '../../shared/single-flight';
import { BulkReader, type BulkResult } from './bulk-reader';
import { SortedIds } from './sorted-ids';
import {
  TEMP_MARK,
  TOMBSTONE_PREFIX,
  createEmpty,
  ensureDir,
  errnoCode,
  exists,
  fsyncDir,
  isNotFound,
  mapLimit,
  parentsOfCreated,
  readIfExists,
  readdirIfExists,
  removeDirDurably,
  type StagedFile,
  scratchSuffix,
  stageAtomic,
  writeAndSync,
  writeAtomic,
} from './durable-files';

/** Options of {@link FsStateStore}. */
export interface FsStateStoreOptions {
  /** Upstream's `DIR`: records live under `<dir>/chall`. */
  dir: string;
  /**
   * Temp files and tombstones older than this are removed on startup (default 5 minutes).
   * Younger ones may belong to another replica's in-flight write and are left alone.
   */
  staleAfterMs?: number;
  /**
   * Told of every record listings skip (unreadable, invalid) and of each one readable again, by
   * path relative to DIR, so that none is dropped unseen (see AdoptionReport).
   */
  unreadable?: { fail(record: string, reason: string): void; resolve(record: string): void };
}

// upstream: ctfer-io/chall-manager pkg/fs (challSubdir, instanceSubdir, infoFile, claim).
const CHALL_SUBDIR = 'chall';
const INSTANCE_SUBDIR = 'instance';
const INFO_FILE = 'info.json';
const CLAIM_FILE = 'claim';
/**
 * Ours (upstream never looks there): `<challenge>/source/<md5(source)>/<identity>`, one empty
 * entry per claim, so finding a source's instance reads one small directory instead of every
 * claim file of the challenge. Written before the claim and removed after the instance, so an
 * entry may be stale (checked against the claim file) but a claim never lacks its entry.
 */
const SOURCE_SUBDIR = 'source';
/**
 * In `source/`: the index covers every claim of the challenge (created with the challenge, or
 * once the claims found on disk were indexed). Without it, lookups scan claim files as upstream.
 */
const INDEX_COMPLETE = '.complete';
const DEFAULT_STALE_AFTER_MS = 5 * 60_000;
const NS_PER_MS = 1_000_000n;
/** How long a pooled instance seen without a claim is taken as still pooled (see poolState). */
const POOL_RECHECK_MS = 1_000;
/** A challenge record modified more recently than this is read again at each load. */
const SETTLED_MS = 2_000;
/** Challenge records kept parsed at most (cleared past it: the cache only saves reads). */
const MAX_CACHED_CHALLENGES = 100_000;
/** In a source's index directory: a fresh creation of the source runs (see beginCreation). */
const CREATION_MARK = '.creating';
const CREATION_BEAT_MS = 500;
const CREATION_STALE_MS = 2_000;
/** Instance directories `FsStateStore.ourRecords` remembers at most. */
const MAX_OUR_RECORDS = 200_000;
/** Bounds open file descriptors when scanning claim files of a large challenge. */
const SCAN_CONCURRENCY = 64;

/** Go's time.Time JSON text, parsed by Date (nanoseconds are truncated to milliseconds). */
const goTime = z.string().transform((s, ctx) => {
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) {
    ctx.addIssue({ code: 'custom', message: `not an RFC 3339 time: ${s}` });
    return z.NEVER;
  }
  return d;
});
/** Go's `map[string]string` with omitempty: absent, null or an object. */
const goStringMap = z
  .record(z.string(), z.string())
  .nullish()
  .transform((m) => ({ ...(m ?? {}) }));

// upstream: ctfer-io/chall-manager pkg/fs/challenge.go Challenge (JSON tags); unknown keys ignored.
const challengeRecord = z.object({
  id: z.string(),
  scenario: z.string(),
  until: goTime.nullish(),
  // Not z.int(): Go's int64 ns exceed 2^53 from 104 days on, and JSON.parse gives a close float.
  timeout: z.number().nonnegative().refine(Number.isInteger, 'integer nanoseconds').nullish(),
  additional: goStringMap,
  min: z.number().int(),
  max: z.number().int(),
  // Ours (upstream ignores unknown keys): the digest the scenario resolved to.
  digest: z.string().nullish(),
});

// upstream: ctfer-io/chall-manager pkg/fs/instance.go Instance (JSON tags); `state` is not ours.
const instanceRecord = z.object({
  identity: z.string(),
  challenge_id: z.string(),
  since: goTime,
  last_renew: goTime,
  until: goTime.nullish(),
  connection_info: z.string(),
  flags: z.array(z.string()).nullish(),
  // upstream before `flags` (pkg/fs/instance.go `Flag *string`): the one flag.
  flag: z.string().nullish(),
  additional: goStringMap,
  // Ours (upstream ignores unknown keys): a redeployment in progress.
  pending: z
    .union([
      z.object({ operation: z.literal('recreate') }),
      z.object({
        operation: z.literal('blue_green'),
        identity: z.string().regex(IDENTITY_PATTERN),
      }),
    ])
    .nullish(),
  // Ours: the scenario's readiness probes, checked again when a pooled instance is claimed.
  readiness: z.array(z.string()).nullish(),
});

/**
 * Go's RFC3339Nano text: fraction trimmed of trailing zeros, omitted when zero, so our files
 * look like the ones upstream writes.
 */
function formatGoTime(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new Error('cannot store an invalid Date');
  return d
    .toISOString()
    .replace(/\.(\d*?)0+Z$/, '.$1Z')
    .replace(/\.Z$/, 'Z');
}

/** Exact integer nanoseconds, even past 2^53 (Go's time.Duration is an int64 of ns). */
function msToNs(ms: number): bigint {
  if (!Number.isFinite(ms)) throw new Error('cannot store a non-finite timeout');
  return Number.isInteger(ms) ? BigInt(ms) * NS_PER_MS : BigInt(Math.round(ms * 1e6));
}

function nsToMs(ns: number): number {
  const ms = ns / 1e6;
  // Past 2^53 the parsed ns are approximate anyway; whole ms is the precision we promise.
  return Number.isSafeInteger(ns) ? ms : Math.round(ms);
}

/** One `"key":value` JSON member; the key order mirrors upstream's struct field order. */
const member = (key: string, value: unknown): string =>
  `${JSON.stringify(key)}:${JSON.stringify(value)}`;

function serializeChallenge(c: Challenge): string {
  const parts = [member('id', c.id), member('scenario', c.scenario)];
  if (c.until !== undefined) parts.push(member('until', formatGoTime(c.until)));
  // Built by hand: JSON.stringify cannot write a bigint, and a Number loses ns past 104 days.
  if (c.timeoutMs !== undefined) parts.push(`"timeout":${msToNs(c.timeoutMs).toString()}`);
  if (Object.keys(c.additional).length > 0) parts.push(member('additional', c.additional));
  parts.push(member('min', c.min), member('max', c.max));
  if (c.digest !== undefined) parts.push(member('digest', c.digest));
  // Go's json.Encoder ends every value with a newline.
  return `{${parts.join(',')}}\n`;
}

/**
 * `upstreamState`: the Pulumi deployment an upstream record carried, kept (where upstream puts
 * it) until the stack is adopted, so that no write loses the only copy of it.
 */
function serializeInstance(i: Instance, upstreamState?: unknown): string {
  const doc: Record<string, unknown> = {
    identity: i.identity,
    challenge_id: i.challengeId,
  };
  if (upstreamState !== undefined) doc.state = upstreamState;
  Object.assign(doc, {
    since: formatGoTime(i.since),
    last_renew: formatGoTime(i.lastRenew),
  });
  if (i.until !== undefined) doc.until = formatGoTime(i.until);
  doc.connection_info = i.connectionInfo;
  if (i.flags.length > 0) doc.flags = i.flags;
  if (Object.keys(i.additional).length > 0) doc.additional = i.additional;
  if (i.pending !== undefined) doc.pending = i.pending;
  if (i.readiness !== undefined) doc.readiness = i.readiness;
  return `${JSON.stringify(doc)}\n`;
}

function parseChallenge(text: string): Challenge {
  const r = challengeRecord.parse(JSON.parse(text));
  const c: Challenge = {
    id: r.id,
    scenario: r.scenario,
    additional: r.additional,
    min: r.min,
    max: r.max,
  };
  if (r.timeout !== undefined && r.timeout !== null) c.timeoutMs = nsToMs(r.timeout);
  if (r.until !== undefined && r.until !== null) c.until = r.until;
  if (r.digest !== undefined && r.digest !== null) c.digest = r.digest;
  return c;
}

function parseInstance(text: string, sourceId: string | undefined): Instance {
  const r = instanceRecord.parse(JSON.parse(text));
  const i: Instance = {
    challengeId: r.challenge_id,
    identity: r.identity,
    since: r.since,
    lastRenew: r.last_renew,
    connectionInfo: r.connection_info,
    flags:
      r.flags && r.flags.length > 0 ? [...r.flags] : typeof r.flag === 'string' ? [r.flag] : [],
    additional: r.additional,
  };
  if (sourceId !== undefined) i.sourceId = sourceId;
  if (r.until !== undefined && r.until !== null) i.until = r.until;
  if (r.pending !== undefined && r.pending !== null) i.pending = r.pending;
  if (r.readiness !== undefined && r.readiness !== null) i.readiness = [...r.readiness];
  return i;
}

/** Upstream's `state` field of an instance record's text; null (no state recorded) is none. */
function upstreamStateOf(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  const doc: unknown = JSON.parse(text);
  if (typeof doc !== 'object' || doc === null || !('state' in doc)) return undefined;
  return doc.state ?? undefined;
}

/**
 * `join` for a normalised absolute directory and a plain name (no separator, no dot entry):
 * listings build a few paths per challenge, and `join`'s normalising showed in their profile.
 */
const under = (dir: string, name: string): string => `${dir}${sep}${name}`;

/** The entries of a listing that name instances, sorted. */
const identitiesIn = (names: string[]): string[] =>
  names.filter((n) => IDENTITY_PATTERN.test(n)).sort();

/** An instance directory a listing found (see `FsStateStore.instancesOf`). */
interface ListedInstance {
  /** Which of the listed challenges it belongs to. */
  at: number;
  challengeId: string;
  identity: string;
  dir: string;
  /** The source that claimed it, or why its claim file could not be read. */
  claimant: BulkResult<string>;
}

/** See `FsStateStore.poolState`. */
interface PoolSnapshot {
  /** When the scan started (Date.now()). */
  at: number;
  pooled: SortedIds;
  claimed: number;
}

/**
 * What tells one file from another at `path` (inode, size, modification and change times in
 * ns) and its modification time; undefined when there is none.
 */
async function fileStamp(path: string): Promise<{ key: string; modifiedMs: number } | undefined> {
  try {
    const st = await stat(path, { bigint: true });
    return {
      key: `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`,
      modifiedMs: Number(st.mtimeMs),
    };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** A challenge record as parsed from `text`; see `FsStateStore.challengeRecords`. */
interface ParsedChallenge {
  text: string;
  challenge: Challenge;
  stamp?: string;
}

/** Records are copies (see StateStore): nobody may change a kept one. */
function copyChallenge(c: Challenge): Challenge {
  const copy: Challenge = { ...c, additional: { ...c.additional } };
  if (c.until !== undefined) copy.until = new Date(c.until.getTime());
  return copy;
}

const isOurScratch = (name: string): boolean =>
  name.startsWith('.') && (name.includes(TEMP_MARK) || name.startsWith(TOMBSTONE_PREFIX));

/**
 * Records on the local (or shared RWX) filesystem, in upstream's layout so operators' recovery
 * habits keep working (upstream issue #1046: delete `chall/md5(A)`, or the instance directory
 * whose `claim` holds the source id):
 *
 * ```
 * <dir>/chall/<md5_hex(challenge_id)>/info.json
 * <dir>/chall/<md5_hex(challenge_id)>/instance/<identity>/info.json
 * <dir>/chall/<md5_hex(challenge_id)>/instance/<identity>/claim   (source id bytes, 0600)
 * ```
 *
 * Unlike upstream (plain overwrite), every write is a temp file + fsync + rename + directory
 * fsync, deletes rename the directory to a tombstone first (so a crash never leaves a claimed
 * instance without its claim, which would make it look pooled), and claims are `link(2)`s,
 * which exactly one of several processes sharing the directory wins.
 */
@Injectable()
export class FsStateStore implements StateStore, OnModuleInit {
  private readonly logger = new Logger(FsStateStore.name);
  private readonly root: string;
  private readonly staleAfterMs: number;
  private readonly unreadable: FsStateStoreOptions['unreadable'];
  /** Per challenge, instances seen claimed (see `poolState`). */
  private readonly claimedCache = new Map<string, Set<string>>();
  /** Pool scans in flight, by challenge (see `poolState`). */
  private readonly poolScans = new SingleFlight<PoolState>();
  /** Directories of the challenges whose source index was seen complete (see `isIndexed`). */
  private readonly indexedCache = new Set<string>();
  /** Per challenge, pooled instances whose info.json was seen (see `poolState`). */
  private readonly recordedCache = new Map<string, Map<string, number>>();
  /** Per challenge, the last pool scan, kept up to date by this process's writes (see `poolState`). */
  private readonly poolSnapshots = new Map<string, PoolSnapshot>();
  /**
   * Instance directories whose info.json this process saw without upstream's Pulumi state: a
   * record of ours never gets one back (only upstream wrote it), so a save does not read the
   * record it replaces to keep it.
   */
  private readonly ourRecords = new Set<string>();
  /**
   * Per challenge, the source of each claimed instance whose claim file was read or written: a
   * claim file never changes while its instance lives and identities are never reused, so
   * listings read it once. Whether the instance still lives is read every time (its info.json).
   */
  private readonly claimants = new Map<string, Map<string, string>>();
  /**
   * Parsed challenge records by directory name, with the text they were parsed from: a record
   * read again with the same text is not parsed (nor hashed) again. `stamp`, when set, is the
   * file that text was read from, settled (see `loadChallenge`): a load whose file still has it
   * reads nothing more. One entry per challenge, shared by loads and listings.
   */
  private readonly challengeRecords = new Map<string, ParsedChallenge>();
  /** Listings read their many small files through it (see BulkReader). */
  private readonly bulk = new BulkReader();
  /** Challenge directories by challenge id (an md5 per lookup shows in profiles). */
  private readonly challengeDirs = new Map<string, string>();

  constructor(options: FsStateStoreOptions) {
    this.root = resolve(options.dir, CHALL_SUBDIR);
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    this.unreadable = options.unreadable;
  }

  /** Creates `<dir>/chall` and removes stale temp files and tombstones left by crashes. */
  async onModuleInit(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await this.removeStaleScratch();
    await this.indexAllChallenges();
  }

  /**
   * Every claim loads its challenge twice: the parsed record is kept and reused while its file is
   * the same one (inode, size, modification and change times; each write replaces the file). The
   * stamp of a file modified in the last {@link SETTLED_MS} is not kept (its text is, and is
   * compared at the next read): timestamps are coarse (a few ms) and a freed inode is soon
   * reused, so a same-sized rewrite within that time could look unchanged.
   */
  async loadChallenge(id: string): Promise<Challenge | undefined> {
    const name = md5(id);
    const path = join(this.challengeDir(id), INFO_FILE);
    const stamp = await fileStamp(path);
    const cached = this.challengeRecords.get(name);
    if (stamp === undefined) {
      this.challengeRecords.delete(name);
      return undefined;
    }
    if (cached?.stamp !== undefined && cached.stamp === stamp.key) {
      return copyChallenge(cached.challenge);
    }
    const text = await readIfExists(path);
    if (text === undefined) return undefined;
    const challenge =
      cached !== undefined && cached.text === text ? cached.challenge : parseChallenge(text);
    if (challenge.id !== id) {
      throw new Error(`challenge record ${name} holds id ${JSON.stringify(challenge.id)}`);
    }
    // The stamp is of the file seen before the read: if another one replaced it meanwhile, the
    // next load sees a different stamp and reads again.
    const settled = Date.now() - stamp.modifiedMs > SETTLED_MS;
    this.keepChallenge(name, text, challenge, settled ? stamp.key : undefined);
    return copyChallenge(challenge);
  }

  /** Keeps a parsed record (bounded: past it, forgetting only costs parses). */
  private keepChallenge(name: string, text: string, challenge: Challenge, stamp?: string): void {
    if (this.challengeRecords.size >= MAX_CACHED_CHALLENGES) this.challengeRecords.clear();
    const kept: ParsedChallenge = { text, challenge: copyChallenge(challenge) };
    if (stamp !== undefined) kept.stamp = stamp;
    this.challengeRecords.set(name, kept);
  }

  /** See {@link StateStore}. */
  async saveChallenge(challenge: Challenge): Promise<void> {
    const dir = this.challengeDir(challenge.id);
    // upstream creates instance/ with the challenge; pool spin-ups expect it.
    await ensureDir(join(dir, INSTANCE_SUBDIR));
    await this.ensureIndexed(challenge.id);
    await writeAtomic(join(dir, INFO_FILE), serializeChallenge(challenge), 0o666);
  }

  /** Removes the challenge's instance records too (upstream: the whole directory). */
  async deleteChallenge(id: string): Promise<void> {
    await removeDirDurably(this.challengeDir(id));
    this.claimedCache.delete(id);
    this.recordedCache.delete(id);
    this.poolSnapshots.delete(id);
    this.challengeRecords.delete(md5(id));
    this.claimants.delete(id);
    const gone = this.challengeDir(id) + sep;
    for (const dir of this.ourRecords) if (dir.startsWith(gone)) this.ourRecords.delete(dir);
    this.indexedCache.delete(this.challengeDir(id));
  }

  /**
   * Directories without a readable, valid info.json (half-created, hand-edited)
   * are skipped with a warning instead of failing the whole listing as upstream does.
   */
  async listChallenges(): Promise<Challenge[]> {
    const names = await this.challengeNames();
    const texts = await this.bulk.readTexts(
      names.map((n) => under(under(this.root, n), INFO_FILE)),
    );
    // Challenges gone (another replica may have deleted them) are forgotten.
    if (this.challengeRecords.size > names.length) {
      const live = new Set(names);
      for (const name of this.challengeRecords.keys())
        if (!live.has(name)) this.challengeRecords.delete(name);
    }
    return names
      .map((name, i) => this.listedChallenge(name, texts[i]))
      .filter((c): c is Challenge => c !== undefined);
  }

  /**
   * Through each challenge's source index: one directory lookup per challenge (missing for
   * almost all of them), and records read only where the source has an entry, so a source's
   * instances cost about the same over 10 or 1 000 challenges. A challenge whose index is not
   * complete is scanned as `findClaimed` does.
   */
  async findClaimedOfSource(sourceId: string): Promise<Instance[]> {
    const dirs = (await this.challengeNames()).map((name) => join(this.root, name));
    const unknown = dirs.filter((dir) => !this.indexedCache.has(dir));
    const marks = await this.bulk.readTexts(
      unknown.map((dir) => join(dir, SOURCE_SUBDIR, INDEX_COMPLETE)),
    );
    unknown.forEach((dir, i) => {
      if (typeof marks[i] === 'string') this.indexedCache.add(dir);
    });
    const indexed = dirs.filter((dir) => this.indexedCache.has(dir));
    const listings = await this.bulk.readDirs(
      indexed.map((dir) => join(dir, SOURCE_SUBDIR, md5(sourceId))),
    );
    const entries = new Map<string, string[]>();
    indexed.forEach((dir, i) => {
      const listing = listings[i];
      if (listing instanceof Error) throw listing;
      entries.set(dir, identitiesIn(listing ?? []));
    });
    // Indexed challenges without an entry of the source are done; the others are looked at.
    const candidates = dirs.filter((dir) => entries.get(dir)?.length !== 0);
    const texts = await this.bulk.readTexts(candidates.map((dir) => join(dir, INFO_FILE)));
    const challenges = candidates.map((dir, i) => this.listedChallenge(basename(dir), texts[i]));
    // Claim files of the entries, in bulk too: an entry whose claim names the source is the hit.
    const checks = candidates.flatMap((dir, i) => {
      const challenge = challenges[i];
      if (challenge === undefined) return [];
      return (entries.get(dir) ?? []).map((identity) => ({ challengeId: challenge.id, identity }));
    });
    await this.readClaimants(checks);
    const found = await mapLimit(candidates, SCAN_CONCURRENCY, (dir, i) => {
      // Only challenges listChallenges lists: a readable record whose id hashes to the name.
      const challenge = challenges[i];
      if (challenge === undefined) return Promise.resolve(undefined);
      const identities = entries.get(dir);
      return identities === undefined
        ? this.findClaimed(challenge.id, sourceId)
        : this.claimedAmong(challenge.id, sourceId, identities);
    });
    return found.filter((i): i is Instance => i !== undefined);
  }

  /** Reads, in bulk, the claim files of the instances whose claimant is not known yet. */
  private async readClaimants(
    instances: { challengeId: string; identity: string }[],
  ): Promise<void> {
    const unknown = instances.filter(
      ({ challengeId, identity }) => this.claimants.get(challengeId)?.get(identity) === undefined,
    );
    const claims = await this.bulk.readTexts(
      unknown.map(({ challengeId, identity }) =>
        join(this.instanceDir(challengeId, identity), CLAIM_FILE),
      ),
    );
    unknown.forEach(({ challengeId, identity }, i) => {
      const claim = claims[i];
      // Not an empty one (see claimantOf); unreadable ones are read again where they are needed.
      if (typeof claim === 'string' && claim !== '')
        this.rememberClaimant(challengeId, identity, claim);
    });
  }

  /** Challenge directory names, in the order listings give them. */
  private async challengeNames(): Promise<string[]> {
    return (await readdirIfExists(this.root)).filter((n) => !n.startsWith('.')).sort();
  }

  /**
   * The challenge recorded in directory `name` (`text`: its info.json as read), or undefined
   * (with a warning) when the record is missing, unreadable, invalid, or holds an id that does
   * not hash to `name`.
   */
  private listedChallenge(name: string, text: BulkResult<string>): Challenge | undefined {
    const record = `${CHALL_SUBDIR}/${name}/${INFO_FILE}`;
    const kept = this.challengeRecords.get(name);
    if (kept !== undefined && kept.text === text) {
      this.unreadable?.resolve(record);
      return copyChallenge(kept.challenge);
    }
    this.challengeRecords.delete(name);
    try {
      if (text instanceof Error) throw text;
      if (text === undefined) throw new Error(`no ${INFO_FILE}`);
      const challenge = parseChallenge(text);
      if (md5(challenge.id) !== name) {
        this.logger.warn(`skipping ${record}: its id does not hash to its directory name`);
        this.unreadable?.fail(record, 'its id does not hash to its directory name');
        return undefined;
      }
      this.unreadable?.resolve(record);
      this.keepChallenge(name, text, challenge);
      return challenge;
    } catch (err) {
      this.logger.warn(`skipping challenge directory ${name}: ${messageOf(err)}`);
      this.unreadable?.fail(record, `unreadable: ${messageOf(err)}`);
      return undefined;
    }
  }

  /** Throws a plain Error when `identity` is not 16 lowercase hex characters. */
  async loadInstance(challengeId: string, identity: string): Promise<Instance | undefined> {
    const dir = this.instanceDir(challengeId, identity);
    const [text, claimant] = await Promise.all([
      readIfExists(join(dir, INFO_FILE)),
      this.claimantOf(challengeId, identity),
    ]);
    return text === undefined ? undefined : this.instanceOf(challengeId, identity, text, claimant);
  }

  /** The record's text as an Instance; throws when it is invalid or holds other ids. */
  private instanceOf(
    challengeId: string,
    identity: string,
    text: string,
    claimant: string | undefined,
  ): Instance {
    const instance = parseInstance(text, claimant);
    if (instance.identity !== identity || instance.challengeId !== challengeId) {
      throw new Error(
        `instance record ${relative(this.root, this.instanceDir(challengeId, identity))} holds other ids`,
      );
    }
    // A false "maybe upstream's" (the text merely contains the name) only costs a read later.
    if (!text.includes('"state"')) this.markOurs(this.instanceDir(challengeId, identity));
    return instance;
  }

  /**
   * Writes info.json, then the claim file when `sourceId` is set. A record without
   * `sourceId` never removes an existing claim.
   */
  async saveInstance(instance: Instance): Promise<void> {
    const dir = this.instanceDir(instance.challengeId, instance.identity);
    const { text, ours } = await this.recordText(dir, instance);
    // info.json first: a crash in between leaves a visible pooled instance, not an invisible one.
    await writeAtomic(join(dir, INFO_FILE), text, 0o666, { mkdir: true });
    if (ours) this.markOurs(dir);
    if (!isClaimed(instance)) {
      if (!this.knownClaimed(instance.challengeId).has(instance.identity))
        this.poolSnapshots.get(instance.challengeId)?.pooled.add(instance.identity);
      return;
    }
    // Already claimed by this source (the claim step of a pooled instance wrote it): the
    // claim file never changes while the instance lives, so there is nothing to rewrite.
    const claimant = await this.claimantOf(instance.challengeId, instance.identity);
    if (claimant === instance.sourceId) return;
    await this.indexClaim(instance.challengeId, instance.sourceId, instance.identity);
    await writeAtomic(join(dir, CLAIM_FILE), instance.sourceId, 0o600);
    this.rememberClaimant(instance.challengeId, instance.identity, instance.sourceId);
    this.sawClaimed(instance.challengeId, instance.identity);
  }

  /**
   * The text of `instance`'s info.json; `ours` when it carries no upstream Pulumi state. An
   * upstream record not adopted yet keeps its state: it is the stack's only copy. Writers of one
   * record hold its lock, so nobody adopts it between this read and the write. A record seen
   * without one is not read again (see `ourRecords`).
   */
  private async recordText(
    dir: string,
    instance: Instance,
  ): Promise<{ text: string; ours: boolean }> {
    const state = this.ourRecords.has(dir)
      ? undefined
      : upstreamStateOf(await readIfExists(join(dir, INFO_FILE)));
    return { text: serializeInstance(instance, state), ours: state === undefined };
  }

  /** See {@link StateStore}. */
  async upstreamState(challengeId: string, identity: string): Promise<unknown> {
    const dir = this.instanceDir(challengeId, identity);
    return upstreamStateOf(await readIfExists(join(dir, INFO_FILE)));
  }

  /** Rewrites info.json only: the claim file is already in our format (upstream's bytes). */
  async dropUpstreamState(challengeId: string, identity: string): Promise<void> {
    const dir = this.instanceDir(challengeId, identity);
    const text = await readIfExists(join(dir, INFO_FILE));
    if (text === undefined || upstreamStateOf(text) === undefined) return;
    const instance = parseInstance(text, undefined);
    await writeAtomic(join(dir, INFO_FILE), serializeInstance(instance), 0o666);
    this.markOurs(dir);
  }

  /** See {@link StateStore}. */
  async deleteInstance(challengeId: string, identity: string): Promise<void> {
    const dir = this.instanceDir(challengeId, identity);
    const claimant = await readIfExists(join(dir, CLAIM_FILE));
    await removeDirDurably(dir);
    this.ourRecords.delete(dir);
    this.claimedCache.get(challengeId)?.delete(identity);
    this.recordedCache.get(challengeId)?.delete(identity);
    // Deletions are rare on the claim path: the next pool state scans again.
    this.poolSnapshots.delete(challengeId);
    this.claimants.get(challengeId)?.delete(identity);
    // After the instance: a crash in between leaves a stale entry, which lookups check.
    if (claimant !== undefined) await this.unindexClaim(challengeId, claimant, identity);
  }

  /** Instances whose info.json is missing (being created) or invalid are skipped. */
  async listInstances(challengeId: string): Promise<Instance[]> {
    const identities = await this.identitiesOf(challengeId);
    return (await this.instancesOf([{ challengeId, identities }]))[0] ?? [];
  }

  /**
   * Every instance directory listed through the bulk reader at once, then every record (and
   * claim file not known yet) among them read at once: QueryChallenge otherwise paid a
   * thread-pool directory read per challenge, which cost more than reading the records did.
   */
  async listInstancesOf(challengeIds: readonly string[]): Promise<Instance[][]> {
    const listings = await this.bulk.listDirs(
      challengeIds.map((id) => under(this.challengeDir(id), INSTANCE_SUBDIR)),
    );
    return this.instancesOf(
      challengeIds.map((challengeId, i) => {
        const listing = listings[i] ?? [];
        if (listing instanceof Error) throw listing;
        return { challengeId, identities: identitiesIn(listing) };
      }),
    );
  }

  /**
   * The instances of each challenge among `identities` (its instance directories), in that
   * order; records missing (being created) or invalid are skipped.
   */
  private async instancesOf(
    listed: readonly { challengeId: string; identities: string[] }[],
  ): Promise<Instance[][]> {
    const entries = listed.flatMap(({ challengeId, identities }, at) => {
      this.forgetClaimantsBut(challengeId, identities);
      const known = this.claimants.get(challengeId);
      return identities.map((identity): ListedInstance => ({
        at,
        challengeId,
        identity,
        dir: this.instanceDir(challengeId, identity),
        claimant: known?.get(identity),
      }));
    });
    const unknown = entries.filter((entry) => entry.claimant === undefined);
    const [texts, claims] = await Promise.all([
      this.bulk.readTexts(entries.map((entry) => under(entry.dir, INFO_FILE))),
      this.bulk.readTexts(unknown.map((entry) => under(entry.dir, CLAIM_FILE))),
    ]);
    unknown.forEach((entry, k) => {
      const claim = claims[k];
      entry.claimant = claim;
      // Not an empty one (see claimantOf).
      if (typeof claim === 'string' && claim !== '')
        this.rememberClaimant(entry.challengeId, entry.identity, claim);
    });
    const instances = listed.map((): Instance[] => []);
    entries.forEach(({ at, challengeId, identity, claimant }, i) => {
      const instance = this.tolerantly(challengeId, identity, () => {
        const text = texts[i];
        if (text instanceof Error) throw text;
        if (text === undefined) return undefined;
        if (claimant instanceof Error) throw claimant;
        return this.instanceOf(challengeId, identity, text, claimant);
      });
      if (instance !== undefined) instances[at]?.push(instance);
    });
    return instances;
  }

  /**
   * Through the source index: the entries of the source (usually one), each checked against
   * its claim file. A challenge whose index is not complete (records written by upstream and
   * not indexed yet) is scanned as upstream's FindInstance does.
   */
  async findClaimed(challengeId: string, sourceId: string): Promise<Instance | undefined> {
    const identities = (await this.isIndexed(challengeId))
      ? identitiesIn(await readdirIfExists(this.sourceIndexDir(challengeId, sourceId)))
      : await this.identitiesOf(challengeId);
    return this.claimedAmong(challengeId, sourceId, identities);
  }

  /** The first of `identities` (sorted) that `sourceId` claimed and whose record reads. */
  private async claimedAmong(
    challengeId: string,
    sourceId: string,
    identities: string[],
  ): Promise<Instance | undefined> {
    const claimants = await mapLimit(identities, SCAN_CONCURRENCY, (identity) =>
      this.claimantOf(challengeId, identity),
    );
    for (const [index, claimant] of claimants.entries()) {
      const identity = identities[index];
      if (claimant !== sourceId || identity === undefined) continue;
      const instance = await this.loadInstanceTolerantly(challengeId, identity);
      if (instance !== undefined) return instance;
    }
    return undefined;
  }

  /**
   * The claim file is written to a temp file, fsynced, then hard-linked into place:
   * `link(2)` fails with EEXIST when the claim exists, so of concurrent claimers, in this
   * process or another sharing the directory, exactly one wins, and a reader never sees a
   * half-written claim. False when the instance does not exist or is already claimed.
   */
  async claim(
    challengeId: string,
    identity: string,
    sourceId: string,
    save?: ClaimSave,
  ): Promise<boolean> {
    const dir = this.instanceDir(challengeId, identity);
    const claimPath = join(dir, CLAIM_FILE);
    // Both looked at side by side. A record is required (a directory without one is an instance
    // being created, not a pooled one). A claim file gives a cheap early answer for the common
    // race (someone claimed it already): no fsynced temp file; the link below stays the one
    // that decides.
    // info.json, once seen, stays until the instance goes (and then the link finds no directory).
    const seen = this.recordedCache.get(challengeId)?.has(identity) === true;
    const [recorded, taken] = await Promise.all([
      seen || exists(join(dir, INFO_FILE)),
      exists(claimPath),
    ]);
    if (!recorded) {
      this.poolSnapshots.get(challengeId)?.pooled.delete(identity);
      return false;
    }
    if (taken) {
      this.sawClaimed(challengeId, identity);
      return false;
    }
    // The index entry before the link: whoever wins it is found through the index at once.
    // The claim's temp file, and the claimed record's, are written meanwhile (flushes the link
    // must wait for, side by side).
    const tmp = join(dir, `.${CLAIM_FILE}${TEMP_MARK}${scratchSuffix()}`);
    const [indexed, written, staged] = await Promise.allSettled([
      this.indexClaim(challengeId, sourceId, identity),
      writeAndSync(tmp, sourceId, 0o600),
      save === undefined ? undefined : this.stageRecord(dir, save.record),
    ]);
    const record = staged.status === 'fulfilled' ? staged.value : undefined;
    const failed = [indexed, staged].find((step) => step.status === 'rejected');
    if (failed !== undefined) {
      await Promise.all([unlink(tmp).catch(() => undefined), record?.file.discard()]);
      // The instance directory vanished under us (deleted): nothing to claim.
      if (!isNotFound(failed.reason) || failed === indexed) throw failed.reason;
      await this.lost(challengeId, sourceId, identity);
      return false;
    }
    const won = await this.linkClaim(dir, tmp, written, sourceId);
    if (!won) {
      await Promise.all([record?.file.discard(), this.lost(challengeId, sourceId, identity)]);
      return false;
    }
    this.rememberClaimant(challengeId, identity, sourceId);
    this.sawClaimed(challengeId, identity);
    if (record !== undefined) {
      // The record's directory flush is the claim link's too (see linkClaim).
      const [committed, beside] = await Promise.allSettled([
        record.file.commit(),
        save?.alongside?.(),
      ]);
      if (committed.status === 'rejected') throw committed.reason;
      if (record.ours) this.markOurs(dir);
      if (beside.status === 'rejected') throw beside.reason;
    }
    return true;
  }

  /** A claim's record written and flushed beside its info.json, not in place yet. */
  private async stageRecord(
    dir: string,
    instance: Instance,
  ): Promise<{ file: StagedFile; ours: boolean }> {
    const { text, ours } = await this.recordText(dir, instance);
    return { file: await stageAtomic(join(dir, INFO_FILE), text, 0o666), ours };
  }

  /**
   * A claim lost (taken by another replica, or deleted): no longer a candidate, and its index
   * entry would only be stale (the source lock keeps the source from racing itself).
   */
  private async lost(challengeId: string, sourceId: string, identity: string): Promise<void> {
    this.poolSnapshots.get(challengeId)?.pooled.delete(identity);
    await this.unindexClaim(challengeId, sourceId, identity);
  }

  /**
   * Links the written temp file `tmp` as the claim file of `dir`; false when someone else's is
   * there. `written` is how writing `tmp` went.
   */
  private async linkClaim(
    dir: string,
    tmp: string,
    written: PromiseSettledResult<void>,
    sourceId: string,
  ): Promise<boolean> {
    const claimPath = join(dir, CLAIM_FILE);
    if (written.status === 'rejected') {
      await unlink(tmp).catch(() => undefined);
      // The instance directory vanished under us (deleted): nothing to claim.
      if (isNotFound(written.reason)) return false;
      throw written.reason;
    }
    try {
      await link(tmp, claimPath);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EEXIST' || isNotFound(err)) return false;
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS' || code === 'EOPNOTSUPP') {
        // Filesystems without hard links: O_EXCL creation is still exclusive.
        return this.claimExclusively(claimPath, sourceId);
      }
      throw err;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    // Not flushed here: the save of the claimed record that follows every claim flushes this
    // directory (see StateStore.claim), and a claim flushed on its own waited for one flush more.
    return true;
  }

  /**
   * Pooled instances (a record, no claim) and the number of claimed ones, without reading any
   * record. A scan lists the challenge's instance directories and stats the claim files of
   * those not seen claimed before (claim files never change while their instance lives, so
   * claimed instances seen once are remembered; a pooled one seen in the last
   * `POOL_RECHECK_MS` is not looked at again). The scan's result is then reused for
   * `POOL_RECHECK_MS`, kept up to date by this process's claims and pooled saves, so that a
   * claim costs the same with 10 or 10 000 instances: what another replica changed meanwhile
   * is found by the claim itself (its link fails on a taken instance, its stat on a deleted
   * one). A snapshot without pooled instances is never reused: an empty pool is always looked
   * at again, so a claim never deploys afresh while another replica's pooled instance waits.
   */
  async poolState(challengeId: string): Promise<PoolState> {
    const snapshot = this.poolSnapshots.get(challengeId);
    if (
      snapshot !== undefined &&
      snapshot.pooled.size > 0 &&
      Date.now() - snapshot.at < POOL_RECHECK_MS
    ) {
      return { pooled: snapshot.pooled.toArray(), claimed: snapshot.claimed };
    }
    // Concurrent callers share one scan: a burst of claims on a new pool otherwise ran one full
    // scan each before any of them could remember what it saw.
    const { pooled, claimed } = await this.poolScans.run(challengeId, async () => {
      const at = Date.now();
      const scanned = await this.scanPool(challengeId);
      // Claims this process made during the scan are already counted, or are removed here.
      const known = this.knownClaimed(challengeId);
      const fresh = scanned.pooled.filter((identity) => !known.has(identity));
      this.poolSnapshots.set(challengeId, {
        at,
        pooled: new SortedIds(fresh),
        claimed: scanned.claimed + scanned.pooled.length - fresh.length,
      });
      return { pooled: fresh, claimed: scanned.claimed + scanned.pooled.length - fresh.length };
    });
    return { pooled: [...pooled], claimed };
  }

  /**
   * `source/<md5(source)>/.creating` (ours; upstream never looks there), touched every
   * {@link CREATION_BEAT_MS} while the creation runs: a mark untouched for
   * {@link CREATION_STALE_MS} is a crashed replica's. Taking a live mark for a dead one only
   * makes a duplicate wait for the source lock, as it would without marks.
   */
  async beginCreation(challengeId: string, sourceId: string): Promise<CreationMark> {
    const dir = this.sourceIndexDir(challengeId, sourceId);
    const mark = join(dir, CREATION_MARK);
    // Flushed as a claim's index directory (the instance's entry may land in it): the mark is
    // a hint, the directory is not.
    await ensureDir(dir);
    await writeFile(mark, `${hostname()}/${process.pid}\n`, { mode: 0o600 });
    let beat: Promise<unknown> = Promise.resolve();
    const timer = setInterval(() => {
      const now = new Date();
      beat = utimes(mark, now, now).catch(() => undefined);
    }, CREATION_BEAT_MS);
    timer.unref();
    return {
      end: async () => {
        clearInterval(timer);
        await beat;
        await unlink(mark).catch(() => undefined);
        // A source whose creation failed leaves no empty directory behind.
        await rmdir(dir).catch(() => undefined);
      },
    };
  }

  /** See {@link StateStore.creationUnderway}. */
  async creationUnderway(challengeId: string, sourceId: string): Promise<boolean> {
    try {
      const st = await stat(join(this.sourceIndexDir(challengeId, sourceId), CREATION_MARK));
      return Date.now() - st.mtimeMs < CREATION_STALE_MS;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** See `ourRecords`; bounded: past it, forgetting only costs reads. */
  private markOurs(dir: string): void {
    if (this.ourRecords.size >= MAX_OUR_RECORDS) this.ourRecords.clear();
    this.ourRecords.add(dir);
  }

  /** `identity` is claimed (by this process or another): remembered, and out of the pool. */
  private sawClaimed(challengeId: string, identity: string): void {
    this.knownClaimed(challengeId).add(identity);
    const snapshot = this.poolSnapshots.get(challengeId);
    if (snapshot?.pooled.delete(identity)) snapshot.claimed += 1;
  }

  private async scanPool(challengeId: string): Promise<PoolState> {
    const identities = await this.identitiesOf(challengeId);
    const known = this.knownClaimed(challengeId);
    const recorded = this.recordedCache.get(challengeId);
    const now = Date.now();
    const claimed = new Set<string>();
    const pooled = new Map<string, number>();
    await mapLimit(identities, SCAN_CONCURRENCY, async (identity) => {
      if (known.has(identity)) {
        claimed.add(identity);
        return;
      }
      const seenAt = recorded?.get(identity);
      if (seenAt !== undefined && now - seenAt < POOL_RECHECK_MS) {
        pooled.set(identity, seenAt);
        return;
      }
      const dir = this.instanceDir(challengeId, identity);
      if (await exists(join(dir, CLAIM_FILE))) claimed.add(identity);
      // info.json, once written, stays until the instance goes: checked once.
      else if (seenAt !== undefined || (await exists(join(dir, INFO_FILE))))
        pooled.set(identity, now);
    });
    // Forget instances that are gone, so the memory follows the live records.
    this.claimedCache.set(challengeId, claimed);
    this.recordedCache.set(challengeId, pooled);
    return { pooled: [...pooled.keys()].sort(), claimed: claimed.size };
  }

  private async claimExclusively(claimPath: string, sourceId: string): Promise<boolean> {
    try {
      await writeAndSync(claimPath, sourceId, 0o600);
    } catch (err) {
      if (errnoCode(err) === 'EEXIST' || isNotFound(err)) return false;
      throw err;
    }
    // The directory is flushed by the save that follows (see linkClaim).
    return true;
  }

  private challengeDir(challengeId: string): string {
    let dir = this.challengeDirs.get(challengeId);
    if (dir === undefined) {
      // Hashing makes any id (slashes, dots, unicode) a safe single path part.
      dir = join(this.root, md5(challengeId));
      // Bounded by the challenges this process has seen; cleared when it grows past reason.
      if (this.challengeDirs.size >= 100_000) this.challengeDirs.clear();
      this.challengeDirs.set(challengeId, dir);
    }
    return dir;
  }

  private instanceDir(challengeId: string, identity: string): string {
    if (!IDENTITY_PATTERN.test(identity)) {
      throw new Error(`invalid instance identity ${JSON.stringify(identity)}`);
    }
    const dir = join(this.challengeDir(challengeId), INSTANCE_SUBDIR, identity);
    // Belt and braces: the pattern already forbids separators and dots.
    const rel = relative(this.root, dir);
    if (rel.startsWith('..') || isAbsolute(rel) || rel.split(sep).length !== 3) {
      throw new Error(`instance path escapes the state directory: ${identity}`);
    }
    return dir;
  }

  private sourceIndexDir(challengeId: string, sourceId: string): string {
    return join(this.challengeDir(challengeId), SOURCE_SUBDIR, md5(sourceId));
  }

  /**
   * Whether the challenge's source index is complete. Remembered once seen: the mark only goes
   * with the challenge, and a challenge made again gets it again (saveChallenge).
   */
  private isIndexed(challengeId: string): Promise<boolean> {
    return this.isIndexedDir(this.challengeDir(challengeId));
  }

  /** {@link isIndexed} by challenge directory. */
  private async isIndexedDir(dir: string): Promise<boolean> {
    if (this.indexedCache.has(dir)) return true;
    const indexed = await exists(join(dir, SOURCE_SUBDIR, INDEX_COMPLETE));
    if (indexed) this.indexedCache.add(dir);
    return indexed;
  }

  /** The source that claimed the instance (its claim file), undefined while pooled. */
  private async claimantOf(challengeId: string, identity: string): Promise<string | undefined> {
    const known = this.claimants.get(challengeId)?.get(identity);
    if (known !== undefined) return known;
    const claimant = await readIfExists(join(this.instanceDir(challengeId, identity), CLAIM_FILE));
    // Not an empty one: where links are missing, a claim file is written in place, and may be
    // read before its bytes are.
    if (claimant) this.rememberClaimant(challengeId, identity, claimant);
    return claimant;
  }

  private rememberClaimant(challengeId: string, identity: string, sourceId: string): void {
    let known = this.claimants.get(challengeId);
    if (known === undefined) {
      known = new Map();
      this.claimants.set(challengeId, known);
    }
    known.set(identity, sourceId);
  }

  /** Forgets the claimants of instances gone (deleted by another replica), so memory follows the records. */
  private forgetClaimantsBut(challengeId: string, identities: string[]): void {
    const known = this.claimants.get(challengeId);
    if (known === undefined) return;
    const live = new Set(identities);
    for (const identity of known.keys()) if (!live.has(identity)) known.delete(identity);
  }

  private knownClaimed(challengeId: string): Set<string> {
    let known = this.claimedCache.get(challengeId);
    if (known === undefined) {
      known = new Set();
      this.claimedCache.set(challengeId, known);
    }
    return known;
  }

  /**
   * Adds the source index entry of a claim, durably (the claim must never outlive it): the
   * directories that gained an entry are flushed together, not one after the other.
   */
  private async indexClaim(challengeId: string, sourceId: string, identity: string): Promise<void> {
    const dir = this.sourceIndexDir(challengeId, sourceId);
    const first = await mkdir(dir, { recursive: true, mode: 0o700 });
    if (!(await createEmpty(join(dir, identity), 0o600))) return;
    await Promise.all([dir, ...parentsOfCreated(dir, first)].map(fsyncDir));
  }

  private async unindexClaim(
    challengeId: string,
    sourceId: string,
    identity: string,
  ): Promise<void> {
    try {
      await unlink(join(this.sourceIndexDir(challengeId, sourceId), identity));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * Indexes the claims of a challenge found on disk (records of upstream, or of an earlier
   * version of this service), then marks its index complete. Safe beside concurrent claims:
   * each claim adds its own entry before it is made.
   */
  private async ensureIndexed(challengeId: string): Promise<void> {
    if (await this.isIndexed(challengeId)) return;
    const indexDir = join(this.challengeDir(challengeId), SOURCE_SUBDIR);
    const identities = await this.identitiesOf(challengeId);
    let indexed = 0;
    await mapLimit(identities, SCAN_CONCURRENCY, async (identity) => {
      const claimant = await readIfExists(
        join(this.instanceDir(challengeId, identity), CLAIM_FILE),
      );
      if (claimant === undefined) return;
      await this.indexClaim(challengeId, claimant, identity);
      indexed++;
    });
    await ensureDir(indexDir);
    await writeAtomic(join(indexDir, INDEX_COMPLETE), '', 0o600);
    if (indexed > 0)
      this.logger.log(`indexed ${indexed} claimed instances of challenge ${md5(challengeId)}`);
  }

  /**
   * At startup: every challenge whose index is not complete yet gets one. A complete one costs a
   * stat; only the others' records are read (for their ids). Unreadable ones are left to the
   * listings, which report them.
   */
  private async indexAllChallenges(): Promise<void> {
    const names = (await readdirIfExists(this.root)).filter((n) => !n.startsWith('.'));
    for (const name of names) {
      if (await exists(join(this.root, name, SOURCE_SUBDIR, INDEX_COMPLETE))) continue;
      const text = await readIfExists(join(this.root, name, INFO_FILE));
      let id: string;
      try {
        if (text === undefined) continue;
        id = parseChallenge(text).id;
      } catch {
        continue;
      }
      if (md5(id) === name) await this.ensureIndexed(id);
    }
  }

  /** Identities (directory names) of a challenge's instances, scratch entries excluded. */
  private async identitiesOf(challengeId: string): Promise<string[]> {
    return identitiesIn(
      await readdirIfExists(join(this.challengeDir(challengeId), INSTANCE_SUBDIR)),
    );
  }

  private async loadInstanceTolerantly(
    challengeId: string,
    identity: string,
  ): Promise<Instance | undefined> {
    const loaded = await this.loadInstance(challengeId, identity).then(
      (instance) => () => instance,
      (err: unknown) => () => {
        throw err;
      },
    );
    return this.tolerantly(challengeId, identity, loaded);
  }

  /**
   * `read`'s instance, or undefined with a warning when it throws (the record is unreadable or
   * invalid); the record is reported unreadable, or readable again.
   */
  private tolerantly(
    challengeId: string,
    identity: string,
    read: () => Instance | undefined,
  ): Instance | undefined {
    const record = instanceRecordName(challengeId, identity);
    try {
      const instance = read();
      this.unreadable?.resolve(record);
      return instance;
    } catch (err) {
      this.logger.warn(
        `skipping instance ${identity} of challenge ${md5(challengeId)}: ${messageOf(err)}`,
      );
      this.unreadable?.fail(record, `unreadable: ${messageOf(err)}`);
      return undefined;
    }
  }

  /** Our scratch entries older than `staleAfterMs`, at every level of the layout. */
  private async removeStaleScratch(): Promise<void> {
    const now = Date.now();
    const sweep = async (dir: string): Promise<string[]> => {
      const names = await readdirIfExists(dir);
      const kept: string[] = [];
      for (const name of names) {
        const path = join(dir, name);
        if (!isOurScratch(name)) {
          kept.push(path);
          continue;
        }
        try {
          const st = await stat(path);
          if (now - st.mtimeMs < this.staleAfterMs) continue;
          await rm(path, { recursive: true, force: true, maxRetries: 3 });
          this.logger.warn(`removed stale leftover ${relative(this.root, path)}`);
        } catch (err) {
          // Another replica may be removing it at the same time.
          if (!isNotFound(err)) throw err;
        }
      }
      return kept;
    };
    for (const challDir of await sweep(this.root)) {
      await sweep(challDir);
      for (const instDir of await sweep(join(challDir, INSTANCE_SUBDIR))) {
        await sweep(instDir);
      }
    }
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
