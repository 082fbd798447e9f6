import { Injectable, Logger } from '@nestjs/common';
import { LocalWorkspace, PulumiCommand } from './pulumi-automation';
import { randomBytes } from 'node:crypto';
import {
  copyFile,
  lstat,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { md5Hex as md5 } from '../../shared/domain/record-names';
import { parseReadiness } from '../../shared/domain/readiness';
import { IacOperationError, IacTimeoutError, ScenarioInvalidError } from '../../shared/errors';
import type {
  FetchedScenario,
  IacEngine,
  PendingCreate,
  StackOutputs,
  StackRef,
  UpRequest,
} from '../../shared/ports';
import { OperationGuard } from './operation-guard';
import {
  isFailure,
  outputsOfEvents,
  runPulumi,
  runWithEvents,
  SECRET_SIG,
  type PulumiEvent,
  type PulumiRun,
  writeStackConfig,
} from './pulumi-cli';
import { installProgramPreload, nodeOptionsWithPreload } from './program-preload';
import { redact } from './redact';
import { ScenarioPreparer, type PreparedScenario } from './scenario-preparer';

export interface PulumiIacEngineOptions {
  /** The service's DIR: stacks' state and config live under `<dataDir>/pulumi`. */
  dataDir: string;
  /** The service's CACHE: prepared (compiled) scenarios go under `<cacheDir>/prepared`. */
  cacheDir: string;
  /** Encrypts stack secrets (Pulumi passphrase secrets provider). */
  passphrase: string;
  /** Bound of one up/preview/destroy; past it the operation is cancelled and cleaned up. */
  operationTimeoutMs: number;
  /** After a cancel, how long Pulumi gets to stop gracefully before its processes are killed. */
  cancelGraceMs: number;
  /** Bound of compiling a Go scenario. */
  compileTimeoutMs: number;
  /**
   * Environment of the Pulumi CLI and the scenario programs, already filtered by the config
   * (service credentials blanked). The engine adds its own variables on top.
   */
  programEnv: Record<string, string>;
  /** node_modules holding the @pulumi/pulumi and @chall-manager/sdk the service provides to
   * nodejs scenarios. */
  nodeModulesDir: string;
  /** Absolute path of the `pulumi` binary; default: `pulumi` on PATH. */
  pulumiBinary?: string;
}

/** What the engine remembers of a stack beside Pulumi's own state. */
interface StackMeta {
  project: string;
  digest: string;
  challengeId: string;
}

/** `DIR/pulumi/pending/<identity>.json`: creates a dead Pulumi process left pending. */
interface PendingRecord {
  challengeId: string;
  identity: string;
  stack: string;
  resources: { urn: string; foundAt: string }[];
}

/** The part of a Pulumi checkpoint (file backend, `stacks/<project>/<stack>.json`) read here. */
interface Checkpoint {
  checkpoint?: {
    latest?: {
      resources?: { urn?: string; type?: string }[];
      pending_operations?: { type?: string; resource?: { urn?: string } }[];
    };
  };
}

const STACK_FILES = new Set([
  'Pulumi.yaml',
  'Pulumi.yml',
  '.prepared.json',
  'stack.json',
  '.cm-go-binary',
]);

/**
 * The IaC engine: the real Pulumi CLI. Creations, updates, previews and deletions launch it
 * directly, once per step a bare CLI user would take (`stack init`, `up`; `destroy --remove`),
 * where the Automation API adds launches (a failing `stack select`, `config set-all`, outputs read
 * twice, history); its LocalWorkspace serves the rare paths (adoption, a renamed project).
 *
 * Layout under DIR (shared by replicas, so any replica can update or destroy any stack):
 * - `pulumi/backend/`: the file backend (Pulumi's checkpoints, history, locks);
 * - `pulumi/stacks/<md5(challenge id)>/<identity>/`: the stack's project directory: its
 *   `Pulumi.yaml`, its `Pulumi.<identity>.yaml` (config and secrets salt), `stack.json`, and
 *   links to the prepared scenario files (re-made from this replica's cache before each run).
 */
@Injectable()
export class PulumiIacEngine implements IacEngine {
  private readonly logger = new Logger(PulumiIacEngine.name);
  private readonly preparer: ScenarioPreparer;
  private command: Promise<PulumiCommand> | undefined;
  /** Path of the preload given to nodejs scenario processes (written once, see program-preload). */
  private preload: Promise<string> | undefined;

  constructor(private readonly opts: PulumiIacEngineOptions) {
    this.preparer = new ScenarioPreparer({
      cacheDir: join(opts.cacheDir, 'prepared'),
      env: opts.programEnv,
      compileTimeoutMs: opts.compileTimeoutMs,
    });
  }

  async validate(scenario: FetchedScenario, additional: Record<string, string>): Promise<void> {
    const prepared = await this.preparer.prepare(scenario);
    const identity = randomBytes(8).toString('hex');
    // A throw-away project directory: nothing of the preview is kept (upstream leaked these).
    const workDir = join(this.opts.dataDir, 'pulumi', 'previews', identity);
    const problems: string[] = [];
    const guard = this.guard();
    try {
      const name = await this.openStack(prepared, workDir, identity, additional, true, guard);
      try {
        await this.cliWithEvents(
          ['preview', '--stack', name],
          workDir,
          prepared.project,
          guard,
          (events) => {
            for (const e of events) collectDiagnostics(e, problems);
          },
        );
      } catch (err) {
        if (guard.timedOut)
          throw new IacTimeoutError('preview', scenario.reference, { cause: err });
        this.logger.warn(`preview of ${scenario.reference} failed: ${String(err)}`);
        throw new ScenarioInvalidError(
          scenario.reference,
          problems.length > 0 ? problems.join('\n') : 'the scenario preview failed',
          { cause: err },
        );
      } finally {
        await this.removePreviewStack(prepared.project, identity);
      }
    } finally {
      guard.dispose();
      await rm(workDir, { recursive: true, force: true });
    }
  }

  async up(request: UpRequest, signal?: AbortSignal): Promise<StackOutputs> {
    const prepared = await this.preparer.prepare(request.scenario);
    const workDir = this.stackDir(request);
    const fresh = (await this.readMeta(workDir)) === undefined;
    const name = stackName(prepared.project, request.identity);
    // The CLI only reacts to an abort that happens while it runs: a caller that gave up before
    // the operation started gets nothing deployed.
    if (signal?.aborted) throw new IacOperationError('up', name, { cause: signal.reason });
    const guard = this.guard(signal);
    // Diagnostics (the program's own output included) are logged once the outputs are known,
    // with the flags, connection_info and additional values cut out.
    const diagnostics: string[] = [];
    let secrets = [...Object.values(request.additional), ...(request.secrets ?? [])];
    try {
      await this.moveProjectIfRenamed(workDir, prepared, request.identity);
      await this.openStack(prepared, workDir, request.identity, request.additional, fresh, guard);
      await this.writeMeta(workDir, {
        project: prepared.project,
        digest: prepared.digest,
        challengeId: request.challengeId,
      });
      // Pulumi drops the creates a dead process left pending: they are recorded first.
      if (!fresh) await this.notePendingCreates(prepared.project, request);
      let events: PulumiEvent[] = [];
      const run = (): Promise<void> =>
        this.cliWithEvents(
          ['up', '--yes', '--skip-preview', '--stack', name],
          workDir,
          prepared.project,
          guard,
          (e) => {
            events = e;
            for (const event of e) collectLogged(event, diagnostics);
          },
        );
      await run()
        .catch(async (err: unknown) => {
          if (guard.aborted) throw err;
          // A stack.json outliving its stack (a crash between a destroy and the removal of the
          // stack's directory): the stack is made again, as a fresh one would be.
          if (isFailure(err, 'stack-not-found')) {
            await this.openStack(
              prepared,
              workDir,
              request.identity,
              request.additional,
              true,
              guard,
            );
            return run();
          }
          // As in destroy: a lock left by a CLI killed in a crash is stale (the caller holds the
          // instance's lock), so an update of that stack drops it and tries once more.
          if (!isFailure(err, 'locked')) throw err;
          this.logger.warn(`stack ${name} locked by a dead operation; dropping its lock`);
          await this.dropLocks(prepared.project, request.identity);
          return run();
        })
        .catch((err: unknown) => {
          // The CLI's text holds the program's own output: it goes to the logs redacted.
          throw iacFailure(guard, 'up', name, new Error(redact(describe(err), secrets)));
        });
      // Secret outputs are masked in the events: only then are they asked for (one more launch).
      const raw =
        outputsOfEvents(events) ??
        (JSON.parse(
          await this.cli(
            ['stack', 'output', '--json', '--show-secrets', '--stack', name],
            workDir,
            prepared.project,
            guard,
          ).catch((err: unknown) => {
            throw iacFailure(guard, 'up', name, new Error(redact(describe(err), secrets)));
          }),
        ) as Record<string, unknown>);
      const outputs = readOutputs(request.scenario.reference, raw);
      secrets = [...secrets, outputs.connectionInfo, ...outputs.flags];
      return outputs;
    } catch (err) {
      guard.dispose();
      if (guard.aborted) await this.dropLocks(prepared.project, request.identity);
      // No orphans: a fresh stack that failed is destroyed and removed before we answer.
      if (fresh) {
        await this.destroy(request).catch((cleanup: unknown) =>
          this.logger.error(`cleanup of failed stack ${name} failed: ${String(cleanup)}`),
        );
      }
      throw err;
    } finally {
      guard.dispose();
      for (const line of diagnostics) this.logger.debug(`${name}: ${redact(line, secrets)}`);
    }
  }

  async destroy(ref: StackRef, signal?: AbortSignal): Promise<void> {
    const workDir = this.stackDir(ref);
    const meta = await this.readMeta(workDir);
    if (meta === undefined) {
      await rm(workDir, { recursive: true, force: true });
      return;
    }
    const name = stackName(meta.project, ref.identity);
    // Pulumi drops the creates a dead process left pending: they are recorded first.
    await this.notePendingCreates(meta.project, ref);
    // Destroy needs no program (providers keep what they need in the state), so links to a
    // scenario this replica has not fetched are dropped rather than re-made.
    await dropDanglingLinks(workDir);
    const guard = this.guard(signal);
    try {
      // `--remove` drops the stack once its resources are gone: no `stack rm` launch. A stack
      // already removed (a crash before its directory was) has nothing left to destroy.
      const run = (): Promise<void> =>
        this.cliWithEvents(
          ['destroy', '--yes', '--skip-preview', '--remove', '--stack', name],
          workDir,
          meta.project,
          guard,
          (events) => this.logEvents(name, events),
        );
      await run()
        .catch(async (err: unknown) => {
          // A CLI killed with its process (a crash during `up`) left its lock: the caller holds
          // the instance's lock, so no one else is running on this stack and the lock is stale.
          if (!isFailure(err, 'locked') || guard.aborted) throw err;
          this.logger.warn(`stack ${name} locked by a dead operation; dropping its lock`);
          await this.dropLocks(meta.project, ref.identity);
          return run();
        })
        .catch(async (err: unknown) => {
          if (isFailure(err, 'stack-not-found')) return;
          guard.dispose();
          if (guard.aborted) await this.dropLocks(meta.project, ref.identity);
          throw iacFailure(guard, 'destroy', name, err);
        });
      await this.dropBackendFiles(meta.project, ref.identity);
    } finally {
      guard.dispose();
    }
    await rm(workDir, { recursive: true, force: true });
  }

  async adopt(ref: StackRef, deployment: unknown, signal?: AbortSignal): Promise<void> {
    const workDir = this.stackDir(ref);
    // stack.json is written last below: present, the import is done (or the stack was ours).
    if ((await this.readMeta(workDir)) !== undefined) return;
    const untyped = untypedDeployment(deployment);
    const project = projectOf(untyped.deployment);
    if (project === undefined) {
      // No resource at all: there is nothing to take over, and the next `up` starts afresh.
      if (resourcesOf(untyped.deployment).length === 0) return;
      throw new IacOperationError('import', `instance ${ref.identity}`, {
        cause: new Error('the upstream state names no Pulumi project in its URNs'),
      });
    }
    const name = stackName(project, ref.identity);
    const guard = this.guard(signal);
    try {
      await mkdir(workDir, { recursive: true, mode: 0o700 });
      // Only the project name matters until the next `up` links the scenario in: an import
      // runs no program, neither does a destroy (providers keep what they need in the state).
      await writeFile(
        join(workDir, 'Pulumi.yaml'),
        `name: ${JSON.stringify(project)}\nruntime: nodejs\n`,
        { mode: 0o600 },
      );
      const stack = await LocalWorkspace.createOrSelectStack(
        { stackName: name, workDir },
        await this.workspaceOptions(project, guard),
      );
      await stack.setAllConfig({ identity: { value: ref.identity } });
      await stack.importStack(untyped);
      this.logger.log(`adopted upstream stack ${name} of challenge ${ref.challengeId}`);
    } catch (err) {
      throw iacFailure(guard, 'import', name, err);
    } finally {
      guard.dispose();
    }
    // The scenario digest is unknown (upstream never recorded it): the next `up` records it.
    await this.writeMeta(workDir, { project, digest: '', challengeId: ref.challengeId });
  }

  async listStacks(): Promise<StackRef[]> {
    const root = join(this.opts.dataDir, 'pulumi', 'stacks');
    const refs: StackRef[] = [];
    for (const challenge of await readdir(root).catch(() => [])) {
      for (const identity of await readdir(join(root, challenge)).catch(() => [])) {
        const meta = await this.readMeta(join(root, challenge, identity)).catch(() => undefined);
        if (meta?.challengeId !== undefined) refs.push({ challengeId: meta.challengeId, identity });
      }
    }
    return refs;
  }

  async pendingCreates(): Promise<PendingCreate[]> {
    const dir = this.pendingDir();
    const found: PendingCreate[] = [];
    for (const entry of await readdir(dir).catch(() => [])) {
      if (!entry.endsWith('.json')) continue;
      const record = await readPending(join(dir, entry));
      if (record === undefined) {
        this.logger.warn(`unreadable pending-create record ${entry}`);
        continue;
      }
      for (const r of record.resources) {
        found.push({
          challengeId: record.challengeId,
          identity: record.identity,
          urn: r.urn,
          foundAt: r.foundAt,
        });
      }
    }
    return found;
  }

  async reclaimLeftovers(): Promise<number> {
    const pulumiDir = join(this.opts.dataDir, 'pulumi', 'backend', '.pulumi');
    let reclaimed = 0;
    // Pulumi writes its state through temporary `<file>.<hex>.tmp` files renamed into place; one
    // older than any operation may last was left by a write that failed (a full disk).
    const staleBefore = Date.now() - 2 * (this.opts.operationTimeoutMs + this.opts.cancelGraceMs);
    const entries = await readdir(pulumiDir, { recursive: true, withFileTypes: true }).catch(
      () => [],
    );
    for (const entry of entries) {
      if (!entry.isFile() || !entry.name.endsWith('.tmp')) continue;
      const path = join(entry.parentPath, entry.name);
      const info = await stat(path).catch(() => undefined);
      if (info === undefined || info.mtimeMs > staleBefore) continue;
      await rm(path, { force: true });
      this.logger.warn(`removed ${path.slice(this.opts.dataDir.length)}, left by a failed write`);
      reclaimed++;
    }
    // A stack's project directory is made before its state and removed after it, so state listed
    // first and without a project directory afterwards was left by an operation that failed in
    // between (a full disk while writing stack.json).
    const states: [project: string, identity: string][] = [];
    const stacksDir = join(pulumiDir, 'stacks');
    for (const project of await readdir(stacksDir).catch(() => [])) {
      for (const file of await readdir(join(stacksDir, project)).catch(() => [])) {
        const identity = /^([0-9a-f]{16})\.json$/.exec(file)?.[1];
        if (identity !== undefined) states.push([project, identity]);
      }
    }
    const withDir = await this.identitiesWithProjectDir();
    for (const [project, identity] of states) {
      if (withDir.has(identity)) continue;
      const checkpoint = await this.readCheckpoint(project, identity);
      if (checkpoint === undefined) continue;
      await this.notePendingCreates(project, { challengeId: '', identity });
      const resources = (checkpoint.checkpoint?.latest?.resources ?? []).filter(
        (r) => r.type !== 'pulumi:pulumi:Stack' && !r.type?.startsWith('pulumi:providers:'),
      );
      const name = stackName(project, identity);
      if (resources.length > 0) {
        this.logger.error(
          `stack ${name} has no project directory but holds resources; remove them by hand: ${resources.map((r) => r.urn).join(', ')}`,
        );
        continue;
      }
      this.logger.warn(`removing the state of stack ${name}, left without a project directory`);
      await rm(join(stacksDir, project, `${identity}.json`), { force: true });
      await this.dropBackendFiles(project, identity);
      reclaimed++;
    }
    return reclaimed;
  }

  /** Identities that have a project directory (a stack's, or a preview's). */
  private async identitiesWithProjectDir(): Promise<Set<string>> {
    const pulumi = join(this.opts.dataDir, 'pulumi');
    const found = new Set<string>(await readdir(join(pulumi, 'previews')).catch(() => []));
    for (const challenge of await readdir(join(pulumi, 'stacks')).catch(() => [])) {
      for (const identity of await readdir(join(pulumi, 'stacks', challenge)).catch(() => []))
        found.add(identity);
    }
    return found;
  }

  /** The stack's checkpoint in the file backend. */
  private checkpointPath(project: string, identity: string): string {
    return join(
      this.opts.dataDir,
      'pulumi',
      'backend',
      '.pulumi',
      'stacks',
      project,
      `${identity}.json`,
    );
  }

  private async readCheckpoint(project: string, identity: string): Promise<Checkpoint | undefined> {
    const path = this.checkpointPath(project, identity);
    const raw = await readFile(path, 'utf8').catch(() => undefined);
    try {
      return raw === undefined ? undefined : (JSON.parse(raw) as Checkpoint);
    } catch {
      return undefined;
    }
  }

  /**
   * Records the creates a dead Pulumi process left pending in the stack's checkpoint. Pulumi's
   * next up or destroy drops them from the state without touching the resources, which may then
   * live on unseen (a flag server still serving its flag): the record keeps them listed (health
   * check, metric, janitor) until an operator has dealt with them and removed it.
   */
  private async notePendingCreates(project: string, ref: StackRef): Promise<void> {
    const checkpoint = await this.readCheckpoint(project, ref.identity);
    const urns = (checkpoint?.checkpoint?.latest?.pending_operations ?? [])
      .filter((op) => op.type === 'creating' && typeof op.resource?.urn === 'string')
      .map((op) => op.resource!.urn!);
    if (urns.length === 0) return;
    const name = stackName(project, ref.identity);
    const dir = this.pendingDir();
    const file = join(dir, `${ref.identity}.json`);
    const record: PendingRecord = (await readPending(file)) ?? {
      challengeId: ref.challengeId,
      identity: ref.identity,
      stack: name,
      resources: [],
    };
    const foundAt = new Date().toISOString();
    for (const urn of urns) {
      if (!record.resources.some((r) => r.urn === urn)) record.resources.push({ urn, foundAt });
    }
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, JSON.stringify(record), { mode: 0o600 });
    await rename(tmp, file);
    this.logger.error(
      `stack ${name}${ref.challengeId ? ` of challenge ${ref.challengeId}` : ''}: the creation of ${urns.join(', ')} was interrupted (a Pulumi process died); Pulumi forgets such resources, which may still exist: remove them by hand, then delete ${file.slice(this.opts.dataDir.length + 1)}`,
    );
  }

  private pendingDir(): string {
    return join(this.opts.dataDir, 'pulumi', 'pending');
  }

  /**
   * Project directory of a stack: the scenario's files linked, its own Pulumi.yaml copied, and its
   * config written; a `fresh` stack is created first. Returns the stack's name.
   */
  private async openStack(
    prepared: PreparedScenario,
    workDir: string,
    identity: string,
    additional: Record<string, string>,
    fresh: boolean,
    guard: OperationGuard,
  ): Promise<string> {
    await mkdir(workDir, { recursive: true, mode: 0o700 });
    await linkScenario(prepared.directory, workDir);
    if (prepared.binary !== undefined) {
      // Read by the Go language host wrapper (tools/pulumi-language-go/wrapper.sh): the program
      // always runs from its prepared binary, never compiled again at run time.
      await writeFile(join(workDir, '.cm-go-binary'), prepared.binary, { mode: 0o600 });
    }
    const name = stackName(prepared.project, identity);
    // A new identity has no stack yet, so none is looked up first (a stack left by a crash
    // between its creation and stack.json is taken as it is).
    if (fresh) {
      await this.cli(['stack', 'init', name], workDir, prepared.project, guard).catch(
        (err: unknown) => {
          if (!isFailure(err, 'stack-exists')) throw err;
        },
      );
    }
    // upstream contract (its scenario SDK): config `identity` and `additional` (JSON) in the
    // project namespace. Written as `config set-all` would write it, without a launch.
    await writeStackConfig(workDir, identity, {
      [`${prepared.project}:identity`]: identity,
      [`${prepared.project}:additional`]: JSON.stringify(additional),
    });
    return name;
  }

  /**
   * A new scenario version may rename its Pulumi project; the stack (and its resources) then
   * moves to the new project instead of being orphaned (upstream lost track of it).
   */
  private async moveProjectIfRenamed(
    workDir: string,
    prepared: PreparedScenario,
    identity: string,
  ): Promise<void> {
    const meta = await this.readMeta(workDir);
    if (meta === undefined || meta.project === prepared.project) return;
    const from = stackName(meta.project, identity);
    const to = stackName(prepared.project, identity);
    this.logger.log(`moving stack ${from} to ${to}`);
    const old = await LocalWorkspace.selectStack(
      { stackName: from, workDir },
      await this.workspaceOptions(),
    );
    const state = await old.exportStack();
    await old.workspace.removeStack(from, { force: true });
    await rm(join(workDir, 'Pulumi.yaml'), { force: true });
    await linkScenario(prepared.directory, workDir);
    const moved = await LocalWorkspace.createOrSelectStack(
      { stackName: to, workDir },
      await this.workspaceOptions(),
    );
    await moved.importStack(state);
  }

  private stackDir(ref: StackRef): string {
    return join(this.opts.dataDir, 'pulumi', 'stacks', md5(ref.challengeId), ref.identity);
  }

  private async readMeta(workDir: string): Promise<StackMeta | undefined> {
    const raw = await readFile(join(workDir, 'stack.json'), 'utf8').catch(() => undefined);
    return raw === undefined ? undefined : (JSON.parse(raw) as StackMeta);
  }

  private async writeMeta(workDir: string, meta: StackMeta): Promise<void> {
    // Renamed into place: it marks an adoption done, and a torn one would fail every later try.
    const tmp = join(workDir, `.stack.json.${randomBytes(4).toString('hex')}.tmp`);
    await writeFile(tmp, JSON.stringify(meta), { mode: 0o600 });
    await rename(tmp, join(workDir, 'stack.json'));
  }

  /** One launch of the CLI in a stack's project directory (the workspace's environment). */
  private async cli(
    args: string[],
    cwd: string,
    project: string,
    guard?: OperationGuard,
  ): Promise<string> {
    return runPulumi(await this.cliRun(args, cwd, project, guard));
  }

  /** One launch of an engine operation, its events handed over once it is done. */
  private async cliWithEvents(
    args: string[],
    cwd: string,
    project: string,
    guard: OperationGuard,
    onEvents: (events: PulumiEvent[]) => void,
  ): Promise<void> {
    await runWithEvents(await this.cliRun(args, cwd, project, guard), onEvents);
  }

  private async cliRun(
    args: string[],
    cwd: string,
    project: string,
    guard?: OperationGuard,
  ): Promise<PulumiRun> {
    const { pulumiCommand, envVars } = await this.workspaceOptions(project, guard);
    return { binary: pulumiCommand.command, args, cwd, env: envVars, signal: guard?.signal };
  }

  private async workspaceOptions(
    project?: string,
    guard?: OperationGuard,
  ): Promise<{
    pulumiCommand: PulumiCommand;
    envVars: Record<string, string>;
  }> {
    const backend = join(this.opts.dataDir, 'pulumi', 'backend');
    await mkdir(backend, { recursive: true, mode: 0o700 });
    this.command ??= this.opts.pulumiBinary
      ? PulumiCommand.get({
          root: join(this.opts.pulumiBinary, '..', '..'),
          skipVersionCheck: false,
        })
      : PulumiCommand.get({ skipVersionCheck: false });
    this.preload ??= installProgramPreload(join(this.opts.cacheDir, 'node')).catch((err) => {
      // A failed write is not remembered: the next operation tries again.
      this.preload = undefined;
      throw err;
    });
    return {
      pulumiCommand: await this.command,
      envVars: {
        ...this.opts.programEnv,
        PULUMI_BACKEND_URL: `file://${backend}`,
        PULUMI_CONFIG_PASSPHRASE: this.opts.passphrase,
        PULUMI_SKIP_UPDATE_CHECK: 'true',
        // nodejs scenarios need not ship node_modules: the service's @pulumi/pulumi and
        // @chall-manager/sdk are found here.
        NODE_PATH: this.opts.nodeModulesDir,
        // TypeScript scenarios (index.ts) are transpiled, not type-checked: the type checker
        // resolves modules without NODE_PATH, so it would fail on every import of what the
        // service provides ("Cannot find module '@pulumi/pulumi'"). Authors type-check at home.
        PULUMI_NODEJS_TRANSPILE_ONLY: 'true',
        // A throwing program reports its error at once instead of after a minute of CPU.
        NODE_OPTIONS: nodeOptionsWithPreload(this.opts.programEnv.NODE_OPTIONS, await this.preload),
        ...(project === undefined ? {} : { CM_PROJECT: project }),
        ...guard?.env,
      },
    };
  }

  private guard(signal?: AbortSignal): OperationGuard {
    return new OperationGuard(this.opts.operationTimeoutMs, this.opts.cancelGraceMs, signal);
  }

  /**
   * Removes a preview's stack with everything Pulumi keeps of it, so a validation leaves nothing
   * under DIR. A preview creates no resource and writes no state, so the stack is only files of
   * the file backend (its checkpoint, maybe a lock a cancelled preview left): they are removed as
   * `stack rm --force` would, without a launch.
   */
  private async removePreviewStack(project: string, identity: string): Promise<void> {
    await rm(this.checkpointPath(project, identity), { force: true });
    await this.dropBackendFiles(project, identity);
  }

  /** What Pulumi keeps of a stack beside its checkpoint: backups, history, locks. */
  private async dropBackendFiles(project: string, identity: string): Promise<void> {
    const pulumiDir = join(this.opts.dataDir, 'pulumi', 'backend', '.pulumi');
    await Promise.all([
      rm(join(pulumiDir, 'stacks', project, `${identity}.json.attrs`), { force: true }),
      rm(join(pulumiDir, 'stacks', project, `${identity}.json.bak`), { force: true }),
      rm(join(pulumiDir, 'stacks', project, `${identity}.json.bak.attrs`), { force: true }),
      rm(join(pulumiDir, 'history', project, identity), { recursive: true, force: true }),
      rm(join(pulumiDir, 'backups', project, identity), { recursive: true, force: true }),
      rm(join(pulumiDir, 'locks', 'organization', project, identity), {
        recursive: true,
        force: true,
      }),
    ]);
  }

  /**
   * A killed CLI leaves its lock in the file backend; the service's own locks guarantee no other
   * operation was running on this stack, so the lock is stale.
   */
  private async dropLocks(project: string, identity: string): Promise<void> {
    await rm(
      join(
        this.opts.dataDir,
        'pulumi',
        'backend',
        '.pulumi',
        'locks',
        'organization',
        project,
        identity,
      ),
      {
        recursive: true,
        force: true,
      },
    );
  }

  /** Destroy runs no program, so its diagnostics carry no outputs. */
  private logEvents(stack: string, events: PulumiEvent[]): void {
    const lines: string[] = [];
    for (const event of events) collectLogged(event, lines);
    for (const line of lines) this.logger.debug(`${stack}: ${line}`);
  }
}

