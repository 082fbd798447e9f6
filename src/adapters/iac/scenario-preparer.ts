import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, cp, lstat, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type * as Yaml from 'yaml';
import { ScenarioInvalidError, ScenarioPreprocessError } from '../../shared/errors';
import type { FetchedScenario } from '../../shared/ports';
import { SingleFlight } from '../../shared/single-flight';

const execFileAsync = promisify(execFile);

let yamlModule: typeof Yaml | undefined;

/**
 * The YAML library, loaded when the first scenario is prepared: 72 modules that a service serving
 * reads never needs, kept out of its start-up time and idle memory.
 */
function yaml(): typeof Yaml {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  yamlModule ??= require('yaml') as typeof Yaml;
  return yamlModule;
}

/** A scenario checked and made runnable (Go compiled), cached by digest. */
export interface PreparedScenario {
  digest: string;
  /** Directory to run the program from; `Pulumi.yaml` there is the one to use. */
  directory: string;
  /** Project name from the scenario's Pulumi.yaml (given to the program as `CM_PROJECT`). */
  project: string;
  runtime: 'go' | 'nodejs';
  /** Go only: the program's binary, relative to `directory` (prebuilt or compiled here). */
  binary?: string;
}

interface ProjectFile {
  name?: unknown;
  runtime?: unknown;
  [key: string]: unknown;
}

export interface ScenarioPreparerOptions {
  /** Where prepared scenarios are cached (under the service's CACHE). */
  cacheDir: string;
  /** Environment of the Go compiler (GOPATH, GOCACHE, GOPROXY, …). */
  env: Record<string, string>;
  compileTimeoutMs: number;
}

/**
 * Checks a fetched scenario against the contract (extended with nodejs) and makes
 * it runnable: a Go scenario without a prebuilt `binary` is compiled once per digest, as upstream
 * does. The result is a separate directory, so the fetched files stay pristine.
 */
export class ScenarioPreparer {
  /** One preparation per digest at a time; concurrent callers share it. */
  private readonly preparing = new SingleFlight<PreparedScenario>();

  constructor(private readonly opts: ScenarioPreparerOptions) {}

  prepare(scenario: FetchedScenario): Promise<PreparedScenario> {
    return this.preparing.run(scenario.digest, () => this.prepareOnce(scenario));
  }

