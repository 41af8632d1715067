/**
 * CairnSaver: a LangGraph.js checkpointer backed by a Cairn server.
 *
 *     import { CairnSaver } from "@cairn/client/langgraph";
 *     const graph = builder.compile({ checkpointer: new CairnSaver("127.0.0.1:50051") });
 *
 * How LangGraph's model maps onto Cairn:
 * - The checkpoint is serialized whole with the saver's serde (`this.serde.dumpsTyped`) and stored as the
 *   Cairn state, with the serde's type tag ("json", ...) as `state_type`. The checkpoint id, the parent
 *   (`config.configurable.checkpoint_id` on put) and `checkpoint_ns` (Cairn's namespace) map one to one.
 * - Channel values: LangGraph's SQL savers store a channel's value once per version (only the channels
 *   in `newVersions`) and rebuild a checkpoint's values from its parents' versions. Cairn keeps each
 *   checkpoint whole instead: `put` stores the values of the channels in `newVersions` plus, when the
 *   checkpoint has a parent, the unchanged channels LangGraph carries over from it; a checkpoint without a
 *   parent has nothing to carry over, so only its new channels are kept (what the validation suite checks).
 * - Metadata is stored as Cairn metadata (a JSON object, the serde's JSON form as LangGraph's Postgres
 *   saver stores it), so `list({ filter })` filters on the server by JSON containment.
 * - `put` upserts (`replaceExisting`). Writes go through PutWrites: special channels (WRITES_IDX_MAP:
 *   errors, interrupts, ...) use their fixed negative index and replace what is stored; regular writes are
 *   insert-or-ignore, as in LangGraph's Postgres saver. Pending writes come back ordered by
 *   (task_id, idx), LangGraph's order.
 * - LangGraph chains its puts in the background and does not order a task's `putWrites` after the put
 *   of the checkpoint it belongs to. Cairn stores writes only for a stored checkpoint (NOT_FOUND
 *   otherwise), so such writes wait (up to `writesWaitMs`) for that put and are then sent.
 * - Checkpoints of format v < 4 get their parent's pending sends migrated on read, as in LangGraph's savers.
 * - Threads cross between LangGraph Python and LangGraph.js: the saver reads Python's "msgpack" values
 *   (messages and plain values; see cross-language.ts) and makes channel versions in Python's string form.
 * - Inside a run executed by a {@link Worker} (durable runs), every put and putWrites carries the run's lease and
 *   commits only while it is current; a refused one stops the run (see worker.ts). Its checkpoints carry the
 *   run's id as the metadata key `run_id`.
 * - Client options pass through: `new CairnSaver(target, { compressStates: true })` sends and reads the
 *   serialized checkpoints zstd-compressed (see {@link CairnClientOptions.compressStates}).
 */
import type { RunnableConfig } from "@langchain/core/runnables";
import {
  BaseCheckpointSaver,
  type ChannelVersions,
  type Checkpoint,
  type CheckpointListOptions,
  type CheckpointMetadata,
  type CheckpointPendingWrite,
  type CheckpointTuple,
  copyCheckpoint,
  getCheckpointId,
  maxChannelVersion,
  type PendingWrite,
  type SerializerProtocol,
  TASKS,
  WRITES_IDX_MAP,
} from "@langchain/langgraph-checkpoint";
import { CairnClient, type CairnClientOptions, type LoadResult, type WriteInput } from "./client.js";
import { CrossLanguageSerializer, nextChannelVersion } from "./cross-language.js";
import { AlreadyExistsError, NotFoundError, RunStoppedError } from "./errors.js";
import { type RunScope, runScopeOf } from "./run-scope.js";
import { leaseOut } from "./runs.js";
import type {
  ListResponse,
  Checkpoint as StoredCheckpoint,
  PendingWrite as StoredWrite,
} from "./gen/cairn/v1/checkpoint_store.js";

export interface CairnSaverOptions extends CairnClientOptions {
  /** LangGraph serializer; default LangGraph's JsonPlusSerializer. */
  serde?: SerializerProtocol;
  /** List page size used by `list` (capped at 1000 by the server). Default 100. */
  pageSize?: number;
  /** How long `putWrites` waits for the put of its checkpoint when the writes arrive first. Default 10000 ms. */
  writesWaitMs?: number;
}

