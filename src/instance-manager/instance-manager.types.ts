export interface CreateInstanceInput {
  challengeId: string;
  sourceId: string;
  additional: Record<string, string>;
}
