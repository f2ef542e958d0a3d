/**
 * Provider calls made exactly once after a commit, retried until done (`provider_calls`): the
 * queue other features register their calls with, and its retry job.
 */
export {
  createProviderCalls,
  PermanentProviderCallError,
  type ProviderCall,
  type ProviderCallExecutor,
  type ProviderCallInput,
  type ProviderCallOutcome,
  type ProviderCalls,
  type ProviderCallsDeps,
} from "./queue";
export {
  createProviderCallsModule,
  type ProviderCallsModule,
  type ProviderCallsModuleDeps,
} from "./module";