/**
 * A LangGraph.js checkpointer storing checkpoints and pending writes in Cairn: pass it as `checkpointer` when
 * compiling a graph. It reads and writes the encoding LangGraph Python uses too, so a thread can move between
 * the two (see cross-language.ts). Inside a durable run's worker its writes carry the run's lease, and a write
 * the server refuses under it rejects with a {@link RunStoppedError}.
 */
export class CairnSaver extends BaseCheckpointSaver {
  readonly client: CairnClient;
  private readonly ownsClient: boolean;
  private readonly pageSize: number;
  private readonly writesWaitMs: number;
  private readonly puts = new PutTracker();

  /**
   * @param target `host:port`, `unix:/path`, or an existing {@link CairnClient} (not closed by `close()`).
   * @param options the {@link CairnClientOptions} of the client it makes, and `serde`, `pageSize`, `writesWaitMs`.
   */
  constructor(target: string | CairnClient, options: CairnSaverOptions = {}) {
    const { serde, pageSize = 100, writesWaitMs = 10_000, ...clientOptions } = options;
    super(serde);
    // Reads what LangGraph Python writes too (see cross-language.ts); writes through `serde`.
    this.serde = new CrossLanguageSerializer(this.serde);
    this.ownsClient = typeof target === "string";
    this.client = typeof target === "string" ? new CairnClient(target, clientOptions) : target;
    this.pageSize = Math.max(1, Math.min(pageSize, 1000));
    this.writesWaitMs = writesWaitMs;
  }

  /** Channel versions as LangGraph Python's savers make them, so threads can cross (see cross-language.ts). */
  override getNextVersion(current: number | undefined): number {
    // Typed as numbers because graphs take a BaseCheckpointSaver<number>; LangGraph.js orders strings too.
    return nextChannelVersion(current as string | number | undefined) as number;
  }

  /** Closes the client's channel, when the saver created it. */
  close(): void {
    if (this.ownsClient) this.client.close();
  }

