/** The Recall client under its original entry point: see `bots/` (the client is `recallClient.ts`). */
export * from "../bots";
