/** The Recall client under its original entry point (see `bots/`). */
export {
  createRecallClient,
  createRecallMediaResolver,
  RecallClient,
  RecallRequestError,
  type RecallBot,
} from "../bots";
