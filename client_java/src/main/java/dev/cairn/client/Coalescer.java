package dev.cairn.client;

import io.grpc.Context;
import io.grpc.Status;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.function.ToIntFunction;

/**
 * Concurrent calls of one kind (saves; loads), sent together as one batch call (SaveBatch; BatchLoad).
 *
 * <p>A graph runtime runs many graphs in one JVM, and each saves after every step. Sent one call each, every
 * save pays gRPC's per-call cost at both ends: on a 37 KB state that is most of the server's CPU per save and
 * much of the client's. The coalescer keeps that cost per batch instead:
 *
 * <ul>
 *   <li>a call goes straight out when none of its kind is in flight, so a lone caller waits for nothing;
 *   <li>calls made while one is in flight queue; another sender starts once {@link #MIN_BATCH} of them wait
 *       (up to {@code maxInflight} senders), and each sender takes a share of the queue (max(MIN_BATCH,
 *       ceil(queued / free senders)), up to {@code maxItems} and {@code maxBytes}) as one batch call, then
 *       goes on while calls wait.
 * </ul>
 *
 * <p>No timer and no thread of its own: a sender is a chain of async calls, the completion of one taking the
 * next batch (on gRPC's callback executor; it only starts the next async call). The calling thread waits for
 * its own answer until its own deadline: a batch is sent with the latest deadline of its items, and an item
 * whose deadline passes first ends with DEADLINE_EXCEEDED, as its unary call would have (and, if still queued,
 * is never sent). A batch call that fails as a whole fails each of its items with that error, except when the
 * server refused the batch itself: without the batch method (UNIMPLEMENTED) every item and every later call goes
 * on its own; over the server's batch limits (INVALID_ARGUMENT, RESOURCE_EXHAUSTED: more items than its {@code
 * --max-batch-items}, or a message larger than it takes) the items whose callers still wait go on their own and
 * later batches are half as large (in items and in bytes), so each caller gets the answer its own call would
 * have. {@link #close} (the client's close) cancels the calls on the wire and answers every caller still waiting,
 * queued or in a batch, with CANCELLED at once, instead of leaving them to their deadlines. It is the design of the Python client's
 * {@code cairn_client/coalesce.py}.
 *
 * @param <Q> the request of one call
 * @param <R> its response
 */
final class Coalescer<Q, R> {

  /** Sends one request; the future fails with a {@link CairnException}. */
  interface One<Q, R> {
    CompletableFuture<R> send(Q request, long deadlineNanoTime);
  }

  /** Sends a batch; one outcome per request, in order, or a future failed with a {@link CairnException}. */
  interface Many<Q, R> {
    CompletableFuture<List<Outcome<R>>> send(List<Q> requests, long deadlineNanoTime);
  }

  /** The answer to one item of a batch: its response, or the error of that item alone. */
  record Outcome<R>(R response, CairnException error) {}

  private static final class Entry<Q, R> {
    final Q request;
    final long deadline; // System.nanoTime()
    final CompletableFuture<R> answer = new CompletableFuture<>(); // done also when the caller left

    Entry(Q request, long deadline) {
      this.request = request;
      this.deadline = deadline;
    }
  }

  private static final CompletableFuture<Void> DONE = CompletableFuture.completedFuture(null);

  /** Whole-call failures of a batch call that the batch caused and its items alone would not meet. */
  private static final Set<Status.Code> BATCH_REFUSED =
      Set.of(Status.Code.INVALID_ARGUMENT, Status.Code.RESOURCE_EXHAUSTED);

  /**
   * A second sender starts only once this many calls wait. At 4 graphs this took the server's CPU per save from
   * ~800-1,100 to ~560-630 µs at the same or lower latency (calls going alone each paid gRPC's per-call cost);
   * at 32 it changed nothing measurable (measured with the Python client, whose coalescer this one follows).
   */
  static final int MIN_BATCH = 4;

  private final One<Q, R> one;
  private final Many<Q, R> many;
  private final Predicate<CairnException> retryAlone;
  private final ToIntFunction<Q> size;
  private final int maxInflight;

  // guarded by this
  private int maxItems; // lowered when the server refuses a batch as too large
  private int maxBytes; // the same
  private final ArrayDeque<Entry<Q, R>> queue = new ArrayDeque<>();
  private int inflight; // senders
  private int sending; // of them, those with a call on the wire
  private boolean batching = true; // false once the server said it has no batch method
  private boolean closed;
  private final Set<Entry<Q, R>> waiting = new HashSet<>(); // callers not yet answered, queued or on the wire

