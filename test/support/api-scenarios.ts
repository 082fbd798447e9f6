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
 * A program that creates a dynamic resource writing `<markerDir>/<identity>` (its delete removes
 * the file), then fails, but only during an `up` (a preview passes, so the challenge can be
 * created): the `up` has created something that must be cleaned.
 */
export function failingUpScenario(markerDir: string): Record<string, string> {
  return {
    'Pulumi.yaml': 'name: failing-up\nruntime: nodejs\n',
    'package.json': PACKAGE_JSON('failing-up'),
    'index.js': `const pulumi = require('@pulumi/pulumi');
const config = new pulumi.Config();
const identity = config.require('identity');
const marker = ${JSON.stringify(markerDir)} + '/' + identity;

const markerProvider = {
  async create(inputs) {
    require('node:fs').writeFileSync(inputs.path, 'created');
    return { id: inputs.path, outs: inputs };
  },
  async delete(id) {
    require('node:fs').rmSync(id, { force: true });
  },
};

const file = new pulumi.dynamic.Resource(markerProvider, 'marker', { path: marker });

exports.connection_info = file.id.apply((id) => {
  if (!pulumi.runtime.isDryRun()) {
    throw new Error('SECRET-PULUMI-TEXT: the program failed after creating ' + id);
  }
  return 'never';
});
`,
  };
}
