import * as pulumi from '@pulumi/pulumi';

/** What chall-manager gives the scenario for one instance. */
export interface Request {
  /**
   * The instance identity: 16 lowercase hex characters, random, unique per instance. Use it to
   * name resources and as the seed of `variate`; do not show it to players.
   */
  identity: string;
  /**
   * The challenge's `additional` values overridden by the instance's: free-form settings the
   * scenario reads (an image, a prefix…). Empty when none are set.
   */
  additional: Record<string, string>;
  /** The Pulumi project the configuration belongs to (`CM_PROJECT`, the scenario's project name). */
  project: string;
}

/** What the scenario gives back to chall-manager. */
export interface Response {
  /** How players reach the instance (`nc host port`, a URL…): shown to them as is. Required. */
  connectionInfo: pulumi.Input<string>;
  /** The instance's flags: exported as a Pulumi secret, so they never show in Pulumi's output. */
  flags?: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * A single flag, exported as `flag` (a secret too). Upstream's deprecated form: chall-manager
   * puts it first in the instance's flags. Prefer `flags`.
   */
  flag?: pulumi.Input<string>;
}

/** The scenario itself: creates the instance's resources, says how to reach them. */
export type Factory = (request: Request) => Response | Promise<Response>;

/** The stack outputs chall-manager reads, as `run` exports them. */
export interface Outputs {
  connection_info: pulumi.Output<string>;
  flags?: pulumi.Output<string[]>;
  flag?: pulumi.Output<string>;
}

/**
 * Runs a chall-manager scenario: reads the stack configuration chall-manager sets (`identity`,
 * `additional`, in the `CM_PROJECT` namespace), calls `factory`, and turns its response into the
 * stack outputs chall-manager reads: `connection_info`, `flags` (secret) and, when given, `flag`
 * (secret).
 *
 * A Pulumi Node.js program's stack outputs are what its module exports, so the program exports
 * what `run` returns:
 *
 * ```ts
 * export = run(async ({ identity }) => ({ connectionInfo: '…', flags: [variate(identity, 'CTF{…}')] }));
 * ```
 *
 * (`module.exports = run(…)` in JavaScript, `export default run(…)` in an ES module.)
 */
export async function run(factory: Factory): Promise<Outputs> {
  if (typeof factory !== 'function') throw new TypeError('run: factory must be a function');
  const request = readRequest();
  const response = await factory(request);
  if (typeof response !== 'object' || response === null) {
    throw new TypeError('run: the factory must return an object with connectionInfo');
  }
  if (response.connectionInfo === undefined || response.connectionInfo === null) {
    throw new TypeError('run: the factory returned no connectionInfo (chall-manager requires it)');
  }
  const outputs: Outputs = { connection_info: pulumi.output(response.connectionInfo) };
  if (response.flags !== undefined) outputs.flags = pulumi.secret(response.flags);
  if (response.flag !== undefined) outputs.flag = pulumi.secret(response.flag);
  return outputs;
}

/** The configuration chall-manager sets, read as upstream's Go SDK reads it. */
function readRequest(): Request {
  // chall-manager names the project in CM_PROJECT; Pulumi's own is the same outside it.
  const project = process.env.CM_PROJECT || pulumi.getProject();
  const config = new pulumi.Config(project);
  const identity = config.require('identity');
  const raw = config.getObject<unknown>('additional') ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TypeError(`run: the config ${project}:additional is not a JSON object`);
  }
  const additional: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== 'string') {
      throw new TypeError(`run: the config ${project}:additional.${key} is not a string`);
    }
    additional[key] = value;
  }
  return { identity, additional, project };
}
