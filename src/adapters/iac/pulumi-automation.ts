import type * as Automation from '@pulumi/pulumi/automation';

/**
 * The parts of Pulumi's Automation API the engine uses, loaded at their first use rather than at
 * start-up. `@pulumi/pulumi/automation` brings in much of the SDK (its gRPC runtime, generated
 * protobuf code and, through the closure serializer, the TypeScript compiler): about 70 MiB of
 * memory and a good part of the start-up time of a service that may serve reads for a long while
 * before its first `pulumi up`. Types cost nothing at run time and come straight from the SDK.
 */
export type { EngineEvent, OutputMap, Stack } from '@pulumi/pulumi/automation';
export type PulumiCommand = Automation.PulumiCommand;

let sdk: typeof Automation | undefined;

function automation(): typeof Automation {
  // A plain require: the first use waits for nothing but this synchronous load.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  sdk ??= require('@pulumi/pulumi/automation') as typeof Automation;
  return sdk;
}

type Workspaces = typeof Automation.LocalWorkspace;

/** The two static methods of `LocalWorkspace` the engine calls, with all their overloads. */
export const LocalWorkspace: Pick<Workspaces, 'selectStack' | 'createOrSelectStack'> = {
  selectStack: ((...args: Parameters<Workspaces['selectStack']>) =>
    automation().LocalWorkspace.selectStack(...args)) as Workspaces['selectStack'],
  createOrSelectStack: ((...args: Parameters<Workspaces['createOrSelectStack']>) =>
    automation().LocalWorkspace.createOrSelectStack(...args)) as Workspaces['createOrSelectStack'],
};

export const PulumiCommand: Pick<typeof Automation.PulumiCommand, 'get'> = {
  get: (...args) => automation().PulumiCommand.get(...args),
};

/**
 * Stands for one of the SDK's error classes on the right of `instanceof`. Before the SDK is loaded
 * no such error can exist, so the check answers false without loading it.
 */
function errorClass(pick: (sdk: typeof Automation) => abstract new (...args: never[]) => Error): {
  [Symbol.hasInstance](value: unknown): boolean;
} {
  return {
    [Symbol.hasInstance]: (value: unknown): boolean =>
      sdk !== undefined && value instanceof pick(sdk),
  };
}

export const ConcurrentUpdateError = errorClass((s) => s.ConcurrentUpdateError);
export const StackNotFoundError = errorClass((s) => s.StackNotFoundError);