  /** The context of every call this coalescer sends, not any caller's: close() cancels it. */
  private final Context.CancellableContext calls = Context.ROOT.withCancellation();

  /**
   * @param one the unary call
   * @param many the batch call
   * @param retryAlone item errors a batch caused (a response budget its items shared) that the unary call
   *     would not give: such an item is sent again on its own
   * @param size a request's size in bytes
   * @param maxInflight the most senders of this kind with a call on the wire at once
   * @param maxItems the most requests in one batch call
   * @param maxBytes the most request bytes (by {@code size}) in one batch call; the first always goes
   */
  Coalescer(One<Q, R> one, Many<Q, R> many, Predicate<CairnException> retryAlone, ToIntFunction<Q> size,
      int maxInflight, int maxItems, int maxBytes) {
    this.one = one;
    this.many = many;
    this.retryAlone = retryAlone;
    this.size = size;
    this.maxInflight = maxInflight;
    this.maxItems = maxItems;
    this.maxBytes = maxBytes;
  }

  /** The most requests in one batch call now: the constructor's, lowered by the server's refusals. */
  synchronized int maxItems() {
    return maxItems;
  }

  /** The most request bytes in one batch call now: the constructor's, lowered by the server's refusals. */
  synchronized int maxBytes() {
    return maxBytes;
  }

  /** How many calls wait in the queue for a sender. */
  synchronized int queued() {
    return queue.size();
  }

