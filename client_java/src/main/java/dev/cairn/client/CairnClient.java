package dev.cairn.client;

import com.google.protobuf.ByteString;
import dev.cairn.v1.BatchLoadRequest;
import dev.cairn.v1.BatchLoadResponse;
import dev.cairn.v1.BatchLoadResult;
import dev.cairn.v1.CancelRunRequest;
import dev.cairn.v1.Checkpoint;
import dev.cairn.v1.CheckpointStoreGrpc;
import dev.cairn.v1.ClaimRunRequest;
import dev.cairn.v1.ClaimRunResponse;
import dev.cairn.v1.ClearRequest;
import dev.cairn.v1.CompleteRunRequest;
import dev.cairn.v1.CopyThreadRequest;
import dev.cairn.v1.DeleteRequest;
import dev.cairn.v1.DeleteRunsRequest;
import dev.cairn.v1.FailRunRequest;
import dev.cairn.v1.GetRunRequest;
import dev.cairn.v1.HeartbeatRequest;
import dev.cairn.v1.ItemError;
import dev.cairn.v1.ListRequest;
import dev.cairn.v1.ListResponse;
import dev.cairn.v1.ListRunsRequest;
import dev.cairn.v1.ListRunsResponse;
import dev.cairn.v1.ListThreadsRequest;
import dev.cairn.v1.ListThreadsResponse;
import dev.cairn.v1.LoadRequest;
import dev.cairn.v1.LoadResponse;
import dev.cairn.v1.PruneRequest;
import dev.cairn.v1.PruneStrategy;
import dev.cairn.v1.PutWritesRequest;
import dev.cairn.v1.Run;
import dev.cairn.v1.RunError;
import dev.cairn.v1.RunLease;
import dev.cairn.v1.SaveBatchRequest;
import dev.cairn.v1.SaveBatchResponse;
import dev.cairn.v1.SaveBatchResult;
import dev.cairn.v1.SaveRequest;
import dev.cairn.v1.SaveResponse;
import dev.cairn.v1.SaveStreamRequest;
import dev.cairn.v1.SaveStreamResponse;
import dev.cairn.v1.StartRunRequest;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.ClientCall;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.ChannelOption;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * Client of the Cairn checkpoint store ({@code cairn.v1.CheckpointStore}).
 *
 * <pre>{@code
 * try (CairnClient cairn = CairnClient.builder().target("localhost:7070").token(token).build()) {
 *   SaveResponse saved = cairn.save(Checkpoint.newBuilder().setThreadId("t1")
 *       .setState(ByteString.copyFromUtf8("{\"step\":1}")).setStateType("json").build());
 *   LoadResponse head = cairn.load("t1");
 * }
 * }</pre>
 *
 * <p>Every method is blocking, thread-safe and bounded by the configured deadline. Failures are thrown
 * as unchecked {@link CairnException}s (one subclass per gRPC code callers branch on). Calls that
 * fail with UNAVAILABLE are retried with exponential backoff by gRPC (service config). Saves without a
 * checkpoint id get a client-generated UUIDv7 so that a retried save is idempotent.
 *
 * <p>With {@link Builder#compressStates(boolean)} states travel zstd-compressed: saves once the server
 * has said it accepts them, reads always asked for; checkpoints returned to the caller always hold the
 * raw state (a bad frame from the server is a {@link DataLossException} with reason
 * {@code STATE_ENCODING}).
 *
 * <p>Concurrent {@code save} and {@code load} calls from many threads travel together in SaveBatch and
 * BatchLoad calls (a call goes alone when none of its kind is in flight), each keeping its own result,
 * exception and deadline; see {@link Builder#coalesce(int)}.
 */
public final class CairnClient implements AutoCloseable {

  private static final String SERVICE = "cairn.v1.CheckpointStore";

  private final List<ManagedChannel> channels;
  private final boolean ownsChannel;
  private final CheckpointStoreGrpc.CheckpointStoreBlockingStub blocking;
  private final CheckpointStoreGrpc.CheckpointStoreStub async;
  private final long deadlineNanos;
  private final StateWire wire;
  private final Coalescer<SaveRequest, SaveResponse> saves; // null: coalesce(0)
  private final Coalescer<LoadRequest, LoadResponse> loads;

  /** A batch call's bounds: a batch's latency stays near a single call's (the server takes up to 1000). */
  private static final int BATCH_ITEMS = 64;
  private static final int BATCH_BYTES = 4 << 20;

  private CairnClient(Builder b) {
    if (b.channel != null) {
      this.channels = List.of(b.channel);
      this.ownsChannel = false;
    } else {
      Objects.requireNonNull(b.target, "target (host:port or unix:/path) is required");
      List<ManagedChannel> opened = new ArrayList<>();
      for (int i = 0; i < b.channels; i++) {
        opened.add(openChannel(b));
      }
      this.channels = List.copyOf(opened);
      this.ownsChannel = true;
    }
    Channel channel = channels.size() == 1 ? channels.get(0) : new RoundRobin(channels);
    CheckpointStoreGrpc.CheckpointStoreBlockingStub bs = CheckpointStoreGrpc.newBlockingStub(channel);
    CheckpointStoreGrpc.CheckpointStoreStub as = CheckpointStoreGrpc.newStub(channel);
    if (b.token != null && !b.token.isBlank()) {
      Metadata headers = new Metadata();
      headers.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + b.token);
      bs = bs.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
      as = as.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
    }
    this.blocking = bs.withMaxOutboundMessageSize(b.maxMessageBytes);
    this.async = as.withMaxOutboundMessageSize(b.maxMessageBytes);
    this.deadlineNanos = b.deadline.toNanos();
    this.wire = new StateWire(b.compressStates, b.maxMessageBytes);
    if (b.coalesce == 0) {
      this.saves = null;
      this.loads = null;
    } else {
      int inflight = b.coalesce * channels.size();
      this.saves = new Coalescer<>(
          (req, deadline) -> unary((stub, done) -> stub.save(req, done), deadline),
          (reqs, deadline) -> this.<SaveBatchResponse>unary(
              (stub, done) -> stub.saveBatch(SaveBatchRequest.newBuilder().addAllSaves(reqs).build(), done), deadline)
              .thenApply(r -> outcomes(reqs.size(), r.getResultsList(), SaveBatchResult::hasSave,
                  SaveBatchResult::getSave, SaveBatchResult::getError)),
          error -> false,
          req -> req.getCheckpoint().getState().size() + 256, // room for ids and metadata
          inflight, BATCH_ITEMS, Math.min(BATCH_BYTES, b.maxMessageBytes));
      this.loads = new Coalescer<>(
          (req, deadline) -> unary((stub, done) -> stub.load(req, done), deadline),
          (reqs, deadline) -> this.<BatchLoadResponse>unary(
              (stub, done) -> stub.batchLoad(BatchLoadRequest.newBuilder().addAllLoads(reqs).build(), done), deadline)
              .thenApply(r -> outcomes(reqs.size(), r.getResultsList(), BatchLoadResult::hasLoad,
                  BatchLoadResult::getLoad, BatchLoadResult::getError)),
          // A batch item refused for the response budget its batch shared: alone, it may fit.
          error -> error.code() == io.grpc.Status.Code.RESOURCE_EXHAUSTED,
          req -> 64,
          inflight, BATCH_ITEMS, BATCH_BYTES);
    }
  }

  /**
   * A builder; {@link Builder#target(String)} is the only required setting.
   *
   * @return a new builder
   */
  public static Builder builder() {
    return new Builder();
  }

  // ---------------------------------------------------------------------------------------------
  // Save

  /**
   * Saves {@code checkpoint} as the new head of its (thread, namespace); fills a missing id.
   *
   * @param checkpoint the checkpoint (thread id, state, state type, metadata, parent, node names)
   * @return the stored checkpoint's id, sequence, creation time and stored size
   * @throws AlreadyExistsException when the id exists with different content
   * @throws InvalidArgumentException when a field is malformed ({@link InvalidArgumentException#field()})
   * @throws ResourceExhaustedException when the state is larger than the server accepts
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public SaveResponse save(Checkpoint checkpoint) {
    return save(SaveRequest.newBuilder().setCheckpoint(checkpoint).build());
  }

  /**
   * Saves with the full request options (compare-and-set via {@code expected_head_id} /
   * {@code expect_empty}, durability, {@code replace_existing}); fills a missing checkpoint id.
   *
   * @throws ConflictException when a compare-and-set lost ({@link ConflictException#currentHeadId()})
   * @throws AlreadyExistsException when the id exists with different content
   * @param request the checkpoint and the save options
   * @return the stored checkpoint's id, sequence, creation time and stored size
   * @throws InvalidArgumentException when a field is malformed
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public SaveResponse save(SaveRequest request) {
    SaveRequest out = wire.outgoing(withCheckpointId(request));
    return wire.saved(saves != null ? saves.call(out, deadlineNanos) : call(stub -> stub.save(out)));
  }

  /**
   * Runs many saves in one call, each under the rules of {@link #save(SaveRequest)} (its own compare-and-set,
   * durability, ...); they commit together and each has its own result, in order, so a failed save (an
   * {@link ItemError} with ABORTED, ALREADY_EXISTS, ...; see {@link #toException(ItemError)}) does not fail
   * the others. Saves of one (thread, namespace) apply in order; missing checkpoint ids are filled.
   * Concurrent {@link #save} calls already travel in SaveBatch calls by themselves ({@link Builder#coalesce});
   * this is for a caller that holds many saves at once.
   *
   * @param requests the saves, at most the server's {@code --max-batch-items}
   * @return one result per request, in order: the save's response or its error
   * @throws InvalidArgumentException when there are more saves than the server takes in one batch
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code (UNIMPLEMENTED from a server without SaveBatch)
   */
  public List<SaveBatchResult> saveBatch(List<SaveRequest> requests) {
    SaveBatchRequest.Builder req = SaveBatchRequest.newBuilder();
    requests.forEach(r -> req.addSaves(wire.outgoing(withCheckpointId(r))));
    List<SaveBatchResult> results = call(stub -> stub.saveBatch(req.build())).getResultsList();
    results.forEach(r -> {
      if (r.hasSave()) {
        wire.saved(r.getSave());
      }
    });
    return results;
  }

  /**
   * Saves many checkpoints over one {@code SaveStream}. Returns one response per request, in order;
   * a failed item carries an {@link ItemError} (see {@link #toException(ItemError)}) and does not stop
   * the others.
   * @param requests the saves, sent in order
   * @return one response per request, in order
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public List<SaveStreamResponse> saveStream(List<SaveRequest> requests) {
    CompletableFuture<List<SaveStreamResponse>> done = new CompletableFuture<>();
    List<SaveStreamResponse> responses = new ArrayList<>(requests.size());
    StreamObserver<SaveStreamRequest> out = async.withDeadlineAfter(deadlineNanos, TimeUnit.NANOSECONDS)
        .saveStream(new StreamObserver<>() {
          @Override public void onNext(SaveStreamResponse r) {
            if (r.hasSave()) {
              wire.saved(r.getSave());
            }
            responses.add(r);
          }

          @Override public void onError(Throwable t) {
            done.completeExceptionally(t);
          }

          @Override public void onCompleted() {
            done.complete(responses);
          }
        });
    try {
      for (SaveRequest r : requests) {
        out.onNext(SaveStreamRequest.newBuilder().setSave(wire.outgoing(withCheckpointId(r))).build());
      }
      out.onCompleted();
    } catch (RuntimeException e) {
      out.onError(e);
      throw e;
    }
    try {
      return done.get();
    } catch (ExecutionException e) {
      if (e.getCause() instanceof StatusRuntimeException) {
        throw CairnException.from((StatusRuntimeException) e.getCause());
      }
      throw new IllegalStateException(e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while waiting for SaveStream", e);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Load and list

  /**
   * Loads the head (latest checkpoint) of the root namespace of {@code threadId}.
   *
   * @throws NotFoundException with reason {@code THREAD_EMPTY} when the thread holds no checkpoint
   * @param threadId the thread
   * @return the checkpoint and its pending writes
   * @throws DataLossException when the stored bytes fail their checksum
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public LoadResponse load(String threadId) {
    return load(LoadRequest.newBuilder().setThreadId(threadId).build());
  }

  /**
   * Loads one checkpoint of the root namespace of {@code threadId}.
   *
   * @throws NotFoundException with reason {@code CHECKPOINT_NOT_FOUND} when there is no such id
   * @param threadId the thread
   * @param checkpointId the checkpoint
   * @return the checkpoint and its pending writes
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public LoadResponse load(String threadId, String checkpointId) {
    return load(LoadRequest.newBuilder().setThreadId(threadId).setCheckpointId(checkpointId).build());
  }

  /**
   * Loads a checkpoint (the head when the request has no checkpoint id) and its pending writes.
   *
   * @param request thread, namespace, optional checkpoint id
   * @return the checkpoint and its pending writes
   * @throws NotFoundException when there is no such checkpoint, or the thread is empty
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public LoadResponse load(LoadRequest request) {
    LoadRequest req = wire.accepting(request);
    return wire.loaded(loads != null ? loads.call(req, deadlineNanos) : call(stub -> stub.load(req)));
  }

  /**
   * Runs many loads in one call; each result carries either a load or an {@link ItemError} (with
   * {@code compressStates}, a state that does not decode is its item's DATA_LOSS error).
   * @param loads the loads, at most the server's {@code --max-batch-items}
   * @return one result per load, in order
   * @throws InvalidArgumentException when there are too many loads or an id is malformed
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public List<BatchLoadResult> batchLoad(List<LoadRequest> loads) {
    BatchLoadRequest.Builder req = BatchLoadRequest.newBuilder();
    loads.forEach(l -> req.addLoads(wire.accepting(l)));
    List<BatchLoadResult> results = call(stub -> stub.batchLoad(req.build())).getResultsList();
    return wire.enabled() ? results.stream().map(wire::item).toList() : results;
  }

  /**
   * One page of checkpoints, newest first (state only with {@code include_state}).
   *
   * @param request thread (empty = all), namespace, metadata filter, before, page size and token
   * @return the page and the next page token (empty on the last page)
   * @throws NotFoundException when {@code before} names no checkpoint
   * @throws InvalidArgumentException for a bad page size, token or filter
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public ListResponse list(ListRequest request) {
    ListRequest req = wire.accepting(request);
    return wire.listed(call(stub -> stub.list(req)));
  }

  /**
   * Every checkpoint matching {@code request}, newest first, following page tokens to the end.
   *
   * @param request as for {@link #list(ListRequest)}; its page token is the first
   * @return every matching checkpoint
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public List<Checkpoint> listAll(ListRequest request) {
    List<Checkpoint> all = new ArrayList<>();
    ListRequest page = request;
    while (true) {
      ListResponse r = list(page);
      all.addAll(r.getCheckpointsList());
      if (r.getNextPageToken().isEmpty()) {
        return all;
      }
      page = page.toBuilder().setPageToken(r.getNextPageToken()).build();
    }
  }

  /**
   * One page of the caller's threads, most recently updated first.
   *
   * @param request page size and token, metadata filter on each thread's head
   * @return the page of threads and the next page token
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public ListThreadsResponse listThreads(ListThreadsRequest request) {
    return call(stub -> stub.listThreads(request));
  }

  // ---------------------------------------------------------------------------------------------
  // Writes and housekeeping

  /**
   * Stores the pending writes of one task; returns how many were newly stored or replaced.
   *
   * @param request the checkpoint, the task and its writes
   * @return how many writes were stored
   * @throws NotFoundException when there is no such checkpoint
   * @throws AlreadyExistsException when another value is stored for the same (task id, idx) ({@code WRITE_CONFLICT})
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public int putWrites(PutWritesRequest request) {
    return call(stub -> stub.putWrites(request)).getWrittenCount();
  }

  /**
   * Deletes one checkpoint and its writes; false when it did not exist (still a success).
   *
   * @param threadId the thread
   * @param namespace the namespace ({@code ""} is the root)
   * @param checkpointId the checkpoint
   * @return whether a checkpoint was deleted
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public boolean delete(String threadId, String namespace, String checkpointId) {
    DeleteRequest req = DeleteRequest.newBuilder()
        .setThreadId(threadId).setNamespace(namespace).setCheckpointId(checkpointId).build();
    return call(stub -> stub.delete(req)).getDeleted();
  }

  /**
   * Removes a whole thread (every namespace); returns the number of checkpoints removed.
   *
   * @param threadId the thread
   * @return how many checkpoints were deleted
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public long clear(String threadId) {
    return call(stub -> stub.clear(ClearRequest.newBuilder().setThreadId(threadId).build()))
        .getDeletedCount();
  }

  /**
   * Copies every checkpoint of {@code sourceThreadId} into the empty {@code targetThreadId}.
   *
   * @throws ConflictException when the target is not empty
   * @param sourceThreadId the thread to copy
   * @param targetThreadId an empty thread
   * @return how many checkpoints were copied
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public long copyThread(String sourceThreadId, String targetThreadId) {
    CopyThreadRequest req = CopyThreadRequest.newBuilder()
        .setSourceThreadId(sourceThreadId).setTargetThreadId(targetThreadId).build();
    return call(stub -> stub.copyThread(req)).getCopiedCount();
  }

  /**
   * Keeps the {@code keepCount} newest checkpoints of each namespace of the threads; returns removed.
   *
   * @param threadIds the threads
   * @param keepCount checkpoints to keep per namespace
   * @return how many checkpoints were deleted
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public long pruneKeepLatest(Collection<String> threadIds, int keepCount) {
    return prune(PruneRequest.newBuilder().addAllThreadIds(threadIds)
        .setStrategy(PruneStrategy.PRUNE_STRATEGY_KEEP_LATEST).setKeepCount(keepCount).build());
  }

  /**
   * Thins out threads as {@code request} says; returns the number of checkpoints removed.
   *
   * @param request the threads and the strategy
   * @return how many checkpoints were deleted
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public long prune(PruneRequest request) {
    return call(stub -> stub.prune(request)).getDeletedCount();
  }

  /**
   * Deletes every checkpoint whose metadata {@code run_id} is one of {@code runIds}; returns removed.
   *
   * @param runIds the run ids
   * @return how many checkpoints were deleted
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public long deleteRuns(Collection<String> runIds) {
    return call(stub -> stub.deleteRuns(DeleteRunsRequest.newBuilder().addAllRunIds(runIds).build()))
        .getDeletedCount();
  }

  // ---------------------------------------------------------------------------------------------
  // Durable runs: a run executes a graph on a thread. startRun queues it; a worker claimRuns it and holds
  // it under a RunLease, heartbeats while working, sets the lease on its SaveRequest / PutWritesRequest
  // (run_lease: fenced writes) and ends it with completeRun or failRun. A call under a lease that may not
  // go on throws RunStoppedException (LEASE_LOST, RUN_CANCELLED, RUN_TIMED_OUT): stop working on the run.

  /**
   * Queues a run; a worker's {@link #claimRun} picks it up.
   *
   * @param request the thread, queue, input, metadata, retry policy, execution timeout and not-before time;
   *     a {@code run_id} makes a retried start idempotent
   * @return the stored run, PENDING (an identical retry with the same run id returns the stored one)
   * @throws FailedPreconditionException with reason {@code THREAD_BUSY} when the thread has a PENDING or
   *     RUNNING run
   * @throws AlreadyExistsException with reason {@code RUN_ID_CONFLICT} when the run id names a different run
   * @throws InvalidArgumentException when a field is malformed ({@link InvalidArgumentException#field()})
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public Run startRun(StartRunRequest request) {
    return call(stub -> stub.startRun(request)).getRun();
  }

  /**
   * Queues a run of {@code threadId} on {@code queue} with a JSON input.
   *
   * @param threadId the thread the run executes on
   * @param queue the queue whose workers take it
   * @param jsonInput the input as JSON text; null for none
   * @return the stored run, PENDING
   * @throws FailedPreconditionException with reason {@code THREAD_BUSY} when the thread has a PENDING or
   *     RUNNING run
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public Run startRun(String threadId, String queue, String jsonInput) {
    StartRunRequest.Builder req = StartRunRequest.newBuilder().setThreadId(threadId).setQueue(queue);
    if (jsonInput != null) {
      req.setInput(ByteString.copyFromUtf8(jsonInput)).setInputType("json");
    }
    return startRun(req.build());
  }

  /**
   * Claims the oldest claimable run of {@code queue} (pending, or abandoned by a worker that stopped
   * heartbeating) under a new lease, waiting up to {@code wait} for one (long-poll, on top of the call deadline).
   *
   * @param queue the queue to claim from
   * @param workerId names this worker in the run's attempts
   * @param lease how long the lease lasts without a heartbeat (zero: the server's 30 s)
   * @param wait how long to wait for a claimable run (zero: answer at once)
   * @return the run, its lease and whether it was recovered from another worker; empty when none came
   * @throws InvalidArgumentException when a field is malformed
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public Optional<ClaimRunResponse> claimRun(String queue, String workerId, Duration lease, Duration wait) {
    ClaimRunRequest req = ClaimRunRequest.newBuilder().setQueue(queue).setWorkerId(workerId)
        .setLeaseDurationMs(lease.toMillis()).setWaitMs(wait.toMillis()).build();
    ClaimRunResponse res;
    try {
      res = blocking.withDeadlineAfter(deadlineNanos + wait.toNanos(), TimeUnit.NANOSECONDS).claimRun(req);
    } catch (StatusRuntimeException e) {
      throw CairnException.from(e);
    }
    return res.hasRun() ? Optional.of(res) : Optional.empty();
  }

  /**
   * Extends the lease by the claim's length from now.
   *
   * @param lease the claim's lease, or the one the last heartbeat returned
   * @return the lease with its new expiry; send this one from now on
   * @throws RunStoppedException when the lease is no longer the run's current one (reason {@code LEASE_LOST}), or
   *     the run was cancelled ({@code RUN_CANCELLED}) or timed out ({@code RUN_TIMED_OUT}): stop working on it;
   *     nothing is recorded
   * @throws NotFoundException with reason {@code RUN_NOT_FOUND} when there is no such run
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public RunLease heartbeat(RunLease lease) {
    return call(stub -> stub.heartbeat(HeartbeatRequest.newBuilder().setLease(lease).build())).getLease();
  }

  /**
   * Ends the attempt with success: the run becomes COMPLETED, or INTERRUPTED (waiting for a human; a new
   * {@link #startRun} on the thread resumes it) with {@code interrupted}.
   *
   * @param request the lease, the output and its type, {@code interrupted}, and the thread's head at the end
   * @return the run, COMPLETED or INTERRUPTED
   * @throws RunStoppedException when the lease is no longer the run's current one (reason {@code LEASE_LOST}), or
   *     the run was cancelled ({@code RUN_CANCELLED}) or timed out ({@code RUN_TIMED_OUT}): stop working on it;
   *     nothing is recorded
   * @throws NotFoundException with reason {@code RUN_NOT_FOUND} when there is no such run
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public Run completeRun(CompleteRunRequest request) {
    return call(stub -> stub.completeRun(request)).getRun();
  }

  /**
   * Ends the attempt with success: the run is COMPLETED with a JSON output.
   *
   * @param lease the claim's lease, or the one the last heartbeat returned
   * @param jsonOutput the output as JSON text; null for none
   * @param checkpointId the thread's head at the end; null for none
   * @return the run, COMPLETED
   * @throws RunStoppedException when the lease is no longer the run's current one (reason {@code LEASE_LOST}), or
   *     the run was cancelled ({@code RUN_CANCELLED}) or timed out ({@code RUN_TIMED_OUT}): stop working on it;
   *     nothing is recorded
   * @throws NotFoundException with reason {@code RUN_NOT_FOUND} when there is no such run
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public Run completeRun(RunLease lease, String jsonOutput, String checkpointId) {
    CompleteRunRequest.Builder req = CompleteRunRequest.newBuilder().setLease(lease)
        .setCheckpointId(Objects.toString(checkpointId, ""));
    if (jsonOutput != null) {
      req.setOutput(ByteString.copyFromUtf8(jsonOutput)).setOutputType("json");
    }
    return completeRun(req.build());
  }

  /**
   * Ends the attempt with an error: the run is PENDING again, to be retried after its backoff (a retryable error
   * with attempts left under its retry policy), or FAILED.
   *
   * @param lease the claim's lease, or the one the last heartbeat returned
   * @param error the error's type, message and whether it is retryable
   * @return the run, PENDING or FAILED
   * @throws RunStoppedException when the lease is no longer the run's current one (reason {@code LEASE_LOST}), or
   *     the run was cancelled ({@code RUN_CANCELLED}) or timed out ({@code RUN_TIMED_OUT}): stop working on it;
   *     nothing is recorded
   * @throws NotFoundException with reason {@code RUN_NOT_FOUND} when there is no such run
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public Run failRun(RunLease lease, RunError error) {
    return call(stub -> stub.failRun(FailRunRequest.newBuilder().setLease(lease).setError(error).build()))
        .getRun();
  }

  /**
   * Cancels a run: CANCELLED at once unless a worker holds it (then {@code cancel_requested} until the
   * worker sees it at its next heartbeat or fenced write).
   *
   * @param runId the run to cancel
   * @return the run, CANCELLED or with {@code cancel_requested} set; cancelling a CANCELLED run changes nothing
   * @throws FailedPreconditionException with reason {@code RUN_FINISHED} when it already ended
   * @throws NotFoundException with reason {@code RUN_NOT_FOUND} when there is no such run
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public Run cancelRun(String runId) {
    return call(stub -> stub.cancelRun(CancelRunRequest.newBuilder().setRunId(runId).build())).getRun();
  }

  /**
   * The run with its attempts.
   *
   * @param runId the run to read
   * @return the run, with every attempt (worker, status, times, error)
   * @throws NotFoundException with reason {@code RUN_NOT_FOUND} when there is none
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public Run getRun(String runId) {
    return call(stub -> stub.getRun(GetRunRequest.newBuilder().setRunId(runId).build())).getRun();
  }

  /**
   * One page of runs, newest first, without their attempts ({@link #getRun} has them).
   *
   * @param request the filters (statuses, queue, thread, creation time), page size and page token
   * @return the page's runs and the token of the next page (empty at the end)
   * @throws InvalidArgumentException for a bad filter, page size or page token
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public ListRunsResponse listRuns(ListRunsRequest request) {
    return call(stub -> stub.listRuns(request));
  }

  /**
   * Every run matching {@code request}, newest first, following page tokens to the end.
   *
   * @param request the filters and page size of {@link #listRuns}
   * @return every matching run, in one list (use {@link #listRuns} to page through many)
   * @throws InvalidArgumentException for a bad filter or page size
   * @throws UnavailableException when the server cannot be reached (after gRPC's retries); every failure is a
   *     {@link CairnException} of its code
   */
  public List<Run> listAllRuns(ListRunsRequest request) {
    List<Run> all = new ArrayList<>();
    ListRunsRequest page = request;
    while (true) {
      ListRunsResponse r = listRuns(page);
      all.addAll(r.getRunsList());
      if (r.getNextPageToken().isEmpty()) {
        return all;
      }
      page = page.toBuilder().setPageToken(r.getNextPageToken()).build();
    }
  }

  // ---------------------------------------------------------------------------------------------

  /**
   * The exception an item error of {@link #batchLoad} or {@link #saveStream} stands for.
   *
   * @param error the item's error
   * @return the exception of its code, with its reason and metadata
   */
  public static CairnException toException(ItemError error) {
    return CairnException.of(error.getCode(), error.getMessage(), error.getReason(), error.getMetadataMap());
  }

  /**
   * The underlying channel, e.g. to build other stubs on it (the first one, with {@link Builder#channels}).
   *
   * @return the client's channel
   */
  public ManagedChannel channel() {
    return channels.get(0);
  }

  /**
   * Answers every coalesced save and load still waiting, queued or in a batch on the wire, with CANCELLED (and
   * cancels their calls); then shuts the channels down (when the client created them), waiting up to 5 seconds
   * for other calls to end.
   */
  @Override
  public void close() {
    if (saves != null) {
      saves.close();
      loads.close();
    }
    if (!ownsChannel) {
      return;
    }
    channels.forEach(ManagedChannel::shutdown);
    try {
      for (ManagedChannel channel : channels) {
        if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
          channel.shutdownNow();
        }
      }
    } catch (InterruptedException e) {
      channels.forEach(ManagedChannel::shutdownNow);
      Thread.currentThread().interrupt();
    }
  }

  private static ManagedChannel openChannel(Builder b) {
    ManagedChannelBuilder<?> mcb = Grpc.newChannelBuilder(b.target, b.credentials)
        .maxInboundMessageSize(b.maxMessageBytes);
    if (mcb instanceof NettyChannelBuilder && b.target.startsWith("unix:")) {
      // grpc-java sets SO_KEEPALIVE on every channel; unix sockets have none and netty warns about it.
      ((NettyChannelBuilder) mcb).withOption(ChannelOption.SO_KEEPALIVE, null);
    }
    if (b.maxAttempts > 1) {
      mcb.defaultServiceConfig(retryServiceConfig(b.maxAttempts)).enableRetry();
    } else {
      mcb.disableRetry();
    }
    return mcb.build();
  }

  /**
   * Calls spread over several channels in turn. Each ManagedChannel holds its own TCP connection, and the
   * kernel balances {@code cairn serve --workers N} by connection, so one channel would reach one worker.
   */
  private static final class RoundRobin extends Channel {
    private final List<ManagedChannel> channels;
    private final AtomicInteger next = new AtomicInteger();

    RoundRobin(List<ManagedChannel> channels) {
      this.channels = channels;
    }

    @Override
    public <Q, R> ClientCall<Q, R> newCall(MethodDescriptor<Q, R> method, CallOptions options) {
      return channels.get(Math.floorMod(next.getAndIncrement(), channels.size())).newCall(method, options);
    }

    @Override
    public String authority() {
      return channels.get(0).authority();
    }
  }

  private <T> T call(Function<CheckpointStoreGrpc.CheckpointStoreBlockingStub, T> rpc) {
    try {
      return rpc.apply(blocking.withDeadlineAfter(deadlineNanos, TimeUnit.NANOSECONDS));
    } catch (StatusRuntimeException e) {
      throw CairnException.from(e);
    }
  }

  /** One unary call on the async stub, bounded by {@code deadline} (a System.nanoTime()). */
  private <T> CompletableFuture<T> unary(
      BiConsumer<CheckpointStoreGrpc.CheckpointStoreStub, StreamObserver<T>> rpc, long deadline) {
    CompletableFuture<T> answer = new CompletableFuture<>();
    rpc.accept(async.withDeadlineAfter(deadline - System.nanoTime(), TimeUnit.NANOSECONDS), new StreamObserver<>() {
      @Override public void onNext(T response) {
        answer.complete(response);
      }

      @Override public void onError(Throwable t) {
        answer.completeExceptionally(t instanceof StatusRuntimeException e ? CairnException.from(e) : t);
      }

      @Override public void onCompleted() {}
    });
    return answer;
  }

  /** A batch response's results as one outcome per request. */
  private static <T, V> List<Coalescer.Outcome<V>> outcomes(int n, List<T> results, Predicate<T> ok,
      Function<T, V> value, Function<T, ItemError> error) {
    if (results.size() != n) {
      throw CairnException.of(io.grpc.Status.INTERNAL.withDescription(
          "the server answered " + results.size() + " of a batch of " + n), null, null);
    }
    List<Coalescer.Outcome<V>> out = new ArrayList<>(n);
    for (T r : results) {
      out.add(ok.test(r) ? new Coalescer.Outcome<>(value.apply(r), null)
          : new Coalescer.Outcome<>(null, toException(error.apply(r))));
    }
    return out;
  }

  private static SaveRequest withCheckpointId(SaveRequest request) {
    if (!request.getCheckpoint().getCheckpointId().isEmpty()) {
      return request;
    }
    SaveRequest.Builder b = request.toBuilder();
    b.getCheckpointBuilder().setCheckpointId(CheckpointIds.newId());
    return b.build();
  }

  private static Map<String, ?> retryServiceConfig(int maxAttempts) {
    Map<String, Object> retryPolicy = Map.of(
        "maxAttempts", (double) maxAttempts,
        "initialBackoff", "0.1s",
        "maxBackoff", "5s",
        "backoffMultiplier", 2.0,
        "retryableStatusCodes", List.of("UNAVAILABLE"));
    Map<String, Object> methodConfig = Map.of(
        "name", List.of(Map.of("service", SERVICE)),
        "retryPolicy", retryPolicy);
    return Map.of("methodConfig", List.of(methodConfig));
  }

  /** Settings of a {@link CairnClient}. */
  public static final class Builder {
    private String target;
    private ManagedChannel channel;
    private ChannelCredentials credentials = InsecureChannelCredentials.create();
    private String token;
    private Duration deadline = Duration.ofSeconds(30);
    private int maxAttempts = 5;
    private int maxMessageBytes = 64 << 20;
    private boolean compressStates;
    private int channels = 1;
    private int coalesce = 4;

    private Builder() {}

    /**
     * How many senders of saves, and of loads, may be on the wire at once per channel (default 4). A call goes
     * out alone when none of its kind is in flight; concurrent ones wait to go together in one call (SaveBatch;
     * BatchLoad), another sender starting once 4 wait. Each call keeps its own result, exception
     * and deadline (a call still queued when its deadline passes throws DEADLINE_EXCEEDED and is never sent).
     * Many threads saving at once then share gRPC's per-call cost instead of paying it once each; a lone
     * caller waits for nothing. Against a server without SaveBatch the client goes back to one call per save
     * by itself. 0 sends every call on its own.
     *
     * @param n senders of one kind on the wire per channel; 0 turns coalescing off
     * @return this builder
     * @throws IllegalArgumentException when {@code n} is negative
     */
    public Builder coalesce(int n) {
      if (n < 0) {
        throw new IllegalArgumentException("coalesce must be >= 0 (0 sends every call on its own), got " + n);
      }
      this.coalesce = n;
      return this;
    }

    /**
     * Open {@code n} connections and send calls over them in turn (default 1). {@code cairn serve --workers N}
     * spreads connections, not calls, over its processes: give a client at least N to use them all.
     *
     * @param n connections, at least 1
     * @return this builder
     * @throws IllegalArgumentException when {@code n} is below 1
     */
    public Builder channels(int n) {
      if (n < 1) {
        throw new IllegalArgumentException("channels must be >= 1, got " + n);
      }
      this.channels = n;
      return this;
    }

    /** Server address: {@code host:port} or {@code unix:/path/to/socket} (Linux, epoll). */
    public Builder target(String target) {
      this.target = target;
      return this;
    }

    /** Bearer token sent as {@code authorization: Bearer TOKEN} on every call; null or blank sends none. */
    public Builder token(String token) {
      this.token = token;
      return this;
    }

    /** Use TLS with the JVM's default trust store ({@code true}) or plaintext ({@code false}, the default). */
    public Builder tls(boolean enabled) {
      this.credentials = enabled ? TlsChannelCredentials.create() : InsecureChannelCredentials.create();
      return this;
    }

    /** Use TLS trusting the PEM certificate(s) in {@code caCertPem} (e.g. a private CA). */
    public Builder tls(Path caCertPem) {
      try {
        this.credentials = TlsChannelCredentials.newBuilder().trustManager(caCertPem.toFile()).build();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      return this;
    }

    /** Full control over channel security (e.g. mutual TLS); replaces {@link #tls}. */
    public Builder credentials(ChannelCredentials credentials) {
      this.credentials = Objects.requireNonNull(credentials);
      return this;
    }

    /** Deadline of each call (default 30 seconds). */
    public Builder deadline(Duration deadline) {
      this.deadline = Objects.requireNonNull(deadline);
      return this;
    }

    /** Attempts per call on UNAVAILABLE, first included (default 5; gRPC caps it at 5; 1 disables retries). */
    public Builder maxAttempts(int maxAttempts) {
      if (maxAttempts < 1) {
        throw new IllegalArgumentException("maxAttempts must be >= 1");
      }
      this.maxAttempts = maxAttempts;
      return this;
    }

    /**
     * Largest message sent or received, in bytes (default 64 MiB); with {@link #compressStates}, also the
     * largest state decompressed.
     */
    public Builder maxMessageBytes(int maxMessageBytes) {
      this.maxMessageBytes = maxMessageBytes;
      return this;
    }

    /**
     * Use an existing channel instead of {@link #target}; the client then neither configures (retry,
     * TLS) nor closes it.
     */
    public Builder channel(ManagedChannel channel) {
      this.channel = channel;
      return this;
    }

    /**
     * Send and receive states zstd-compressed (default false: states travel as they are, exactly as
     * without this option). Saves a state of 256 bytes or more as one zstd frame (level 3) once a
     * SaveResponse from the server listed {@code STATE_ENCODING_ZSTD} (the first save goes as is);
     * loads and lists ask for zstd and return the raw state either way. Saves network bytes and the
     * server's compression CPU. Enable only when every server this client can reach supports it: an
     * older server behind the same address (a rolling upgrade) would store a frame as the state.
     */
    public Builder compressStates(boolean enabled) {
      this.compressStates = enabled;
      return this;
    }

    /**
     * Builds the client; its channel connects on the first call.
     *
     * @return the client (close it when done)
     * @throws NullPointerException when neither {@link #target} nor {@link #channel} was set
     */
    public CairnClient build() {
      return new CairnClient(this);
    }
  }
}