async function readPending(path: string): Promise<PendingRecord | undefined> {
  const raw = await readFile(path, 'utf8').catch(() => undefined);
  try {
    return raw === undefined ? undefined : (JSON.parse(raw) as PendingRecord);
  } catch {
    return undefined;
  }
}

/** Upstream stores the inner deployment (`udp.Deployment`); a full export is accepted too. */
function untypedDeployment(state: unknown): { version: number; deployment: unknown } {
  if (
    typeof state === 'object' &&
    state !== null &&
    'version' in state &&
    typeof state.version === 'number' &&
    'deployment' in state
  ) {
    return { version: state.version, deployment: withoutUnusedSecretsProvider(state.deployment) };
  }
  return { version: 3, deployment: withoutUnusedSecretsProvider(state) };
}

/**
 * Upstream encrypted with the passphrase provider and an empty passphrase, under its own salt.
 * A deployment holding no secret value does not need that provider: dropped, the stack's own
 * (our passphrase, our salt) is used, whatever PULUMI_CONFIG_PASSPHRASE is set to here.
 */
function withoutUnusedSecretsProvider(deployment: unknown): unknown {
  if (typeof deployment !== 'object' || deployment === null) return deployment;
  if (JSON.stringify(deployment).includes(SECRET_SIG)) return deployment;
  const copy = { ...(deployment as Record<string, unknown>) };
  delete copy.secrets_providers;
  return copy;
}