  /**
   * The response to {@code request}, sent alone or in a batch; blocks until it comes or the deadline passes.
   *
   * @throws CairnException the call's or the item's error; DEADLINE_EXCEEDED after {@code timeoutNanos}
   */
  R call(Q request, long timeoutNanos) {
    Entry<Q, R> entry = new Entry<>(request, System.nanoTime() + timeoutNanos);
    boolean start;
    synchronized (this) {
      if (closed) {
        throw closedError();
      }
      queue.add(entry);
      waiting.add(entry);
      // One sender goes at once; another starts only once a batch's worth waits, so low concurrency pays a call
      // per few saves rather than one each (most of a small call's CPU is gRPC's per call), and high
      // concurrency still keeps maxInflight batches on the wire.
      start = inflight == 0 || (inflight < maxInflight && queue.size() >= MIN_BATCH);
      if (start) {
        inflight++;
      }
    }
    entry.answer.whenComplete((response, error) -> {
      synchronized (this) {
        waiting.remove(entry);
      }
    });
    if (start) {
      drain();
    }
    try {
      return entry.answer.get(Math.max(0, entry.deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
    } catch (TimeoutException e) {
      entry.answer.completeExceptionally(CairnException.of(Status.DEADLINE_EXCEEDED.withDescription(
          "no answer within the deadline of " + TimeUnit.NANOSECONDS.toMillis(timeoutNanos) + " ms"), null, null));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      entry.answer.completeExceptionally(
          CairnException.of(Status.CANCELLED.withDescription("interrupted while waiting for the call"), null, e));
    } catch (ExecutionException e) {
      throw unwrap(e.getCause());
    }
    try { // the deadline's error, or the answer that came just before it
      return entry.answer.join();
    } catch (CompletionException e) {
      throw unwrap(e.getCause());
    }
  }

  /**
   * Cancels the calls on the wire and answers every caller still waiting, queued or in a batch, with CANCELLED:
   * the client is closing, and they would otherwise wait out their deadlines. Later calls fail at once.
   */
  void close() {
    List<Entry<Q, R>> answer;
    synchronized (this) {
      closed = true;
      queue.clear();
      answer = new ArrayList<>(waiting);
    }
    calls.cancel(null);
    CairnException error = closedError();
    answer.forEach(e -> e.answer.completeExceptionally(error));
  }

  /** Starts a call in this coalescer's context, so that close() cancels it and no caller's context does. */
  private <T> CompletableFuture<T> within(Supplier<CompletableFuture<T>> send) {
    Context previous = calls.attach();
    try {
      return send.get();
    } finally {
      calls.detach(previous);
    }
  }

  private static CairnException closedError() {
    return CairnException.of(Status.CANCELLED.withDescription("the client was closed while the call waited"), null,
        null);
  }

  /** The next batch: queued calls whose callers still wait, up to maxItems and maxBytes. Holds the lock. */
  private List<Entry<Q, R>> take() {
    int limit = 1;
    if (batching) {
      // Callers woken by one answer call again together: a share of the queue per free sender (not all of
      // it for the first) keeps maxInflight batches on the wire, so the server works on some while others
      // travel.
      int free = Math.max(1, maxInflight - sending);
      limit = Math.min(maxItems, Math.max(MIN_BATCH, (queue.size() + free - 1) / free));
    }
    List<Entry<Q, R>> batch = new ArrayList<>(Math.min(limit, queue.size()));
    long total = 0;
    while (!queue.isEmpty() && batch.size() < limit) {
      Entry<Q, R> entry = queue.peek();
      if (entry.answer.isDone()) { // past its deadline, or interrupted, before it was sent
        queue.poll();
        continue;
      }
      total += size.applyAsInt(entry.request);
      if (!batch.isEmpty() && total > maxBytes) {
        break;
      }
      batch.add(queue.poll());
    }
    return batch;
  }

  /**
   * Sends the next batch, if any, and again when it is answered; otherwise this sender ends. A batch answered
   * at once (a call that failed before it was sent) is followed in this loop rather than by recursion.
   */
  private void drain() {
    while (true) {
      List<Entry<Q, R>> batch;
      boolean alone;
      synchronized (this) {
        do {
          if (queue.isEmpty()) {
            inflight--;
            return;
          }
          batch = take();
        } while (batch.isEmpty());
        sending++;
        alone = batch.size() == 1 || !batching;
      }
      CompletableFuture<Void> sent = alone ? sendOne(batch.get(0)) : sendMany(batch);
      if (!sent.isDone()) {
        sent.whenComplete((ignored, error) -> {
          synchronized (this) {
            sending--;
          }
          drain();
        });
        return;
      }
      synchronized (this) {
        sending--;
      }
    }
  }

  private CompletableFuture<Void> sendOne(Entry<Q, R> entry) {
    if (entry.answer.isDone()) {
      return DONE;
    }
    CompletableFuture<R> call;
    try {
      call = within(() -> one.send(entry.request, entry.deadline));
    } catch (RuntimeException e) {
      call = CompletableFuture.failedFuture(e);
    }
    return call.handle((response, error) -> {
      if (error != null) {
        entry.answer.completeExceptionally(unwrap(error));
      } else {
        entry.answer.complete(response);
      }
      return null;
    });
  }

  /** Sends each entry whose caller still waits as its own call (sendOne skips the others). */
  private CompletableFuture<Void> sendAlone(List<Entry<Q, R>> entries) {
    return CompletableFuture.allOf(entries.stream().map(this::sendOne).toArray(CompletableFuture<?>[]::new));
  }

  private CompletableFuture<Void> sendMany(List<Entry<Q, R>> batch) {
    long deadline = batch.stream().mapToLong(e -> e.deadline).max().orElseThrow();
    List<Q> requests = batch.stream().map(e -> e.request).toList();
    CompletableFuture<List<Outcome<R>>> call;
    try {
      call = within(() -> many.send(requests, deadline));
    } catch (RuntimeException e) {
      call = CompletableFuture.failedFuture(e);
    }
    return call.handle((outcomes, error) -> {
      if (error != null) {
        RuntimeException failure = unwrap(error);
        if (failure instanceof CairnException ce && ce.code() == Status.Code.UNIMPLEMENTED) {
          synchronized (this) { // a server older than the batch method
            batching = false;
          }
          return sendAlone(batch);
        }
        if (failure instanceof CairnException ce && BATCH_REFUSED.contains(ce.code())) {
          // More items or bytes than this server takes in one call: these go alone (sendOne skips callers that
          // left), later batches half as large (min: a refusal answered late, for a batch sent before an earlier
          // one shrank the limits, keeps them).
          long bytes = batch.stream().mapToLong(e -> size.applyAsInt(e.request)).sum();
          synchronized (this) {
            maxItems = Math.min(maxItems, Math.max(1, batch.size() / 2));
            maxBytes = (int) Math.min(maxBytes, Math.max(1, bytes / 2));
          }
          return sendAlone(batch);
        }
        batch.forEach(e -> e.answer.completeExceptionally(failure));
        return DONE;
      }
      List<Entry<Q, R>> again = new ArrayList<>();
      for (int i = 0; i < batch.size(); i++) {
        Outcome<R> outcome = outcomes.get(i);
        Entry<Q, R> entry = batch.get(i);
        if (outcome.error() == null) {
          entry.answer.complete(outcome.response());
        } else if (retryAlone.test(outcome.error())) {
          again.add(entry);
        } else {
          entry.answer.completeExceptionally(outcome.error());
        }
      }
      return sendAlone(again);
    }).thenCompose(next -> next);
  }

  private static RuntimeException unwrap(Throwable t) {
    while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
      t = t.getCause();
    }
    return t instanceof RuntimeException re ? re : new IllegalStateException(t);
  }
}
