import { SERVICE_VERSION } from '../../version';

/**
 * The REST API as an OpenAPI 2 (Swagger 2.0) document, shaped like the one protoc-gen-openapiv2
 * generates for upstream's grpc-gateway (definitions named `<package><Message>`, streams wrapped
 * as `{result, error}`). Written by hand from our protos; a unit test
 * (test/unit/swagger-document.spec.ts) holds it to them and to the routes the REST controllers
 * register.
 */

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/definitions/${name}` });
const str = (description?: string, extra: Schema = {}): Schema => ({
  type: 'string',
  ...(description && { description }),
  ...extra,
});
const int64 = (description: string): Schema => ({ type: 'string', format: 'int64', description });
const stringMap = (description: string): Schema => ({
  type: 'object',
  additionalProperties: { type: 'string' },
  description,
});
const duration = (description: string): Schema => str(description, { example: '600s' });
const timestamp = (description: string): Schema =>
  str(description, { format: 'date-time', example: '2026-05-01T10:00:00Z' });

const errorResponse = { description: 'An unexpected error response.', schema: ref('rpcStatus') };

const pathParam = (name: string, description: string): Schema => ({
  name,
  description,
  in: 'path',
  required: true,
  type: 'string',
});

const queryParam = (name: string, description: string, extra: Schema = {}): Schema => ({
  name,
  description,
  in: 'query',
  required: false,
  type: 'string',
  ...extra,
});

const bodyParam = (schema: Schema): Schema => ({
  name: 'body',
  in: 'body',
  required: true,
  schema,
});

const streamOf = (message: string): Schema => ({
  type: 'object',
  properties: { result: ref(message), error: ref('rpcStatus') },
  title: `Stream result of ${message}`,
});

const CHALLENGE_FIELDS: Record<string, Schema> = {
  scenario: str('OCI reference of the scenario (a Pulumi program packed as an OCI artifact).'),
  timeout: duration('Lifetime of an instance after creation or renewal; null = no renewal.'),
  until: timestamp('Hard end of the challenge; null = never.'),
  additional: stringMap('Key/value configuration given to the scenario.'),
  min: int64('Number of instances kept pre-provisioned in the pool.'),
  max: int64('Maximum number of instances the pool may pre-provision (0 = no maximum).'),
};

/** The document served at /swagger/swagger.json. */
export const SWAGGER_DOCUMENT = {
  swagger: '2.0',
  info: {
    title: 'chall-manager',
    description:
      'Challenges, on-demand instances and pools, flag checks and lifecycle events. Every operation is also a gRPC method on the same port (packages api.v1.challenge, api.v1.instance, api.v1.flag and api.v1.event).',
    version: SERVICE_VERSION,
  },
  tags: [
    { name: 'ChallengeStore' },
    { name: 'InstanceManager' },
    { name: 'FlagChecker' },
    { name: 'EventStream' },
  ],
  consumes: ['application/json'],
  produces: ['application/json'],
  paths: {
    '/api/v1/challenge': {
      get: {
        summary: 'QueryChallenge streams every challenge, one JSON object per line.',
        operationId: 'ChallengeStore_QueryChallenge',
        responses: {
          '200': {
            description: 'A successful response.(streaming responses)',
            schema: streamOf('challengeChallenge'),
          },
          default: errorResponse,
        },
        tags: ['ChallengeStore'],
      },
      post: {
        summary: 'CreateChallenge registers a challenge, validating its scenario.',
        operationId: 'ChallengeStore_CreateChallenge',
        responses: {
          '200': { description: 'A successful response.', schema: ref('challengeChallenge') },
          default: errorResponse,
        },
        parameters: [bodyParam(ref('challengeCreateChallengeRequest'))],
        tags: ['ChallengeStore'],
      },
    },
    '/api/v1/challenge/{id}': {
      get: {
        summary: 'RetrieveChallenge returns a challenge and its claimed instances.',
        operationId: 'ChallengeStore_RetrieveChallenge',
        responses: {
          '200': { description: 'A successful response.', schema: ref('challengeChallenge') },
          default: errorResponse,
        },
        parameters: [pathParam('id', 'The challenge id.')],
        tags: ['ChallengeStore'],
      },
      delete: {
        summary: 'DeleteChallenge destroys every instance of a challenge, then the challenge.',
        operationId: 'ChallengeStore_DeleteChallenge',
        responses: {
          '200': { description: 'A successful response.', schema: { type: 'object' } },
          default: errorResponse,
        },
        parameters: [pathParam('id', 'The challenge id.')],
        tags: ['ChallengeStore'],
      },
      patch: {
        summary:
          'UpdateChallenge applies the fields named in updateMask; claimed instances are renewed.',
        operationId: 'ChallengeStore_UpdateChallenge',
        responses: {
          '200': { description: 'A successful response.', schema: ref('challengeChallenge') },
          default: errorResponse,
        },
        parameters: [
          pathParam('id', 'The challenge id.'),
          bodyParam(ref('ChallengeStoreUpdateChallengeBody')),
        ],
        tags: ['ChallengeStore'],
      },
    },
    '/api/v1/instance': {
      get: {
        summary: 'QueryInstance streams the instances of a source, one JSON object per line.',
        operationId: 'InstanceManager_QueryInstance',
        responses: {
          '200': {
            description: 'A successful response.(streaming responses)',
            schema: streamOf('instanceInstance'),
          },
          default: errorResponse,
        },
        parameters: [queryParam('sourceId', 'The source id.')],
        tags: ['InstanceManager'],
      },
      post: {
        summary: 'CreateInstance claims a pooled instance or deploys a new one for a source.',
        operationId: 'InstanceManager_CreateInstance',
        responses: {
          '200': { description: 'A successful response.', schema: ref('instanceInstance') },
          default: errorResponse,
        },
        parameters: [bodyParam(ref('instanceCreateInstanceRequest'))],
        tags: ['InstanceManager'],
      },
    },
    '/api/v1/instance/{challengeId}/{sourceId}': {
      get: {
        summary: 'RetrieveInstance returns the instance of a source for a challenge.',
        operationId: 'InstanceManager_RetrieveInstance',
        responses: {
          '200': { description: 'A successful response.', schema: ref('instanceInstance') },
          default: errorResponse,
        },
        parameters: [
          pathParam('challengeId', 'The challenge id.'),
          pathParam('sourceId', 'The source id.'),
        ],
        tags: ['InstanceManager'],
      },
      delete: {
        summary: 'DeleteInstance destroys the instance of a source.',
        operationId: 'InstanceManager_DeleteInstance',
        responses: {
          '200': { description: 'A successful response.', schema: { type: 'object' } },
          default: errorResponse,
        },
        parameters: [
          pathParam('challengeId', 'The challenge id.'),
          pathParam('sourceId', 'The source id.'),
        ],
        tags: ['InstanceManager'],
      },
      patch: {
        summary: 'RenewInstance extends the life of an instance by the challenge timeout.',
        operationId: 'InstanceManager_RenewInstance',
        responses: {
          '200': { description: 'A successful response.', schema: ref('instanceInstance') },
          default: errorResponse,
        },
        parameters: [
          pathParam('challengeId', 'The challenge id.'),
          pathParam('sourceId', 'The source id.'),
          bodyParam({ type: 'object' }),
        ],
        tags: ['InstanceManager'],
      },
    },
    '/api/v1/flag/check': {
      post: {
        summary:
          'Check tells whether a flag is one of the source’s instances’ (live, or deleted within FLAG_RETENTION), and whose it is when another source’s.',
        operationId: 'FlagChecker_Check',
        responses: {
          '200': { description: 'A successful response.', schema: ref('flagCheckResponse') },
          default: errorResponse,
        },
        parameters: [bodyParam(ref('flagCheckRequest'))],
        tags: ['FlagChecker'],
      },
    },
    '/api/v1/events': {
      get: {
        summary:
          'Watch streams lifecycle events as Server-Sent Events: one `id:` and `data:` (the event as JSON) per event, a keep-alive comment every EVENTS_KEEPALIVE. Resumes after Last-Event-ID (or `after`); without either, only events from now on.',
        operationId: 'EventStream_Watch',
        produces: ['text/event-stream'],
        responses: {
          '200': {
            description: 'A stream of events (text/event-stream); the data of each is an event.',
            schema: ref('eventEvent'),
          },
          default: errorResponse,
        },
        parameters: [
          queryParam('challengeId', 'Only the events of this challenge.'),
          queryParam('sourceId', 'Only the events of this source.'),
          queryParam('after', 'Resume after this event id.', { format: 'uint64' }),
          {
            name: 'Last-Event-ID',
            description: 'Resume after this event id (sent by an EventSource that reconnects).',
            in: 'header',
            required: false,
            type: 'string',
          },
        ],
        tags: ['EventStream'],
      },
    },
  },
  definitions: {
    challengeChallenge: {
      type: 'object',
      properties: {
        id: str('The challenge id.'),
        scenario: CHALLENGE_FIELDS.scenario,
        timeout: CHALLENGE_FIELDS.timeout,
        until: CHALLENGE_FIELDS.until,
        instances: {
          type: 'array',
          items: ref('instanceInstance'),
          description: 'Claimed instances (pooled ones are not listed).',
        },
        additional: CHALLENGE_FIELDS.additional,
        min: CHALLENGE_FIELDS.min,
        max: CHALLENGE_FIELDS.max,
      },
    },
    challengeCreateChallengeRequest: {
      type: 'object',
      properties: { id: str('The challenge id.'), ...CHALLENGE_FIELDS },
      required: ['id', 'scenario'],
    },
    ChallengeStoreUpdateChallengeBody: {
      type: 'object',
      properties: {
        scenario: CHALLENGE_FIELDS.scenario,
        updateStrategy: ref('challengeUpdateStrategy'),
        timeout: CHALLENGE_FIELDS.timeout,
        until: CHALLENGE_FIELDS.until,
        updateMask: str(
          'Comma-separated lowerCamelCase fields to apply, among scenario, timeout, until, additional, min, max.',
          { example: 'timeout,until' },
        ),
        additional: CHALLENGE_FIELDS.additional,
        min: CHALLENGE_FIELDS.min,
        max: CHALLENGE_FIELDS.max,
      },
    },
    challengeUpdateStrategy: {
      type: 'string',
      enum: ['update_in_place', 'blue_green', 'recreate'],
      default: 'update_in_place',
      description: 'How existing instances follow a changed scenario or additional.',
    },
    instanceInstance: {
      type: 'object',
      properties: {
        challengeId: str('The challenge id.'),
        sourceId: str('The source (player or team) id.'),
        since: timestamp('When the instance was provisioned.'),
        lastRenew: timestamp('When the instance was last renewed.'),
        until: timestamp('When the instance expires; absent = never.'),
        connectionInfo: str('How to reach the instance.'),
        flag: str('The flag when there is exactly one; deprecated, use flags.'),
        flags: { type: 'array', items: { type: 'string' } },
        additional: stringMap('The instance-level additional configuration.'),
      },
    },
    instanceCreateInstanceRequest: {
      type: 'object',
      properties: {
        challengeId: str('The challenge id.'),
        sourceId: str('The source (player or team) id.'),
        additional: stringMap('Instance-level configuration, merged over the challenge one.'),
      },
      required: ['challengeId', 'sourceId'],
    },
    flagCheckRequest: {
      type: 'object',
      properties: {
        challengeId: str('The challenge id.'),
        sourceId: str('The source (player or team) submitting the flag.'),
        flag: str('The flag submitted (at most 1024 bytes).'),
      },
      required: ['challengeId', 'sourceId', 'flag'],
    },
    flagCheckResponse: {
      type: 'object',
      properties: {
        valid: { type: 'boolean', description: 'One of the source’s instances had the flag.' },
        sharedFrom: str('Not valid, but this other source’s instance had the flag.'),
      },
    },
    eventEvent: {
      type: 'object',
      properties: {
        id: { type: 'string', format: 'uint64', description: 'Monotonic across replicas.' },
        time: timestamp('When the change happened.'),
        type: str(
          'challenge.created, challenge.updated, challenge.deleted, instance.created, instance.ready, instance.renewed, instance.expiring, instance.deleted, instance.failed, pool.low, pool.exhausted or flag.shared.',
        ),
        challengeId: str('The challenge id.'),
        sourceId: str('The source id (instance events of a claimed instance).'),
        identity: str('The instance identity (instance events).'),
        sharedFrom: str('flag.shared: the source whose instance had the flag sourceId submitted.'),
      },
    },
    protobufAny: {
      type: 'object',
      properties: { '@type': { type: 'string' } },
      additionalProperties: {},
    },
    rpcStatus: {
      type: 'object',
      properties: {
        code: { type: 'integer', format: 'int32' },
        message: { type: 'string' },
        details: { type: 'array', items: ref('protobufAny') },
      },
    },
  },
} as const;