  /**
   * The checkpoint the config names (its `checkpoint_id`, else the thread's head), with its pending writes.
   *
   * @param config `configurable.thread_id`, optional `checkpoint_ns` and `checkpoint_id`.
   * @returns the checkpoint tuple (config, checkpoint, metadata, parent config, pending writes), or undefined for
   *   no such checkpoint, an empty thread or a config without `thread_id`.
   * @throws the {@link CairnClient}'s errors: {@link index!UnavailableError}, {@link index!DeadlineExceededError},
   *   {@link index!UnauthenticatedError}, {@link index!DataLossError} for a stored checkpoint that fails its checksum; every one
   *   is a {@link index!CairnError}.
   */
  async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const { thread_id, checkpoint_ns = "" } = config.configurable ?? {};
    if (thread_id === undefined || thread_id === null) return undefined;
    const checkpointId = getCheckpointId(config);
    try {
      const loaded = await this.client.load({ threadId: String(thread_id), namespace: checkpoint_ns, checkpointId });
      return await this.toTuple(loaded.checkpoint, loaded.pendingWrites);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /**
   * The checkpoints of a thread (or of every thread when the config names none), newest first, page by page.
   *
   * @param config optional `configurable.thread_id` and `checkpoint_ns`.
   * @param options `filter` (metadata the checkpoints contain), `before` (a config: only older ones), `limit`.
   * @returns an async generator of checkpoint tuples with their pending writes.
   * @throws the {@link CairnClient}'s errors: {@link index!UnavailableError}, {@link index!DeadlineExceededError},
   *   {@link index!UnauthenticatedError}, {@link index!DataLossError} for a stored checkpoint that fails its checksum; every one
   *   is a {@link index!CairnError}.
   */
  async *list(config: RunnableConfig, options: CheckpointListOptions = {}): AsyncGenerator<CheckpointTuple> {
    const { filter, before, limit } = options;
    if (limit !== undefined && limit <= 0) return;
    const conf = config?.configurable ?? {};
    const threadId = conf.thread_id == null ? "" : String(conf.thread_id);
    const onlyId: string | undefined = conf.checkpoint_id || undefined;
    const beforeId = before ? getCheckpointId(before) || undefined : undefined;
    const matches = (id: string) => (beforeId === undefined || id < beforeId) && (onlyId === undefined || id === onlyId);

    if (onlyId !== undefined && threadId) {
      const tuple = await this.getTuple(config);
      if (tuple && matches(tuple.checkpoint.id) && contains(tuple.metadata, filter)) yield tuple;
      return;
    }
    const query = {
      threadId,
      namespace: conf.checkpoint_ns ?? undefined, // unset: every namespace, as LangGraph's savers do
      metadataFilter: filter && Object.keys(filter).length > 0 ? jsonSafe(filter) : undefined,
      pageSize: Math.min(limit ?? this.pageSize, this.pageSize),
      includeState: true,
      includeWrites: true,
    };
    // The server narrows by `before` (older = stored earlier); `matches` then applies LangGraph's rule (a
    // smaller id). When `before` names no checkpoint in this scope the server says NOT_FOUND, and the ids
    // are compared on the client only, as LangGraph's SQL savers do.
    let pages = this.client.listPages({ ...query, beforeCheckpointId: beforeId });
    let first: IteratorResult<ListResponse>;
    try {
      first = await pages.next();
    } catch (err) {
      if (!(err instanceof NotFoundError) || beforeId === undefined) throw err;
      pages = this.client.listPages(query);
      first = await pages.next();
    }
    let remaining = limit ?? Infinity;
    for (let page = first; !page.done; page = await pages.next()) {
      const writes = groupWrites(page.value.pendingWrites);
      for (const cp of page.value.checkpoints) {
        if (!matches(cp.checkpointId)) continue;
        yield await this.toTuple(cp, writes.get(writeKey(cp.threadId, cp.namespace, cp.checkpointId)) ?? []);
        if (--remaining <= 0) {
          await pages.return(undefined);
          return;
        }
      }
    }
  }

  /**
   * Saves a checkpoint as the new head of its thread's namespace (an upsert: LangGraph may put the same id again).
   *
   * @param config `configurable.thread_id`, `checkpoint_ns`, and `checkpoint_id`: the parent.
   * @param checkpoint the checkpoint, serialized with `serde`.
   * @param metadata its metadata (searchable with `list`'s `filter`).
   * @param newVersions the channel versions it changed; a first checkpoint (no parent) keeps only those channels.
   * @returns the config naming the stored checkpoint.
   * @throws Error when the config has no `thread_id`; {@link RunStoppedError} under a durable run whose lease
   *   the server refused; {@link index!ResourceExhaustedError} for a state over the server's limit.
   * @throws the {@link CairnClient}'s errors: {@link index!UnavailableError}, {@link index!DeadlineExceededError},
   *   {@link index!UnauthenticatedError}, {@link index!DataLossError} for a stored checkpoint that fails its checksum; every one
   *   is a {@link index!CairnError}.
   */
  async put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    if (config.configurable === undefined) throw new Error(`Missing "configurable" field in "config" param`);
    const { thread_id, checkpoint_ns = "", checkpoint_id: parentId } = config.configurable;
    if (thread_id === undefined || thread_id === null) {
      throw new Error(`Missing "thread_id" field in "config.configurable": the thread to save the checkpoint to`);
    }
    const threadId = String(thread_id);
    const scope = runScopeOf(config);
    if (scope?.stopped) throw scope.reason;
    const stored = copyCheckpoint(checkpoint);
    if (!parentId) {
      stored.channel_values = Object.fromEntries(
        Object.entries(stored.channel_values).filter(([channel]) => channel in newVersions),
      );
    }
    const [[stateType, state], storedMetadata] = await Promise.all([
      this.serde.dumpsTyped(stored),
      this.dumpMetadata(metadata),
    ]);
    if (scope) storedMetadata.run_id = scope.runId; // the run's checkpoints, for resuming it and DeleteRuns
    await this.client
      .save(
        {
          threadId,
          namespace: checkpoint_ns,
          checkpointId: checkpoint.id,
          parentCheckpointId: parentId ?? "",
          state,
          stateType,
          metadata: storedMetadata,
        },
        { replaceExisting: true, runLease: scope?.lease },
      )
      .catch((err) => stopOn(scope, err));
    this.puts.stored(writeKey(threadId, checkpoint_ns, checkpoint.id));
    return { configurable: { thread_id: threadId, checkpoint_ns, checkpoint_id: checkpoint.id } };
  }

