package dev.cairn.client;

import io.grpc.Status;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Predicate;
import java.util.function.ToIntFunction;

/**
 * Concurrent calls of one kind (saves; loads), sent together as one batch call (SaveBatch; BatchLoad).
 *
 * <p>A graph runtime runs many graphs in one JVM, and each saves after every step. Sent one call each, every
 * save pays gRPC's per-call cost at both ends: on a 37 KB state that is most of the server's CPU per save and
 * much of the client's. The coalescer keeps that cost per batch instead:
 *
 * <ul>
 *   <li>a call goes straight out while fewer than {@code maxInflight} calls of its kind are in flight, so a
 *       lone caller waits for nothing and low concurrency sees no change;
 *   <li>calls made while they are in flight queue, and each sender that comes free takes its share of the
 *       queue (ceil(queued / free senders), up to {@code maxItems} and {@code maxBytes}) as one batch call.
 * </ul>
 *
 * <p>No timer and no thread of its own: a sender is a chain of async calls, the completion of one taking the
 * next batch (on gRPC's callback executor; it only starts the next async call). The calling thread waits for
 * its own answer until its own deadline: a batch is sent with the latest deadline of its items, and an item
 * whose deadline passes first ends with DEADLINE_EXCEEDED, as its unary call would have (and, if still queued,
 * is never sent). A batch call that fails as a whole fails each of its items with that error, except two the
 * batch caused: a server without the batch method (UNIMPLEMENTED) gets these and every later call on its own,
 * and one with a smaller {@code --max-batch-items} (INVALID_ARGUMENT naming the batch's field) gets these alone
 * and later batches half as large. It is the design of the Python client's {@code cairn_client/coalesce.py}.
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

  /** The fields a batch call's INVALID_ARGUMENT names when it has more items than --max-batch-items. */
  private static final Set<String> BATCH_FIELDS = Set.of("saves", "loads");

  private final One<Q, R> one;
  private final Many<Q, R> many;
  private final Predicate<CairnException> retryAlone;
  private final ToIntFunction<Q> size;
  private final int maxInflight;
  private final int maxBytes;

  // guarded by this
  private int maxItems; // lowered when the server refuses a batch as too large
  private final ArrayDeque<Entry<Q, R>> queue = new ArrayDeque<>();
  private int inflight; // senders
  private int sending; // of them, those with a call on the wire
  private boolean batching = true; // false once the server said it has no batch method

  /**
   * @param one the unary call
   * @param many the batch call
   * @param retryAlone item errors a batch caused (a response budget its items shared) that the unary call
   *     would not give: such an item is sent again on its own
   * @param size a request's size in bytes
   * @param maxInflight calls of this kind in flight before concurrent ones wait to go together
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

  /**
   * The response to {@code request}, sent alone or in a batch; blocks until it comes or the deadline passes.
   *
   * @throws CairnException the call's or the item's error; DEADLINE_EXCEEDED after {@code timeoutNanos}
   */
  R call(Q request, long timeoutNanos) {
    Entry<Q, R> entry = new Entry<>(request, System.nanoTime() + timeoutNanos);
    boolean start;
    synchronized (this) {
      queue.add(entry);
      start = inflight < maxInflight;
      if (start) {
        inflight++;
      }
    }
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

  /** The next batch: queued calls whose callers still wait, up to maxItems and maxBytes. Holds the lock. */
  private List<Entry<Q, R>> take() {
    int limit = 1;
    if (batching) {
      // Callers woken by one answer call again together: a share of the queue per free sender (not all of
      // it for the first) keeps maxInflight batches on the wire, so the server works on some while others
      // travel.
      int free = Math.max(1, maxInflight - sending);
      limit = Math.min(maxItems, (queue.size() + free - 1) / free);
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
      call = one.send(entry.request, entry.deadline);
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

  private CompletableFuture<Void> sendAlone(List<Entry<Q, R>> entries) {
    return CompletableFuture.allOf(entries.stream().map(this::sendOne).toArray(CompletableFuture<?>[]::new));
  }

  private CompletableFuture<Void> sendMany(List<Entry<Q, R>> batch) {
    long deadline = batch.stream().mapToLong(e -> e.deadline).max().orElseThrow();
    List<Q> requests = batch.stream().map(e -> e.request).toList();
    CompletableFuture<List<Outcome<R>>> call;
    try {
      call = many.send(requests, deadline);
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
        if (failure instanceof CairnException ce && ce.code() == Status.Code.INVALID_ARGUMENT
            && BATCH_FIELDS.contains(ce.metadata().getOrDefault("field", ""))) {
          // More items than the server's --max-batch-items: these go alone, later batches half as large (min: a
          // larger batch refused meanwhile must not raise a limit another refusal already lowered).
          synchronized (this) {
            maxItems = Math.min(maxItems, Math.max(1, batch.size() / 2));
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