function resourcesOf(deployment: unknown): { urn?: unknown }[] {
  if (typeof deployment !== 'object' || deployment === null || !('resources' in deployment))
    return [];
  return Array.isArray(deployment.resources) ? (deployment.resources as { urn?: unknown }[]) : [];
}

/** The project of a deployment, from its URNs: `urn:pulumi:<stack>::<project>::<type>::<name>`. */
function projectOf(deployment: unknown): string | undefined {
  for (const r of resourcesOf(deployment)) {
    if (typeof r.urn !== 'string') continue;
    const project = /^urn:pulumi:[^:]+::([^:]+)::/.exec(r.urn)?.[1];
    if (project !== undefined) return project;
  }
  return undefined;
}

const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

const stackName = (project: string, identity: string): string =>
  `organization/${project}/${identity}`;

/** Diagnostics worth a debug line: `<severity>: <message>` (Pulumi's own debug ones skipped). */
function collectLogged(event: PulumiEvent, into: string[]): void {
  const diag = event.diagnosticEvent;
  if (diag && diag.severity !== 'debug') {
    into.push(`${diag.severity}: ${(diag.message ?? '').trim()}`);
  }
}

function collectDiagnostics(event: PulumiEvent, into: string[]): void {
  const diag = event.diagnosticEvent;
  if (diag?.severity === 'error') into.push((diag.message ?? '').trim());
}