  /**
   * Stores the pending writes of a task against the config's checkpoint. When they arrive before the checkpoint's
   * own `put`, it waits up to `writesWaitMs` for it. A write stored before with another value is kept (LangGraph's
   * insert-or-ignore), except for the special channels, which are replaced.
   *
   * @param config `configurable.thread_id`, `checkpoint_ns` and `checkpoint_id`.
   * @param writes `[channel, value]` pairs, serialized with `serde`.
   * @param taskId the task that wrote them.
   * @throws Error when the config has no `thread_id` or `checkpoint_id`; {@link NotFoundError} when the
   *   checkpoint did not appear within `writesWaitMs`; {@link RunStoppedError} under a refused run lease.
   * @throws the {@link CairnClient}'s errors: {@link index!UnavailableError}, {@link index!DeadlineExceededError},
   *   {@link index!UnauthenticatedError}, {@link index!DataLossError} for a stored checkpoint that fails its checksum; every one
   *   is a {@link index!CairnError}.
   */
  async putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string): Promise<void> {
    const { thread_id, checkpoint_ns = "", checkpoint_id } = config.configurable ?? {};
    if (thread_id === undefined || thread_id === null) throw new Error(`Missing "thread_id" field in "config.configurable"`);
    if (!checkpoint_id) throw new Error(`Missing "checkpoint_id" field in "config.configurable"`);
    if (writes.length === 0) return;
    const items: WriteInput[] = await Promise.all(
      writes.map(async ([channel, value], idx) => {
        const [valueType, raw] = await this.serde.dumpsTyped(value);
        return { idx: WRITES_IDX_MAP[channel] ?? idx, channel, valueType, value: raw };
      }),
    );
    const scope = runScopeOf(config);
    if (scope?.stopped) throw scope.reason;
    const runLease = scope ? leaseOut(scope.lease) : undefined;
    const target = { threadId: String(thread_id), namespace: checkpoint_ns, checkpointId: checkpoint_id, taskId, runLease };
    const special = writes.every(([channel]) => channel in WRITES_IDX_MAP);
    const send = async () => {
      try {
        await this.client.putWrites({ ...target, writes: items, replace: special });
      } catch (err) {
        if (!(err instanceof AlreadyExistsError)) throw err;
        // A regular write is stored with another value: keep it (insert-or-ignore) and store the new ones.
        for (const item of items) {
          await this.client.putWrites({ ...target, writes: [item] }).catch((e) => {
            if (!(e instanceof AlreadyExistsError)) throw e;
          });
        }
      }
    };
    try {
      await send();
    } catch (err) {
      const key = writeKey(target.threadId, checkpoint_ns, checkpoint_id);
      if (!(err instanceof NotFoundError) || !(await this.puts.wait(key, this.writesWaitMs))) stopOn(scope, err);
      await send().catch((e) => stopOn(scope, e)); // the checkpoint's put landed meanwhile
    }
  }

  /**
   * Deletes a thread: every checkpoint of every namespace, with their writes. Deleting an empty thread succeeds.
   *
   * @param threadId the thread to delete.
   * @throws the {@link CairnClient}'s errors: {@link index!UnavailableError}, {@link index!DeadlineExceededError},
   *   {@link index!UnauthenticatedError}, {@link index!DataLossError} for a stored checkpoint that fails its checksum; every one
   *   is a {@link index!CairnError}.
   */
  async deleteThread(threadId: string): Promise<void> {
    await this.client.clear(String(threadId));
  }

  private async toTuple(cp: StoredCheckpoint, writes: StoredWrite[]): Promise<CheckpointTuple> {
    const checkpoint: Checkpoint = await this.serde.loadsTyped(cp.stateType, cp.state);
    if (checkpoint.v < 4 && cp.parentCheckpointId) await this.migratePendingSends(checkpoint, cp);
    const pendingWrites: CheckpointPendingWrite[] = await Promise.all(
      writes.map(async (w) => [w.taskId, w.channel, await this.serde.loadsTyped(w.valueType, w.value)] as CheckpointPendingWrite),
    );
    const at = (checkpoint_id: string) => ({
      configurable: { thread_id: cp.threadId, checkpoint_ns: cp.namespace, checkpoint_id },
    });
    return {
      config: at(cp.checkpointId),
      checkpoint,
      metadata: await this.loadMetadata(cp.metadata ?? {}),
      parentConfig: cp.parentCheckpointId ? at(cp.parentCheckpointId) : undefined,
      pendingWrites,
    };
  }

  /** Format < 4 kept pending sends as writes of the parent; LangGraph now expects them in the TASKS channel. */
  private async migratePendingSends(checkpoint: Checkpoint, cp: StoredCheckpoint): Promise<void> {
    let parent: LoadResult;
    try {
      parent = await this.client.load({ threadId: cp.threadId, namespace: cp.namespace, checkpointId: cp.parentCheckpointId });
    } catch (err) {
      if (err instanceof NotFoundError) return;
      throw err;
    }
    const sends = parent.pendingWrites.filter((w) => w.channel === TASKS);
    if (sends.length === 0) return;
    const values = await Promise.all(sends.map((w) => this.serde.loadsTyped(w.valueType, w.value)));
    const versions = Object.values(checkpoint.channel_versions ?? {});
    checkpoint.channel_values = { ...checkpoint.channel_values, [TASKS]: values };
    checkpoint.channel_versions = {
      ...checkpoint.channel_versions,
      [TASKS]: versions.length > 0 ? maxChannelVersion(...versions) : this.getNextVersion(undefined),
    };
  }

  /** Metadata revived by the serde (a round trip through it, as LangGraph's Postgres saver does). */
  private async loadMetadata(metadata: Record<string, unknown>): Promise<CheckpointMetadata> {
    const [type, raw] = await this.serde.dumpsTyped(metadata);
    return this.serde.loadsTyped(type, raw);
  }

  /** Metadata in the serde's JSON form (what LangGraph's Postgres saver stores); plain JSON for other serdes. */
  private async dumpMetadata(metadata: CheckpointMetadata): Promise<Record<string, unknown>> {
    const [type, raw] = await this.serde.dumpsTyped(metadata);
    return type === "json" ? JSON.parse(new TextDecoder().decode(raw)) : jsonSafe(metadata);
  }
}

