import { Controller } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { from, map, type Observable } from 'rxjs';
import { DrainState } from '../../shared/transport/drain';
import { ChallengeStoreService } from '../challenge-store.service';
import {
  challengeIdFromGrpc,
  challengeToGrpc,
  createChallengeFromGrpc,
  updateChallengeFromGrpc,
  type ChallengeGrpc,
  type GrpcChallengeIdRequest,
  type GrpcCreateChallengeRequest,
  type GrpcUpdateChallengeRequest,
} from './challenge.wire';

/** api.v1.challenge.ChallengeStore over gRPC. Errors go through the shared filter. */
@Controller()
export class ChallengeStoreGrpcController {
  constructor(
    private readonly store: ChallengeStoreService,
    private readonly drain: DrainState,
  ) {}

  @GrpcMethod('ChallengeStore', 'CreateChallenge')
  async createChallenge(req: GrpcCreateChallengeRequest): Promise<ChallengeGrpc> {
    return challengeToGrpc(
      await this.store.create(createChallengeFromGrpc(req), this.drain.signal),
    );
  }

  @GrpcMethod('ChallengeStore', 'RetrieveChallenge')
  async retrieveChallenge(req: GrpcChallengeIdRequest): Promise<ChallengeGrpc> {
    return challengeToGrpc(await this.store.retrieve(challengeIdFromGrpc(req)));
  }

  @GrpcMethod('ChallengeStore', 'QueryChallenge')
  queryChallenge(): Observable<ChallengeGrpc> {
    return from(this.store.query()).pipe(map(challengeToGrpc));
  }

  @GrpcMethod('ChallengeStore', 'UpdateChallenge')
  async updateChallenge(req: GrpcUpdateChallengeRequest): Promise<ChallengeGrpc> {
    return challengeToGrpc(
      await this.store.update(updateChallengeFromGrpc(req), this.drain.signal),
    );
  }

  @GrpcMethod('ChallengeStore', 'DeleteChallenge')
  async deleteChallenge(req: GrpcChallengeIdRequest): Promise<Record<string, never>> {
    await this.store.delete(challengeIdFromGrpc(req), this.drain.signal);
    return {};
  }
}