  private async prepareOnce(scenario: FetchedScenario): Promise<PreparedScenario> {
    const target = join(this.opts.cacheDir, scenario.digest.replace(':', '_'));
    const marker = join(target, '.prepared.json');
    const done = await readFile(marker, 'utf8').catch(() => undefined);
    if (done !== undefined) return { ...(JSON.parse(done) as PreparedScenario), directory: target };

    const { project, runtime, file, content } = await readProject(scenario);
    // Build in a private temp dir, then rename: a crash never leaves a half-prepared entry.
    const tmp = `${target}.tmp-${randomBytes(6).toString('hex')}`;
    await mkdir(this.opts.cacheDir, { recursive: true, mode: 0o700 });
    try {
      await cp(scenario.directory, tmp, { recursive: true, verbatimSymlinks: true });
      const prepared: PreparedScenario = {
        digest: scenario.digest,
        directory: target,
        project,
        runtime,
      };
      if (runtime === 'go') prepared.binary = await this.prepareGo(scenario, tmp, file, content);
      else await checkNodejs(scenario, tmp, content);
      await writeFile(join(tmp, '.prepared.json'), JSON.stringify(prepared), { mode: 0o600 });
      await rename(tmp, target).catch(async (err: NodeJS.ErrnoException) => {
        // Another process prepared the same digest first: keep theirs.
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
        await rm(tmp, { recursive: true, force: true });
      });
      return prepared;
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  private async prepareGo(
    scenario: FetchedScenario,
    dir: string,
    file: string,
    content: ProjectFile,
  ): Promise<string> {
    const options = optionsOf(content);
    const binary = options?.binary;
    if (binary !== undefined) {
      if (typeof binary !== 'string' || binary === '') {
        throw new ScenarioInvalidError(
          scenario.reference,
          'runtime.options.binary must be a string',
        );
      }
      const path = join(dir, binary);
      if (!isInside(dir, path) || !(await isRegularFile(path))) {
        throw new ScenarioInvalidError(
          scenario.reference,
          `runtime.options.binary "${binary}" is not a file of the scenario`,
        );
      }
      // OCI layers carry no permissions.
      await chmod(path, 0o755);
      return binary;
    }
    if (!(await isRegularFile(join(dir, 'main.go')))) {
      throw new ScenarioInvalidError(
        scenario.reference,
        'runtime go needs runtime.options.binary or a main.go at the root',
      );
    }
    try {
      await execFileAsync('go', ['build', '-o', 'main', '.'], {
        cwd: dir,
        env: { ...this.opts.env, CGO_ENABLED: '0' },
        timeout: this.opts.compileTimeoutMs,
        maxBuffer: 16 * 1024 * 1024,
      });
    } catch (err) {
      throw new ScenarioPreprocessError(scenario.reference, { cause: err });
    }
    await chmod(join(dir, 'main'), 0o755);
    const rewritten = {
      ...content,
      runtime: { name: 'go', options: { ...(options ?? {}), binary: './main' } },
    };
    await writeFile(join(dir, file), yaml().stringify(rewritten), { mode: 0o600 });
    return './main';
  }
}

async function readProject(
  scenario: FetchedScenario,
): Promise<{ project: string; runtime: 'go' | 'nodejs'; file: string; content: ProjectFile }> {
  let file = 'Pulumi.yaml';
  let raw = await readFile(join(scenario.directory, file), 'utf8').catch(() => undefined);
  if (raw === undefined) {
    file = 'Pulumi.yml';
    raw = await readFile(join(scenario.directory, file), 'utf8').catch(() => undefined);
  }
  if (raw === undefined) {
    throw new ScenarioInvalidError(scenario.reference, 'no Pulumi.yaml or Pulumi.yml at the root');
  }
  let content: unknown;
  try {
    content = yaml().parse(raw);
  } catch (err) {
    throw new ScenarioInvalidError(scenario.reference, `${file} is not valid YAML: ${String(err)}`);
  }
  if (typeof content !== 'object' || content === null || Array.isArray(content)) {
    throw new ScenarioInvalidError(scenario.reference, `${file} is not a YAML mapping`);
  }
  const project = content as ProjectFile;
  if (typeof project.name !== 'string' || !/^[A-Za-z0-9_.-]{1,100}$/.test(project.name)) {
    throw new ScenarioInvalidError(
      scenario.reference,
      `${file} needs a project name (letters, digits, _ . -)`,
    );
  }
  const runtimeName =
    typeof project.runtime === 'string'
      ? project.runtime
      : typeof project.runtime === 'object' && project.runtime !== null
        ? (project.runtime as { name?: unknown }).name
        : undefined;
  if (runtimeName !== 'go' && runtimeName !== 'nodejs') {
    throw new ScenarioInvalidError(
      scenario.reference,
      `unsupported runtime: ${String(runtimeName)} (supported: go, nodejs)`,
    );
  }
  return { project: project.name, runtime: runtimeName, file, content: project };
}

/** A nodejs scenario needs an entry point; the service provides @pulumi/pulumi when it ships none. */
async function checkNodejs(
  scenario: FetchedScenario,
  dir: string,
  content: ProjectFile,
): Promise<void> {
  const main = typeof content.main === 'string' ? content.main : undefined;
  const base = main === undefined ? dir : join(dir, main);
  if (!isInside(dir, base)) {
    throw new ScenarioInvalidError(
      scenario.reference,
      `main "${main}" points outside the scenario`,
    );
  }
  const pkg = await readFile(join(base, 'package.json'), 'utf8').catch(() => undefined);
  let entry: string | undefined;
  if (pkg !== undefined) {
    try {
      const parsed = JSON.parse(pkg) as { main?: unknown };
      if (typeof parsed.main === 'string') entry = parsed.main;
    } catch {
      throw new ScenarioInvalidError(scenario.reference, 'package.json is not valid JSON');
    }
  }
  const candidates =
    entry !== undefined ? [entry, `${entry}.js`, `${entry}.ts`] : ['index.js', 'index.ts'];
  for (const c of candidates) {
    const path = join(base, c);
    if (isInside(dir, path) && (await isRegularFile(path))) return;
  }
  throw new ScenarioInvalidError(
    scenario.reference,
    `runtime nodejs needs an entry point: ${candidates.join(' or ')} (package.json "main" or index.js/index.ts)`,
  );
}

function optionsOf(content: ProjectFile): Record<string, unknown> | undefined {
  const runtime = content.runtime;
  if (typeof runtime !== 'object' || runtime === null) return undefined;
  const options = (runtime as { options?: unknown }).options;
  return typeof options === 'object' && options !== null
    ? (options as Record<string, unknown>)
    : undefined;
}

function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith('/') ? root : `${root}/`);
}

async function isRegularFile(path: string): Promise<boolean> {
  const info = await lstat(path).catch(() => undefined);
  if (info?.isSymbolicLink()) return false;
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}
