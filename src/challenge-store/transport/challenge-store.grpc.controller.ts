import { Controller } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { from, map, type Observable } from 'rxjs';
import type {
  ChallengeGrpc,
  ChallengeStoreGrpcHandlers,
  CreateChallengeRequestGrpc,
  DeleteChallengeRequestGrpc,
  EmptyGrpc,
  RetrieveChallengeRequestGrpc,
  UpdateChallengeRequestGrpc,
} from '../../shared/transport/api-messages.generated';
import { DrainState } from '../../shared/transport/drain';
import { ChallengeStoreService } from '../challenge-store.service';
import {
  challengeIdFromGrpc,
  challengeToGrpc,
  createChallengeFromGrpc,
  updateChallengeFromGrpc,
} from './challenge.wire';

/**
 * api.v1.challenge.ChallengeStore over gRPC, typed by the handlers generated from the proto.
 * Errors go through the shared filter.
 */
@Controller()
export class ChallengeStoreGrpcController implements ChallengeStoreGrpcHandlers {
  constructor(
    private readonly store: ChallengeStoreService,
    private readonly drain: DrainState,
  ) {}

  @GrpcMethod('ChallengeStore', 'CreateChallenge')
  async createChallenge(req: CreateChallengeRequestGrpc): Promise<ChallengeGrpc> {
    return challengeToGrpc(
      await this.store.create(createChallengeFromGrpc(req), this.drain.signal),
    );
  }

  @GrpcMethod('ChallengeStore', 'RetrieveChallenge')
  async retrieveChallenge(req: RetrieveChallengeRequestGrpc): Promise<ChallengeGrpc> {
    return challengeToGrpc(await this.store.retrieve(challengeIdFromGrpc(req)));
  }

  @GrpcMethod('ChallengeStore', 'QueryChallenge')
  queryChallenge(): Observable<ChallengeGrpc> {
    return from(this.store.query()).pipe(map(challengeToGrpc));
  }

  @GrpcMethod('ChallengeStore', 'UpdateChallenge')
  async updateChallenge(req: UpdateChallengeRequestGrpc): Promise<ChallengeGrpc> {
    return challengeToGrpc(
      await this.store.update(updateChallengeFromGrpc(req), this.drain.signal),
    );
  }

  @GrpcMethod('ChallengeStore', 'DeleteChallenge')
  async deleteChallenge(req: DeleteChallengeRequestGrpc): Promise<EmptyGrpc> {
    await this.store.delete(challengeIdFromGrpc(req), this.drain.signal);
    return {};
  }
}
