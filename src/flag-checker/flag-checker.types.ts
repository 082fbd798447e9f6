/** A flag check, validated. */
export interface FlagCheckInput {
  challengeId: string;
  sourceId: string;
  flag: string;
}

export interface FlagCheckResult {
  /** One of the source's instances of the challenge had the flag (within retention). */
  valid: boolean;
  /** Not valid, but another source of the challenge had the flag: that source. */
  sharedFrom?: string;
}

/** A source submitted a flag that another source's instance had. */
export interface FlagSharing {
  challengeId: string;
  /** Who submitted it. */
  sourceId: string;
  /** Whose instance had it. */
  sharedFrom: string;
  at: Date;
}
