/**
 * Small nodejs scenarios for the API e2e tests, as files (relative path → content). They need no
 * node_modules: the service provides @pulumi/pulumi.
 */

const PACKAGE_JSON = (name: string): string =>
  `${JSON.stringify({ name, private: true, main: 'index.js' })}\n`;

/**
 * Outputs only, no resource (an `up` is quick): `connection_info` = `http://<identity>.ctf.invalid`,
 * `flags` = `PLUGIN{<identity>-<i>}` for i < `additional.flags` (default 1). `variant` lands in a
 * comment, so two variants are two digests of the same program.
 */
export function outputsOnlyScenario(variant = 'v1'): Record<string, string> {
  return {
    'Pulumi.yaml': 'name: outputs-only\nruntime: nodejs\n',
    'package.json': PACKAGE_JSON('outputs-only'),
    'index.js': `// ${variant}
const pulumi = require('@pulumi/pulumi');
const config = new pulumi.Config();
const identity = config.require('identity');
const additional = config.getObject('additional') || {};
const count = Number(additional.flags || '1');
exports.connection_info = 'http://' + identity + '.ctf.invalid';
exports.flags = Array.from({ length: count }, (_, i) => 'PLUGIN{' + identity + '-' + i + '}');
`,
  };
}

/** The identity in a connection info of {@link outputsOnlyScenario}. */
export function identityOfOutputsOnly(connectionInfo: unknown): string {
  return /^http:\/\/([0-9a-f]{16})\.ctf\.invalid$/.exec(String(connectionInfo))?.[1] ?? 'none';
}

/**
 * A program that creates a dynamic resource writing the marker file `<markerDir>/marker-<identity>`
 * (its delete removes it; both append to `<markerDir>/journal.log`), then a second resource whose
 * creation fails: only an `up` fails (a preview creates nothing, so the challenge can be created),
 * leaving the marker to clean. The failure text contains `SECRET-PULUMI-TEXT`.
 */
export function failingUpScenario(markerDir: string): Record<string, string> {
  return {
    'Pulumi.yaml': 'name: failing-up\nruntime: nodejs\n',
    'package.json': PACKAGE_JSON('failing-up'),
    'index.js': `const pulumi = require('@pulumi/pulumi');
const config = new pulumi.Config();
const identity = config.require('identity');
const dir = ${JSON.stringify(markerDir)};

const markerProvider = {
  async create(inputs) {
    const fs = require('node:fs');
    fs.writeFileSync(inputs.dir + '/marker-' + inputs.identity, 'created');
    fs.appendFileSync(inputs.dir + '/journal.log', 'created ' + inputs.identity + '\\n');
    return { id: inputs.identity, outs: inputs };
  },
  async delete(id, outs) {
    const fs = require('node:fs');
    fs.rmSync(outs.dir + '/marker-' + id, { force: true });
    fs.appendFileSync(outs.dir + '/journal.log', 'deleted ' + id + '\\n');
  },
};

const marker = new pulumi.dynamic.Resource(markerProvider, 'marker', { dir, identity });

// Fails once the marker exists (a preview never creates, so it passes).
const failing = {
  async create() {
    throw new Error('SECRET-PULUMI-TEXT: the deployment failed after creating the marker');
  },
};
const boom = new pulumi.dynamic.Resource(failing, 'boom', { after: marker.id });

exports.connection_info = boom.id;
`,
  };
}

/**
 * A program whose `up` never ends: a dynamic resource whose creation waits ten minutes (a
 * preview creates nothing, so the challenge can be created).
 */
export function hangingUpScenario(): Record<string, string> {
  return {
    'Pulumi.yaml': 'name: hanging-up\nruntime: nodejs\n',
    'package.json': PACKAGE_JSON('hanging-up'),
    'index.js': `const pulumi = require('@pulumi/pulumi');
const hang = {
  async create() {
    await new Promise((resolve) => setTimeout(resolve, 600000));
    return { id: 'never', outs: {} };
  },
};
const r = new pulumi.dynamic.Resource(hang, 'hang', {});
exports.connection_info = r.id;
`,
  };
}

/**
 * A program whose `up` records how many `up` of it run at once: a dynamic resource whose creation
 * writes `<dir>/running-<identity>`, appends `<identity> <files running-* seen>` to
 * `<dir>/overlaps.log`, then waits until `<dir>/release` exists (five minutes at most) and
 * removes its file. A preview creates nothing, so the challenge can be created.
 */
export function overlapRecordingScenario(dir: string): Record<string, string> {
  return {
    'Pulumi.yaml': 'name: overlap-recording\nruntime: nodejs\n',
    'package.json': PACKAGE_JSON('overlap-recording'),
    'index.js': `const pulumi = require('@pulumi/pulumi');
const config = new pulumi.Config();
const identity = config.require('identity');

const recorder = {
  async create(inputs) {
    const fs = require('node:fs');
    const path = require('node:path');
    const mine = path.join(inputs.dir, 'running-' + inputs.identity);
    fs.writeFileSync(mine, '');
    const running = fs.readdirSync(inputs.dir).filter((f) => f.startsWith('running-')).length;
    fs.appendFileSync(path.join(inputs.dir, 'overlaps.log'), inputs.identity + ' ' + running + '\\n');
    const deadline = Date.now() + 300000;
    while (!fs.existsSync(path.join(inputs.dir, 'release')) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    fs.rmSync(mine, { force: true });
    return { id: inputs.identity, outs: inputs };
  },
};
const r = new pulumi.dynamic.Resource(recorder, 'recorder', { dir: ${JSON.stringify(dir)}, identity });
exports.connection_info = r.id.apply((id) => 'http://' + id + '.ctf.invalid');
`,
  };
}

/**
 * {@link outputsOnlyScenario}'s outputs behind a dynamic resource whose creation writes
 * `<markerDir>/started-<identity>`, then waits while `<markerDir>/hold` exists (60 s at most):
 * an `up` held in progress for as long as the test wants.
 */
export function gatedUpScenario(markerDir: string): Record<string, string> {
  return {
    'Pulumi.yaml': 'name: gated-up\nruntime: nodejs\n',
    'package.json': `${JSON.stringify({ name: 'gated-up', private: true, main: 'index.js' })}\n`,
    'index.js': `const pulumi = require('@pulumi/pulumi');
const config = new pulumi.Config();
const identity = config.require('identity');

const gate = {
  async create(inputs) {
    const fs = require('node:fs');
    fs.writeFileSync(inputs.dir + '/started-' + inputs.identity, String(process.pid));
    const until = Date.now() + 60000;
    while (fs.existsSync(inputs.dir + '/hold') && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
    }
    return { id: inputs.identity, outs: inputs };
  },
  async delete() {},
};

const gated = new pulumi.dynamic.Resource(gate, 'gated', { dir: ${JSON.stringify(markerDir)}, identity });

exports.connection_info = gated.id.apply((id) => 'http://' + id + '.ctf.invalid');
exports.flags = ['PLUGIN{' + identity + '-0}'];
`,
  };
}
