/**
 * CairnClient: a promise-based client for the Cairn checkpoint store (cairn.v1.CheckpointStore).
 *
 *     const client = new CairnClient("127.0.0.1:50051", { token: process.env.CAIRN_TOKEN });
 *     const { checkpointId } = await client.save({ threadId: "t1", state: bytes, stateType: "json" });
 *     const { checkpoint, pendingWrites } = await client.load({ threadId: "t1" });
 *
 * Every method takes an optional {@link CallOptions} (AbortSignal, deadline) last, resolves with the
 * response and rejects with a {@link CairnError} subclass. Calls failing with UNAVAILABLE are retried by
 * gRPC itself (retry policy in the channel's service config). Retried saves stay idempotent because the
 * client generates checkpoint ids: a re-sent Save is recognised as the same checkpoint (`alreadyExisted`).
 */
import { once } from "node:events";
import { type ChannelOptions, type ClientUnaryCall, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import {
  BatchLoadRequest,
  CancelRunRequest,
  type Checkpoint,
  CheckpointStoreClient,
  ClaimRunRequest,
  ClearRequest,
  CopyThreadRequest,
  DeleteRequest,
  DeleteRunsRequest,
  type Durability,
  GetRunRequest,
  HeartbeatRequest,
  ListRequest,
  type ListResponse,
  ListThreadsRequest,
  type ListThreadsResponse,
  LoadRequest,
  type PendingWrite,
  PruneRequest,
  PruneStrategy,
  PutWritesRequest,
  type RunLease,
  type SaveBatchRequest,
  SaveRequest,
  type SaveResponse,
  type SaveStreamRequest,
  type SaveStreamResponse,
  type Write,
} from "./gen/cairn/v1/checkpoint_store.js";
import { Coalescer } from "./coalesce.js";
import {
  CairnError,
  type CancelledError,
  cancelledError,
  ConflictError,
  Code,
  DataLossError,
  fromItemError,
  InternalError,
  type RunStoppedError,
  toCairnError,
} from "./errors.js";
import { uuidv7 } from "./ids.js";
import {
  type Claim,
  completeRunRequest,
  failRunRequest,
  leaseOut,
  listRunsRequest,
  type Run,
  type RunFailure,
  type RunPage,
  type RunQuery,
  runFromProto,
  runsPage,
  type StartRunOptions,
  startRunRequest,
} from "./runs.js";
import { StateWire } from "./state-wire.js";

/** TLS settings (PEM buffers); `true` means TLS with the system's root certificates. */
export interface TlsOptions {
  /** CA certificates to trust instead of the system roots. */
  rootCerts?: Buffer;
  /** Client key and certificate, for servers that require mutual TLS. */
  privateKey?: Buffer;
  certChain?: Buffer;
  /** Host name to verify the server's certificate against (`grpc.ssl_target_name_override`). */
  serverName?: string;
}

/** Retry of calls failing with UNAVAILABLE (a gRPC retry policy: exponential backoff with jitter). */
export interface RetryOptions {
  /** Attempts in total, first one included (gRPC caps it at 5). Default 5. */
  maxAttempts?: number;
  /** Default 100 ms. */
  initialBackoffMs?: number;
  /** Default 5000 ms. */
  maxBackoffMs?: number;
}

export interface CairnClientOptions {
  /** Bearer token sent as `authorization: Bearer TOKEN` metadata with every call (also over plaintext). */
  token?: string;
  /** TLS for `host:port` targets; default plaintext. Ignored for `unix:` targets. */
  tls?: boolean | TlsOptions;
  /** Deadline of each call in milliseconds, unless the call sets its own. Default 30000; Infinity = none. */
  deadlineMs?: number;
  /** Retry of UNAVAILABLE calls; `false` turns retries off. */
  retry?: RetryOptions | false;
  /** Largest message sent or received, in bytes. Default 128 MiB (the server accepts states up to 64 MiB). */
  maxMessageBytes?: number;
  /** Extra grpc-js channel options. */
  channelOptions?: ChannelOptions;
  /**
   * gRPC channels (TCP connections) to open, calls going round-robin over them. Default 1. With
   * `cairn serve --workers N` use N or a few more: the server's processes share its port by connection, so one
   * channel reaches one of them.
   */
  channels?: number;
  /**
   * Send and receive states zstd-compressed (STATE_ENCODING_ZSTD): fewer bytes on the network, and the server
   * neither compresses saves nor decompresses loads. Default false. Saves are compressed only after a
   * SaveResponse of the server said it accepts zstd (an older server would store the frame as the state), so
   * enable it only when every server the client may reach supports it (mind rolling upgrades). Loads, batch
   * loads and lists ask for zstd and always resolve with the raw state; a zstd state that does not decode
   * rejects with a {@link DataLossError} (reason STATE_ENCODING).
   */
  compressStates?: boolean;
  /**
   * Senders of one kind (saves; loads) on the wire at once, per channel. A call goes out alone when none of its
   * kind is in flight; concurrent ones wait to go together in one batch call (SaveBatch; BatchLoad), another
   * sender starting once 4 wait, each keeping its own outcome, deadline and AbortSignal (see coalesce.ts). Many graphs in one process then share gRPC's per-call cost; a lone caller waits for
   * nothing. Default 4; 0 sends every call on its own. A server without SaveBatch gets every call on its own.
   */
  coalesce?: number;
}

/** Per-call options. */
export interface CallOptions {
  /** Cancels the call; it then rejects with a {@link CancelledError} whose `cause` is the signal's reason. */
  signal?: AbortSignal;
  /** Deadline of this call in milliseconds from now (overrides the client's `deadlineMs`). */
  deadlineMs?: number;
}

/** The checkpoint to save: `threadId` and `state` are required; `checkpointId` is generated (UUIDv7) when left out. */
export type CheckpointInput = Pick<Checkpoint, "threadId" | "state"> &
  Partial<Pick<Checkpoint, "namespace" | "checkpointId" | "parentCheckpointId" | "stateType" | "metadata" | "nodeName" | "nextNodes">>;

/** Compare-and-set, durability and upsert flags of a Save (see SaveRequest in the proto). */
export interface SaveFlags {
  /** Save only if the head of (thread, namespace) is this checkpoint; else {@link ConflictError}. */
  expectedHeadId?: string;
  /** Save only if (thread, namespace) holds no checkpoint yet; else {@link ConflictError}. */
  expectEmpty?: boolean;
  durability?: Durability;
  /** Replace a stored checkpoint with the same id (upsert) instead of failing with ALREADY_EXISTS. */
  replaceExisting?: boolean;
  /**
   * Fencing: the save commits only while this is its run's current lease (checked in the same transaction as
   * the write); otherwise it rejects with a {@link RunStoppedError} and nothing is stored.
   */
  runLease?: RunLease;
}

/** One save of {@link CairnClient.saveStream}. */
export type SaveInput = { checkpoint: CheckpointInput } & SaveFlags;

/** A loaded checkpoint with its pending writes, ordered by (task_path, task_id, idx). */
export interface LoadResult {
  checkpoint: Checkpoint;
  pendingWrites: PendingWrite[];
}

type Req<T, K extends keyof T> = Pick<T, K> & Partial<T>;
export type LoadInput = Req<LoadRequest, "threadId">;
export type ListInput = Partial<ListRequest>;
export type ListThreadsInput = Partial<ListThreadsRequest>;
export type DeleteInput = Req<DeleteRequest, "threadId" | "checkpointId">;
export type WriteInput = Req<Write, "channel" | "value">;
export type PutWritesInput = Req<Omit<PutWritesRequest, "writes">, "threadId" | "checkpointId" | "taskId"> & {
  writes: WriteInput[];
};
export interface PruneOptions {
  /** "keep_latest" (default) keeps `keepCount` (default 1) newest checkpoints per namespace; "delete_all" removes all. */
  strategy?: "keep_latest" | "delete_all";
  keepCount?: number;
}

const SERVICE = "cairn.v1.CheckpointStore";
const DEFAULT_DEADLINE_MS = 30_000;
const DEFAULT_MAX_MESSAGE_BYTES = 128 * 1024 * 1024;
const DEFAULT_COALESCE = 4;
// A coalesced batch call's bounds: the server takes up to --max-batch-items (1000) per call, and its commit and
// response budgets cut larger ones anyway; these keep one batch's latency near a single call's.
const BATCH_ITEMS = 64;
const BATCH_BYTES = 4 << 20;

type Callback<Res> = (err: ServiceError | null, res: Res) => void;
type UnaryMethod<Req, Res> = (req: Req, md: Metadata, opts: { deadline?: Date }, cb: Callback<Res>) => ClientUnaryCall;

export class CairnClient {
  /** The generated grpc-js stub, for anything this class does not cover (the first channel's). */
  readonly stub: CheckpointStoreClient;
  private readonly stubs: CheckpointStoreClient[];
  private nextStub = 0;
  readonly target: string;
  private readonly token?: string;
  private readonly deadlineMs: number;
  private readonly wire: StateWire;
  private readonly saves?: Coalescer<SaveRequest, SaveResponse>;
  private readonly loads?: Coalescer<LoadRequest, LoadResult>;

  /**
   * Opens a channel to a Cairn server; it connects on the first call.
   *
   * @param target `host:port`, or `unix:/path/to.sock` (gRPC's unix scheme).
   * @param options token, tls, deadlineMs, retry, maxMessageBytes, channelOptions, channels, compressStates,
   *   coalesce.
   * @throws RangeError for `channels` below 1 or `coalesce` below 0 (or not an integer).
   */
  constructor(target: string, options: CairnClientOptions = {}) {
    this.target = target;
    this.token = options.token;
    this.deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    const maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.wire = new StateWire(options.compressStates ?? false, maxBytes);
    const channelOptions: ChannelOptions = {
      "grpc.max_send_message_length": maxBytes,
      "grpc.max_receive_message_length": maxBytes,
      "grpc.service_config": JSON.stringify(serviceConfig(options.retry)),
      ...(options.retry === false ? { "grpc.enable_retries": 0 } : {}),
      ...options.channelOptions,
    };
    const tls = target.startsWith("unix:") ? false : options.tls ?? false;
    let creds = credentials.createInsecure();
    if (tls) {
      const t: TlsOptions = tls === true ? {} : tls;
      creds = credentials.createSsl(t.rootCerts ?? null, t.privateKey ?? null, t.certChain ?? null);
      if (t.serverName) channelOptions["grpc.ssl_target_name_override"] = t.serverName;
    }
    const channels = options.channels ?? 1;
    if (!Number.isInteger(channels) || channels < 1) {
      throw new RangeError(`channels must be an integer >= 1 (got ${channels}); use 1 for a single connection`);
    }
    // grpc-js shares one connection between channels with equal options unless each has its own subchannel pool
    const pooled: ChannelOptions = channels > 1 ? { ...channelOptions, "grpc.use_local_subchannel_pool": 1 } : channelOptions;
    this.stubs = Array.from({ length: channels }, () => new CheckpointStoreClient(target, creds, pooled));
    this.stub = this.stubs[0]!;
    const coalesce = options.coalesce ?? DEFAULT_COALESCE;
    if (!Number.isInteger(coalesce) || coalesce < 0) {
      throw new RangeError(`coalesce must be an integer >= 0 (got ${coalesce}); 0 sends every call on its own`);
    }
    if (coalesce > 0) {
      const maxInflight = coalesce * channels;
      this.saves = new Coalescer(
        (req, deadlineMs, signal) => this.unary(this.stub.save, req, { deadlineMs, signal }),
        (reqs, deadlineMs, signal) => this.saveMany(reqs, { deadlineMs, signal }),
        { maxInflight, maxItems: BATCH_ITEMS, maxBytes: Math.min(BATCH_BYTES, maxBytes), size: saveSize },
      );
      this.loads = new Coalescer(
        (req, deadlineMs, signal) => this.loadOne(req, { deadlineMs, signal }),
        (reqs, deadlineMs, signal) => this.loadMany(reqs, { deadlineMs, signal }),
        {
          maxInflight,
          maxItems: BATCH_ITEMS,
          maxBytes: BATCH_BYTES,
          size: () => 64,
          // A batch item refused for the response budget its batch shared may fit alone.
          retryAlone: (err) => err.code === Code.RESOURCE_EXHAUSTED,
        },
      );
    }
  }

  /** The stub of the next call: round-robin over the channels. */
  private pick(): CheckpointStoreClient {
    const stub = this.stubs[this.nextStub]!;
    this.nextStub = (this.nextStub + 1) % this.stubs.length;
    return stub;
  }

  /**
   * Closes the channels. Coalesced saves and loads still waiting, queued or in a batch on the wire, are cancelled
   * and their callers answered at once with a CancelledError.
   */
  close(): void {
    this.saves?.close();
    this.loads?.close();
    for (const stub of this.stubs) stub.close();
  }

  /**
   * Saves one checkpoint and makes it the head of its (thread, namespace). Generates a UUIDv7
   * `checkpointId` when none is given, so a retry stores the same checkpoint once (`alreadyExisted`).
   * Concurrent saves go together as SaveBatch calls (the `coalesce` option), each with its own outcome and
   * deadline.
   *
   * @param checkpoint the checkpoint: `threadId`, `state` bytes, `stateType`, metadata, parent, node names.
   * @param options compare-and-set (`expectedHeadId`, `expectEmpty`), `replaceExisting`, `signal`, `deadlineMs`.
   * @returns the stored checkpoint's id, sequence, creation time and stored size.
   * @throws {@link ConflictError} when the compare-and-set fails (`currentHeadId`);
   *   {@link AlreadyExistsError} when the id holds other content; {@link InvalidArgumentError} (`field`);
   *   {@link ResourceExhaustedError} for a state over the server's limit.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async save(checkpoint: CheckpointInput, options: SaveFlags & CallOptions = {}): Promise<SaveResponse> {
    const req = await this.wire.outgoing(saveRequest({ ...options, checkpoint }));
    try {
      return this.wire.saved(await this.saveOne(req, options));
    } catch (err) {
      if (selfConflict(req, err)) return this.wire.saved(await this.saveOne(withoutCas(req), options));
      throw err;
    }
  }

  /** One save: coalesced with concurrent ones unless `coalesce` is 0. */
  private saveOne(req: SaveRequest, options: CallOptions): Promise<SaveResponse> {
    if (!this.saves) return this.unary(this.stub.save, req, options);
    return this.saves.call(req, options.deadlineMs ?? this.deadlineMs, options.signal);
  }

  /**
   * Saves many checkpoints in one call (SaveBatch), each under the rules of {@link CairnClient.save}: they
   * commit together, and each gets its own result in request order, so one failed save (a lost compare-and-set,
   * an id conflict) does not fail the rest. Saves of one (thread, namespace) apply in request order. Concurrent
   * {@link CairnClient.save} calls are batched like this without asking (the `coalesce` option).
   *
   * @param saves the saves (`checkpoint` and the {@link SaveFlags}), up to the server's --max-batch-items.
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns one {@link SaveResponse} or {@link CairnError} per save, in order: {@link ConflictError} for a lost
   *   compare-and-set, {@link AlreadyExistsError}, {@link InvalidArgumentError}, {@link ResourceExhaustedError},
   *   {@link RunStoppedError} as for `save`.
   * @throws {@link InvalidArgumentError} for more saves than the server's --max-batch-items; a {@link CairnError}
   *   with code UNIMPLEMENTED from a server older than SaveBatch (send the saves one by one with `save`).
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async saveBatch(saves: SaveInput[], options: CallOptions = {}): Promise<Array<SaveResponse | CairnError>> {
    if (saves.length === 0) return [];
    const reqs = await Promise.all(saves.map((save) => this.wire.outgoing(saveRequest(save))));
    const answers = await this.saveMany(reqs, options);
    const again = reqs.flatMap((req, i) => (selfConflict(req, answers[i]) ? [i] : []));
    if (again.length > 0) {
      const redone = await this.saveMany(again.map((i) => withoutCas(reqs[i]!)), options);
      for (const [k, i] of again.entries()) answers[i] = redone[k]!;
    }
    return answers.map((answer) => (answer instanceof CairnError ? answer : this.wire.saved(answer)));
  }

  /** One SaveBatch call: one response or item error per request, in order (as they came; see `wire.saved`). */
  private async saveMany(reqs: SaveRequest[], options: CallOptions): Promise<Array<SaveResponse | CairnError>> {
    const req: SaveBatchRequest = { saves: reqs };
    const res = await this.unary(this.stub.saveBatch, req, options);
    if (res.results.length !== reqs.length) throw itemCountError("SaveBatch", res.results.length, reqs.length);
    return res.results.map((r) => (r.error ? fromItemError(r.error) : r.save!));
  }

  /**
   * Saves many checkpoints over one stream. Yields, in request order, the {@link SaveResponse} of each save
   * or the {@link CairnError} it failed with (a failed item does not end the stream).
   *
   * @param saves the saves, from any (async) iterable; read as the stream has room.
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns an async generator of one result or error per save.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async *saveStream(
    saves: Iterable<SaveInput> | AsyncIterable<SaveInput>,
    options: CallOptions = {},
  ): AsyncGenerator<SaveResponse | CairnError> {
    const signal = options.signal;
    if (signal?.aborted) throw cancelledError(signal);
    const call = this.pick().saveStream(this.metadata(), this.callOptions(options));
    const onAbort = () => call.cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
    const writer = (async () => {
      for await (const save of saves) {
        const msg: SaveStreamRequest = { save: await this.wire.outgoing(saveRequest(save)) };
        if (!call.write(msg)) await once(call, "drain"); // rejects if the stream fails meanwhile
      }
      call.end();
    })();
    writer.catch((err) => call.destroy(err instanceof Error ? err : new Error(String(err))));
    try {
      for await (const res of call as AsyncIterable<SaveStreamResponse>) {
        yield res.error ? fromItemError(res.error) : this.wire.saved(res.save!);
      }
      await writer;
    } catch (err) {
      throw signal?.aborted ? cancelledError(signal) : toCairnError(err);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      call.cancel(); // no-op when the stream completed; stops it when the consumer broke out early
    }
  }

  /**
   * Loads a checkpoint (the head when no `checkpointId` is given) with its pending writes. Concurrent loads go
   * together as BatchLoad calls (the `coalesce` option), each with its own outcome and deadline.
   *
   * @param input `threadId`, optional `namespace` and `checkpointId`.
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns the checkpoint and its pending writes.
   * @throws {@link NotFoundError} for no such checkpoint or an empty thread (`reason` THREAD_EMPTY);
   *   {@link DataLossError} for bytes that fail their checksum.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async load(input: LoadInput, options: CallOptions = {}): Promise<LoadResult> {
    const req = LoadRequest.fromPartial(this.wire.reading(input));
    if (!this.loads) return this.loadOne(req, options);
    return this.loads.call(req, options.deadlineMs ?? this.deadlineMs, options.signal);
  }

  private async loadOne(req: LoadRequest, options: CallOptions): Promise<LoadResult> {
    const res = await this.unary(this.stub.load, req, options);
    return { checkpoint: await this.wire.checkpoint(res.checkpoint!), pendingWrites: res.pendingWrites };
  }

  /**
   * Loads many checkpoints in one call: one result or {@link CairnError} per load, in order (with
   * `compressStates`, a state that does not decode is its item's {@link DataLossError}).
   *
   * @param loads up to the server's --max-batch-items loads.
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns one result or error per load, in order.
   * @throws {@link InvalidArgumentError} for too many items or a malformed id.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async batchLoad(loads: LoadInput[], options?: CallOptions): Promise<Array<LoadResult | CairnError>> {
    return this.loadMany(
      loads.map((load) => LoadRequest.fromPartial(this.wire.reading(load))),
      options,
    );
  }

  /** One BatchLoad call: one result or item error per request, in order. */
  private async loadMany(loads: LoadRequest[], options?: CallOptions): Promise<Array<LoadResult | CairnError>> {
    const res = await this.unary(this.stub.batchLoad, BatchLoadRequest.fromPartial({ loads }), options);
    if (res.results.length !== loads.length) throw itemCountError("BatchLoad", res.results.length, loads.length);
    return Promise.all(
      res.results.map(async (r) => {
        if (r.error) return fromItemError(r.error);
        try {
          return { checkpoint: await this.wire.checkpoint(r.load!.checkpoint!), pendingWrites: r.load!.pendingWrites };
        } catch (err) {
          if (err instanceof DataLossError) return err;
          throw err;
        }
      }),
    );
  }

  /**
   * One page of checkpoints, newest first (`namespace` unset = every namespace, "" = the root only).
   *
   * @param input threadId ("" = all), namespace, metadataFilter, before, pageSize, pageToken, includeState, includeWrites.
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns the page: `checkpoints` and `nextPageToken` ("" on the last page).
   * @throws {@link NotFoundError} when `before` names no checkpoint; {@link InvalidArgumentError} for a bad page size, token or filter.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async list(input: ListInput = {}, options?: CallOptions): Promise<ListResponse> {
    const res = await this.unary(this.stub.list, ListRequest.fromPartial(this.wire.reading(input)), options);
    return this.wire.enabled ? { ...res, checkpoints: await this.wire.checkpoints(res.checkpoints) } : res;
  }

  /**
   * Every page of a List, following `nextPageToken`.
   *
   * @param input as for {@link CairnClient.list}.
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns an async generator of pages.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async *listPages(input: ListInput = {}, options?: CallOptions): AsyncGenerator<ListResponse> {
    let pageToken = input.pageToken ?? "";
    do {
      const page = await this.list({ ...input, pageToken }, options);
      yield page;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /**
   * One page of the caller's threads, most recently updated first.
   *
   * @param input pageSize, pageToken, metadataFilter (on each thread's head).
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns the page: `threads` and `nextPageToken`.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  listThreads(input: ListThreadsInput = {}, options?: CallOptions): Promise<ListThreadsResponse> {
    return this.unary(this.stub.listThreads, ListThreadsRequest.fromPartial(input), options);
  }

  /**
   * Every page of ListThreads.
   *
   * @param input as for {@link CairnClient.listThreads}.
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns an async generator of pages.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async *listThreadsPages(input: ListThreadsInput = {}, options?: CallOptions): AsyncGenerator<ListThreadsResponse> {
    let pageToken = input.pageToken ?? "";
    do {
      const page = await this.listThreads({ ...input, pageToken }, options);
      yield page;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /**
   * Deletes one checkpoint and its writes; resolves false when there was none.
   *
   * @param input threadId, checkpointId, namespace.
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns whether a checkpoint was deleted.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async delete(input: DeleteInput, options?: CallOptions): Promise<boolean> {
    return (await this.unary(this.stub.delete, DeleteRequest.fromPartial(input), options)).deleted;
  }

  /**
   * Removes a whole thread (every namespace); resolves with the number of checkpoints removed.
   *
   * @param threadId the thread.
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns the number of checkpoints deleted.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async clear(threadId: string, options?: CallOptions): Promise<number> {
    return (await this.unary(this.stub.clear, ClearRequest.fromPartial({ threadId }), options)).deletedCount;
  }

  /**
   * Stores the pending writes of one task; resolves with the number newly stored or replaced.
   *
   * @param input threadId, checkpointId, taskId, writes, namespace, taskPath, replace.
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns the number of writes stored.
   * @throws {@link NotFoundError} for no such checkpoint; {@link AlreadyExistsError} (`WRITE_CONFLICT`) for
   *   another value at the same (taskId, idx) unless `replace`.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async putWrites(input: PutWritesInput, options?: CallOptions): Promise<number> {
    const res = await this.unary(this.stub.putWrites, PutWritesRequest.fromPartial(input), options);
    return res.writtenCount;
  }

  /**
   * Copies a thread into an empty one; resolves with the number of checkpoints copied.
   *
   * @param sourceThreadId the thread to copy.
   * @param targetThreadId an empty thread.
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns the number of checkpoints copied.
   * @throws {@link ConflictError} (`TARGET_NOT_EMPTY`) when the target has checkpoints.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async copyThread(sourceThreadId: string, targetThreadId: string, options?: CallOptions): Promise<number> {
    const req = CopyThreadRequest.fromPartial({ sourceThreadId, targetThreadId });
    return (await this.unary(this.stub.copyThread, req, options)).copiedCount;
  }

  /**
   * Thins out threads; resolves with the number of checkpoints removed.
   *
   * @param threadIds the threads.
   * @param prune `strategy` ("keep_latest", the default, or "delete_all") and `keepCount`.
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns the number of checkpoints deleted.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async prune(threadIds: string[], prune: PruneOptions = {}, options?: CallOptions): Promise<number> {
    const strategy =
      prune.strategy === "delete_all" ? PruneStrategy.PRUNE_STRATEGY_DELETE_ALL : PruneStrategy.PRUNE_STRATEGY_KEEP_LATEST;
    const req = PruneRequest.fromPartial({ threadIds, strategy, keepCount: prune.keepCount ?? 0 });
    return (await this.unary(this.stub.prune, req, options)).deletedCount;
  }

  /**
   * Removes every checkpoint whose metadata `run_id` is one of `runIds`; resolves with the count.
   *
   * @param runIds the run ids.
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns the number of checkpoints deleted.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async deleteRuns(runIds: string[], options?: CallOptions): Promise<number> {
    return (await this.unary(this.stub.deleteRuns, DeleteRunsRequest.fromPartial({ runIds }), options)).deletedCount;
  }

  // -- durable runs (runs.ts) ------------------------------------------------------------------------------

  /**
   * Queues a run of a graph on `threadId`; a worker's {@link CairnClient.claimRun} picks it up.
   *
   * @param threadId the thread the run executes on (its checkpoints are the run's state).
   * @param input the run's input: JSON (input type "json"), or bytes with their `inputType`.
   * @param options `queue`, `runId` (makes a retried start idempotent), `inputType`, `metadata`, `retry`,
   *   `executionTimeoutMs`, `notBefore`; `signal`, `deadlineMs`.
   * @returns the stored run, PENDING (an identical retry with the same `runId` returns the stored one).
   * @throws {@link FailedPreconditionError} (THREAD_BUSY) when the thread has a PENDING or RUNNING run;
   *   {@link AlreadyExistsError} (RUN_ID_CONFLICT) when `runId` names a different run;
   *   {@link InvalidArgumentError} (`field`).
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async startRun(threadId: string, input?: unknown, options: StartRunOptions & CallOptions = {}): Promise<Run> {
    return runFromProto((await this.unary(this.stub.startRun, startRunRequest(threadId, input, options), options)).run!);
  }

  /**
   * Claims the oldest claimable run of `queue` (pending, or abandoned by a worker that stopped heartbeating) under
   * a new lease; waits up to `waitMs` for one (long-poll).
   *
   * @param queue the queue to claim from.
   * @param workerId names this worker in the run's attempts.
   * @param options `leaseMs` (default: the server's 30 s), `waitMs` (default 0: answer at once), `signal`,
   *   `deadlineMs` (the wait comes on top of it).
   * @returns the run, its lease and whether it was recovered from another worker; undefined when none came.
   * @throws {@link InvalidArgumentError} (`field`).
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async claimRun(
    queue: string,
    workerId: string,
    options: { leaseMs?: number; waitMs?: number } & CallOptions = {},
  ): Promise<Claim | undefined> {
    const { leaseMs = 0, waitMs = 0 } = options;
    const req = ClaimRunRequest.fromPartial({ queue, workerId, leaseDurationMs: leaseMs, waitMs });
    // The long-poll comes on top of the deadline, which bounds the answer.
    const deadlineMs = (options.deadlineMs ?? this.deadlineMs) + waitMs;
    const res = await this.unary(this.stub.claimRun, req, { ...options, deadlineMs });
    if (!res.run) return undefined;
    return { run: runFromProto(res.run), lease: res.lease!, recovered: res.recovered };
  }

  /**
   * Extends the lease of a claimed run.
   *
   * @param lease the claim's lease (`Claim.lease`, or the one the last heartbeat returned).
   * @param options `leaseMs` from now (default: the claim's length), `signal`, `deadlineMs`.
   * @returns the lease with its new expiry; send this one from now on.
   * @throws {@link RunStoppedError} when the lease is no longer the run's current one (`reason` LEASE_LOST), or
   *   the run was cancelled (RUN_CANCELLED) or timed out (RUN_TIMED_OUT): stop working on it; nothing is stored.
   *   {@link NotFoundError} (RUN_NOT_FOUND) when there is no such run.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async heartbeat(lease: RunLease, options: { leaseMs?: number } & CallOptions = {}): Promise<RunLease> {
    const req = HeartbeatRequest.fromPartial({ lease: leaseOut(lease), leaseDurationMs: options.leaseMs ?? 0 });
    return (await this.unary(this.stub.heartbeat, req, options)).lease!;
  }

  /**
   * Ends the attempt with success: the run becomes COMPLETED, or INTERRUPTED (waiting for a human) with
   * `interrupted`; a new {@link CairnClient.startRun} on the thread resumes an interrupted run.
   *
   * @param lease the claim's lease (`Claim.lease`, or the one the last heartbeat returned).
   * @param output the run's output: JSON, or bytes with their `outputType`.
   * @param options `interrupted`, `checkpointId` (the thread's head at the end), `outputType`, `signal`,
   *   `deadlineMs`.
   * @returns the run, COMPLETED or INTERRUPTED.
   * @throws {@link RunStoppedError} when the lease is no longer the run's current one (`reason` LEASE_LOST), or
   *   the run was cancelled (RUN_CANCELLED) or timed out (RUN_TIMED_OUT): stop working on it; nothing is stored.
   *   {@link NotFoundError} (RUN_NOT_FOUND) when there is no such run.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async completeRun(
    lease: RunLease,
    output?: unknown,
    options: { interrupted?: boolean; checkpointId?: string; outputType?: string } & CallOptions = {},
  ): Promise<Run> {
    return runFromProto((await this.unary(this.stub.completeRun, completeRunRequest(lease, output, options), options)).run!);
  }

  /**
   * Ends the attempt with an error; the run is PENDING again (a retry, per its RetryPolicy, when the error is
   * retryable) or FAILED.
   *
   * @param lease the claim's lease (`Claim.lease`, or the one the last heartbeat returned).
   * @param error an Error (its name and message are sent), a message, or `{ type, message, retryable }`.
   * @param options `retryable` (default: the error's own, else false), `signal`, `deadlineMs`.
   * @returns the run: PENDING (claimable after the backoff) or FAILED with this error.
   * @throws {@link RunStoppedError} when the lease is no longer the run's current one (`reason` LEASE_LOST), or
   *   the run was cancelled (RUN_CANCELLED) or timed out (RUN_TIMED_OUT): stop working on it; nothing is stored.
   *   {@link NotFoundError} (RUN_NOT_FOUND) when there is no such run.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async failRun(lease: RunLease, error: RunFailure, options: { retryable?: boolean } & CallOptions = {}): Promise<Run> {
    return runFromProto((await this.unary(this.stub.failRun, failRunRequest(lease, error, options.retryable), options)).run!);
  }

  /**
   * Cancels a run: CANCELLED at once unless a worker holds it (then `cancelRequested`, until it sees it).
   *
   * @param runId the run to cancel.
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns the run, CANCELLED or with `cancelRequested` set; cancelling a CANCELLED run changes nothing.
   * @throws {@link NotFoundError} (RUN_NOT_FOUND) when there is no such run;
   *   {@link FailedPreconditionError} (RUN_FINISHED) when it has already finished.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async cancelRun(runId: string, options?: CallOptions): Promise<Run> {
    return runFromProto((await this.unary(this.stub.cancelRun, CancelRunRequest.fromPartial({ runId }), options)).run!);
  }

  /**
   * The run with its attempts.
   *
   * @param runId the run to read.
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns the run, with every attempt (worker, status, times, error).
   * @throws {@link NotFoundError} (RUN_NOT_FOUND) when there is no such run.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async getRun(runId: string, options?: CallOptions): Promise<Run> {
    return runFromProto((await this.unary(this.stub.getRun, GetRunRequest.fromPartial({ runId }), options)).run!);
  }

  /**
   * One page of runs, newest first, without their attempts ({@link CairnClient.getRun} has them).
   *
   * @param query `status` (one or several), `queue`, `threadId`, `createdAfter`, `createdBefore`, `pageSize`,
   *   `pageToken` (the last page's `nextPageToken`).
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns the page's runs and the token of the next page ("" at the end).
   * @throws {@link InvalidArgumentError} for a bad filter, page size or token.
   * @throws {@link UnavailableError} when the server cannot be reached (after gRPC's retries);
   *   {@link DeadlineExceededError} past the deadline; {@link CancelledError} when aborted;
   *   {@link UnauthenticatedError} for a missing or wrong token; every error is a {@link CairnError}.
   */
  async listRuns(query: RunQuery = {}, options?: CallOptions): Promise<RunPage> {
    return runsPage(await this.unary(this.stub.listRuns, listRunsRequest(query), options));
  }

  /**
   * Every matching run across pages, newest first, fetching the next page as the last one runs out.
   *
   * @param query the filters of {@link CairnClient.listRuns}.
   * @param options `signal` to abort, `deadlineMs` (default: the client's, 30 s).
   * @returns an async generator of the runs.
   * @throws {@link InvalidArgumentError} for a bad filter or page size, and the errors of `listRuns`.
   */
  async *iterRuns(query: RunQuery = {}, options?: CallOptions): AsyncGenerator<Run> {
    let pageToken = query.pageToken ?? "";
    do {
      const page = await this.listRuns({ ...query, pageToken }, options);
      yield* page.runs;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  private metadata(): Metadata {
    const md = new Metadata();
    if (this.token) md.set("authorization", `Bearer ${this.token}`);
    return md;
  }

  private callOptions(options?: CallOptions): { deadline?: Date } {
    const ms = options?.deadlineMs ?? this.deadlineMs;
    return Number.isFinite(ms) ? { deadline: new Date(Date.now() + ms) } : {};
  }

  private unary<Req, Res>(method: UnaryMethod<Req, Res>, req: Req, options?: CallOptions): Promise<Res> {
    const signal = options?.signal;
    return new Promise<Res>((resolve, reject) => {
      if (signal?.aborted) return reject(cancelledError(signal));
      const onAbort = () => call.cancel();
      const call = method.call(this.pick(), req, this.metadata(), this.callOptions(options), (err, res) => {
        signal?.removeEventListener("abort", onAbort);
        if (err) reject(signal?.aborted ? cancelledError(signal) : toCairnError(err));
        else resolve(res);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}

function saveRequest(save: SaveInput): SaveRequest {
  const { checkpoint, expectedHeadId, expectEmpty, durability, replaceExisting, runLease } = save;
  return SaveRequest.fromPartial({
    checkpoint: { ...checkpoint, checkpointId: checkpoint.checkpointId || uuidv7() },
    expectedHeadId,
    expectEmpty,
    durability,
    replaceExisting,
    runLease: runLease ? leaseOut(runLease) : undefined,
  });
}

/** A save's size in a coalesced batch: its state, and room for ids and metadata. */
function saveSize(req: SaveRequest): number {
  return (req.checkpoint?.state.length ?? 0) + 256;
}

/**
 * Whether `err` is the lost compare-and-set of a save that gRPC retried after its first attempt committed: the
 * save then finds itself as the head, and is sent again without the compare-and-set (an identical re-save).
 */
function selfConflict(req: SaveRequest, err: unknown): boolean {
  const id = req.checkpoint?.checkpointId;
  return err instanceof ConflictError && !!id && err.currentHeadId === id && (!!req.expectedHeadId || req.expectEmpty);
}

function withoutCas(req: SaveRequest): SaveRequest {
  return { ...req, expectedHeadId: "", expectEmpty: false };
}

function itemCountError(method: string, got: number, sent: number): InternalError {
  const message = `${method} answered ${got} items of ${sent}; report this as a bug`;
  return new InternalError({ code: Code.INTERNAL, message });
}

function serviceConfig(retry: RetryOptions | false | undefined): object {
  if (retry === false) return { methodConfig: [] };
  const seconds = (ms: number) => `${(ms / 1000).toFixed(3)}s`;
  return {
    methodConfig: [
      {
        name: [{ service: SERVICE }],
        retryPolicy: {
          maxAttempts: Math.min(Math.max(retry?.maxAttempts ?? 5, 2), 5),
          initialBackoff: seconds(retry?.initialBackoffMs ?? 100),
          maxBackoff: seconds(retry?.maxBackoffMs ?? 5000),
          backoffMultiplier: 2,
          retryableStatusCodes: ["UNAVAILABLE"],
        },
      },
    ],
  };
}
