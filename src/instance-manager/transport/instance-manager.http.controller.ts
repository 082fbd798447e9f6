import {
  All,
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  MethodNotAllowedException,
  Param,
  Patch,
  Post,
  Query,
  Res,
} from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import type { InstanceJson, EmptyJson } from '../../shared/transport/api-messages.generated';
import { writeNdjsonStream } from '../../shared/transport/ndjson';
import { DrainState } from '../../shared/transport/drain';
import { FailureReporter } from '../../shared/transport/failure-reporter';
import { InstanceManagerService } from '../instance-manager.service';
import {
  createInstanceFromJson,
  instanceKeyFromPath,
  instanceToJson,
  querySourceFromQuery,
  renewKeyFromJson,
} from './instance.wire';

const KEY = ':challengeId/:sourceId';

/** api.v1.instance.InstanceManager over REST, at upstream's grpc-gateway paths and shapes. */
@Controller('api/v1/instance')
export class InstanceManagerHttpController {
  constructor(
    private readonly instances: InstanceManagerService,
    private readonly drain: DrainState,
    private readonly failures: FailureReporter,
  ) {}

  @Post()
  @HttpCode(200)
  async create(@Body() body: unknown): Promise<InstanceJson> {
    return instanceToJson(
      await this.instances.create(createInstanceFromJson(body), this.drain.signal),
    );
  }

  @Get(KEY)
  async retrieve(
    @Param('challengeId') challengeId: string,
    @Param('sourceId') sourceId: string,
  ): Promise<InstanceJson> {
    const key = instanceKeyFromPath(challengeId, sourceId);
    return instanceToJson(await this.instances.retrieve(key.challengeId, key.sourceId));
  }

  /** Server-streaming QueryInstance (`?sourceId=` or `?source_id=`): NDJSON `{"result": …}`. */
  @Get()
  query(@Query() query: Record<string, unknown>, @Res() res: ServerResponse): Promise<void> {
    return writeNdjsonStream(
      res,
      this.instances.query(querySourceFromQuery(query)),
      instanceToJson,
      this.failures,
    );
  }

  /** RenewInstance; an empty body is accepted, as upstream's gateway does. */
  @Patch(KEY)
  async renew(
    @Param('challengeId') challengeId: string,
    @Param('sourceId') sourceId: string,
    @Body() body: unknown,
  ): Promise<InstanceJson> {
    const key = renewKeyFromJson(challengeId, sourceId, body);
    return instanceToJson(
      await this.instances.renew(key.challengeId, key.sourceId, this.drain.signal),
    );
  }

  @Delete(KEY)
  async delete(
    @Param('challengeId') challengeId: string,
    @Param('sourceId') sourceId: string,
  ): Promise<EmptyJson> {
    const key = instanceKeyFromPath(challengeId, sourceId);
    await this.instances.delete(key.challengeId, key.sourceId, this.drain.signal);
    return {};
  }

  /** A known path with another method: the gateway's 501 "Method Not Allowed". Keep last. */
  @All(['', KEY])
  methodNotAllowed(): never {
    throw new MethodNotAllowedException();
  }
}