/**
 * As upstream: `connection_info` (required string), `flag` (deprecated, first of the flags),
 * `flags` (array of strings). Ours: `readiness` (a probe or a list of them, see readiness.ts).
 */
function readOutputs(reference: string, outputs: Record<string, unknown>): StackOutputs {
  const info: unknown = outputs.connection_info;
  if (typeof info !== 'string') {
    throw new ScenarioInvalidError(reference, 'the program exported no connection_info string');
  }
  const flags: string[] = [];
  const flag: unknown = outputs.flag;
  if (typeof flag === 'string') flags.push(flag);
  const many: unknown = outputs.flags;
  if (Array.isArray(many)) {
    for (const f of many as unknown[]) {
      if (typeof f !== 'string')
        throw new ScenarioInvalidError(reference, 'the flags output holds a non-string');
      flags.push(f);
    }
  }
  const readiness = parseReadiness(outputs.readiness);
  if (!readiness.ok) throw new ScenarioInvalidError(reference, readiness.problem);
  return {
    connectionInfo: info,
    flags,
    ...(readiness.probes === undefined ? {} : { readiness: readiness.probes }),
  };
}

/** Re-links the scenario's entries into the stack's project directory (replacing older links). */
async function linkScenario(source: string, workDir: string): Promise<void> {
  for (const entry of await readdir(workDir)) {
    const path = join(workDir, entry);
    if ((await lstat(path)).isSymbolicLink()) await unlink(path);
  }
  for (const entry of await readdir(source)) {
    if (STACK_FILES.has(entry) || /^Pulumi\..+\.ya?ml$/.test(entry)) continue;
    await symlink(join(source, entry), join(workDir, entry));
  }
  const project = (await stat(join(source, 'Pulumi.yaml')).catch(() => undefined))
    ? 'Pulumi.yaml'
    : 'Pulumi.yml';
  await copyFile(join(source, project), join(workDir, 'Pulumi.yaml'));
}

async function dropDanglingLinks(workDir: string): Promise<void> {
  for (const entry of await readdir(workDir)) {
    const path = join(workDir, entry);
    if ((await lstat(path)).isSymbolicLink() && !(await stat(path).catch(() => undefined)))
      await unlink(path);
  }
}

/** The error of a failed operation: a timeout when it outlived its bound, else a failure. */
function iacFailure(
  guard: OperationGuard,
  operation: 'up' | 'destroy' | 'import',
  stackName: string,
  cause: unknown,
): IacOperationError | IacTimeoutError {
  return guard.timedOut
    ? new IacTimeoutError(operation, stackName, { cause })
    : new IacOperationError(operation, stackName, { cause });
}