/** Rethrows `err`, first stopping the Worker's run when the server refused a fenced write. */
function stopOn(scope: RunScope | undefined, err: unknown): never {
  if (scope && err instanceof RunStoppedError) scope.stop(err);
  throw err;
}

/** Keys of checkpoints whose put completed, and `putWrites` calls waiting for one. */
class PutTracker {
  private readonly done = new Set<string>();
  private readonly waiters = new Map<string, Array<() => void>>();

  constructor(private readonly max = 10_000) {}

  stored(key: string): void {
    this.done.delete(key);
    this.done.add(key);
    if (this.done.size > this.max) this.done.delete(this.done.values().next().value!);
    for (const wake of this.waiters.get(key) ?? []) wake();
    this.waiters.delete(key);
  }

  /** Resolves true once the checkpoint `key` is stored (at once if it already is), false after `ms`. */
  wait(key: string, ms: number): Promise<boolean> {
    if (this.done.has(key)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const list = this.waiters.get(key) ?? [];
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        const rest = (this.waiters.get(key) ?? []).filter((w) => w !== wake);
        if (rest.length > 0) this.waiters.set(key, rest);
        else this.waiters.delete(key);
        resolve(false);
      }, ms);
      list.push(wake);
      this.waiters.set(key, list);
    });
  }
}

function writeKey(threadId: string, namespace: string, checkpointId: string): string {
  return JSON.stringify([threadId, namespace, checkpointId]);
}

function groupWrites(writes: StoredWrite[]): Map<string, StoredWrite[]> {
  const byCheckpoint = new Map<string, StoredWrite[]>();
  for (const w of writes) {
    const key = writeKey(w.threadId, w.namespace, w.checkpointId);
    const list = byCheckpoint.get(key);
    if (list) list.push(w);
    else byCheckpoint.set(key, [w]);
  }
  return byCheckpoint;
}

/** The value as plain JSON (what a JSON store keeps). */
function jsonSafe<T>(value: T): T {
  return JSON.parse(JSON.stringify(value));
}

/** JSON containment (Postgres `@>`), the semantics of the server's metadata filter. */
function contains(doc: unknown, pattern: unknown): boolean {
  if (pattern === undefined) return true;
  if (Array.isArray(pattern)) {
    return Array.isArray(doc) && pattern.every((p) => doc.some((d) => contains(d, p)));
  }
  if (pattern !== null && typeof pattern === "object") {
    if (doc === null || typeof doc !== "object" || Array.isArray(doc)) return false;
    const d = doc as Record<string, unknown>;
    return Object.entries(pattern).every(([k, v]) => k in d && contains(d[k], v));
  }
  return doc === pattern;
}

export { Worker, type DurableGraph, type WorkerOptions, defaultRetryable } from "./worker.js";
export { ACTIVITY, activity, NodeTimeout } from "./activity.js";
