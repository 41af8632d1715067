/**
 * @cairn/client: a promise-based client for the Cairn checkpoint store.
 *
 * The LangGraph.js checkpointer lives in `@cairn/client/langgraph` (it needs @langchain/langgraph-checkpoint).
 */
export {
  CairnClient,
  type CairnClientOptions,
  type CallOptions,
  type CheckpointInput,
  type DeleteInput,
  type ListInput,
  type ListThreadsInput,
  type LoadInput,
  type LoadResult,
  type PruneOptions,
  type PutWritesInput,
  type RetryOptions,
  type SaveFlags,
  type SaveInput,
  type TlsOptions,
  type WriteInput,
} from "./client.js";
export * from "./errors.js";
export {
  type Claim,
  decodeJson,
  isFinal,
  RUN_STATUSES,
  type RetryPolicy,
  type Run,
  type RunAttempt,
  type RunFailure,
  type RunLease,
  type RunPage,
  type RunQuery,
  type RunStatusName,
  type StartRunOptions,
} from "./runs.js";
export { uuidv7 } from "./ids.js";
export {
  type Checkpoint,
  Durability,
  type ListResponse,
  type ListThreadsResponse,
  type PendingWrite,
  type SaveResponse,
  StateEncoding,
  type ThreadInfo,
} from "./gen/cairn/v1/checkpoint_store.js";
