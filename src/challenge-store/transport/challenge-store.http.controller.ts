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
  Res,
} from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import type { ChallengeJson, EmptyJson } from '../../shared/transport/api-messages.generated';
import { writeNdjsonStream } from '../../shared/transport/ndjson';
import { DrainState } from '../../shared/transport/drain';
import { FailureReporter } from '../../shared/transport/failure-reporter';
import { ChallengeStoreService } from '../challenge-store.service';
import {
  challengeIdFromPath,
  challengeToJson,
  createChallengeFromJson,
  updateChallengeFromJson,
} from './challenge.wire';

/** api.v1.challenge.ChallengeStore over REST, at upstream's grpc-gateway paths and shapes. */
@Controller('api/v1/challenge')
export class ChallengeStoreHttpController {
  constructor(
    private readonly store: ChallengeStoreService,
    private readonly drain: DrainState,
    private readonly failures: FailureReporter,
  ) {}

  @Post()
  @HttpCode(200)
  async create(@Body() body: unknown): Promise<ChallengeJson> {
    return challengeToJson(
      await this.store.create(createChallengeFromJson(body), this.drain.signal),
    );
  }

  @Get(':id')
  async retrieve(@Param('id') id: string): Promise<ChallengeJson> {
    return challengeToJson(await this.store.retrieve(challengeIdFromPath(id)));
  }

  /** Server-streaming QueryChallenge: NDJSON `{"result": …}` lines. */
  @Get()
  query(@Res() res: ServerResponse): Promise<void> {
    return writeNdjsonStream(res, this.store.query(), challengeToJson, this.failures);
  }

  @Patch(':id')
  async update(@Param('id') id: string, @Body() body: unknown): Promise<ChallengeJson> {
    return challengeToJson(
      await this.store.update(updateChallengeFromJson(id, body), this.drain.signal),
    );
  }

  @Delete(':id')
  async delete(@Param('id') id: string): Promise<EmptyJson> {
    await this.store.delete(challengeIdFromPath(id), this.drain.signal);
    return {};
  }

  /** A known path with another method: the gateway's 501 "Method Not Allowed". Keep last. */
  @All(['', ':id'])
  methodNotAllowed(): never {
    throw new MethodNotAllowedException();
  }
}
