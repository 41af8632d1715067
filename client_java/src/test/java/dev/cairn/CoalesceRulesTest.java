package dev.cairn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.ByteString;
import dev.cairn.CoalesceTest.BatchSizes;
import dev.cairn.CoalesceTest.Calls;
import dev.cairn.client.CairnClient;
import dev.cairn.client.CairnException;
import dev.cairn.v1.CheckpointStoreGrpc;
import dev.cairn.v1.SaveBatchRequest;
import dev.cairn.v1.SaveBatchResponse;
import dev.cairn.v1.SaveRequest;
import dev.cairn.v1.SaveResponse;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The coalescer's rules for low concurrency (a second sender only once 4 calls wait), for batches the server
 * refuses whole for their size, and for a client closed while calls wait: against the real server where it can show
 * them (the shared one; one started with {@code --max-state-bytes 200000} for messages larger than it takes), and
 * against an in-process server that holds calls where the test must control when a call on the wire ends.
 */
class CoalesceRulesTest {

  private final List<ManagedChannel> channels = new ArrayList<>();
  private final ExecutorService threads = Executors.newCachedThreadPool();

  @AfterEach
  void close() {
    threads.shutdownNow();
    channels.forEach(ManagedChannel::shutdownNow);
  }

  private CairnClient client(String target, int coalesce, Duration deadline, io.grpc.ClientInterceptor... with) {
    ManagedChannel channel = ManagedChannelBuilder.forTarget(target).usePlaintext().intercept(with).build();
    channels.add(channel);
    return CairnClient.builder().channel(channel).token(System.getenv("CAIRN_TOKEN")).coalesce(coalesce)
        .deadline(deadline).build();
  }

  /** A call of the client's coalescer of saves, by reflection: {@code queued}, {@code maxBytes}. */
  private static int saves(CairnClient cairn, String method) throws ReflectiveOperationException {
    java.lang.reflect.Field field = CairnClient.class.getDeclaredField("saves");
    field.setAccessible(true);
    Object coalescer = field.get(cairn);
    java.lang.reflect.Method m = coalescer.getClass().getDeclaredMethod(method);
    m.setAccessible(true);
    return (int) m.invoke(coalescer);
  }

  private static void waitFor(String what, BooleanSupplier cond) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
    while (!cond.getAsBoolean()) {
      if (System.nanoTime() > end) {
        fail("timed out waiting until " + what);
      }
      Thread.sleep(1);
    }
  }

  private static int queued(CairnClient cairn) {
    try {
      return saves(cairn, "queued");
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException(e);
    }
  }

  private static <T> T get(Future<T> f) throws Exception {
    try {
      return f.get(60, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof Error err) {
        throw err;
      }
      throw (Exception) e.getCause();
    }
  }

  /** The error a call ended with, or null when it succeeded. */
  private static Throwable failure(Future<?> f) throws Exception {
    try {
      f.get(60, TimeUnit.SECONDS);
      return null;
    } catch (ExecutionException e) {
      return e.getCause();
    }
  }

  @Test
  void fourConcurrentSavesShareCallsAndALoneSaveGoesAsSave() throws Exception {
    Calls calls = new Calls();
    try (CairnClient cairn = client(TestServer.target(), 4, Duration.ofSeconds(30), calls)) {
      String id = TestServer.threadId("four");
      cairn.save(CoalesceTest.saveOf(id + "-alone", ByteString.copyFromUtf8("{}")));
      assertEquals(1, calls.count("Save"), "a lone save's Save calls");
      assertEquals(0, calls.count("SaveBatch"), "a lone save's SaveBatch calls");
    }
    // The first save is held on its way out; 3 more come meanwhile, fewer than a batch's worth, so no second
    // sender starts for them.
    Calls held = new Calls();
    try (CairnClient cairn = client(TestServer.target(), 4, Duration.ofSeconds(30), held)) {
      String id = TestServer.threadId("four");
      held.holdCalls("Save");
      List<Future<SaveResponse>> saves = new ArrayList<>();
      saves.add(threads.submit(() -> cairn.save(CoalesceTest.saveOf(id + "-0", ByteString.copyFromUtf8("{}")))));
      waitFor("the first save is held", () -> held.held.get() == 1);
      for (int i = 1; i < 4; i++) {
        String thread = id + "-" + i;
        saves.add(threads.submit(() -> cairn.save(CoalesceTest.saveOf(thread, ByteString.copyFromUtf8("{}")))));
      }
      waitFor("the 3 later saves queued or went out", () -> queued(cairn) + held.held.get() - 1 == 3);
      held.release();
      for (Future<SaveResponse> f : saves) {
        get(f);
      }
      int n = held.count("Save") + held.count("SaveBatch");
      assertTrue(n < 4, "4 concurrent saves made " + held.count("Save") + " Save and " + held.count("SaveBatch")
          + " SaveBatch calls; want fewer than 4 calls");
    }
  }

  @Test
  void batchLargerThanTheServersMessagesGoesAloneAndLaterBatchesShrink() throws Exception {
    try (TestServer.Own small = TestServer.start("--max-state-bytes", "200000")) { // messages of about 1.3 MB
      Calls calls = new Calls();
      BatchSizes sizes = new BatchSizes();
      try (CairnClient cairn = client(small.target(), 1, Duration.ofSeconds(60), calls, sizes)) {
        int startBytes = saves(cairn, "maxBytes");
        SecureRandom random = new SecureRandom();
        List<ByteString> states = new ArrayList<>();
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 24; i++) { // 150 KB each: 24 of them are far beyond the server's messages
          byte[] raw = new byte[110_000];
          random.nextBytes(raw);
          states.add(ByteString.copyFromUtf8("\"" + Base64.getEncoder().encodeToString(raw) + "\""));
          ids.add(TestServer.threadId("big-" + i));
        }
        calls.holdCalls("Save");
        List<Future<SaveResponse>> saves = new ArrayList<>();
        for (int i = 0; i < 24; i++) {
          int index = i;
          saves.add(threads.submit(() -> cairn.save(CoalesceTest.saveOf(ids.get(index), states.get(index)))));
          if (i == 0) {
            waitFor("the first save is held", () -> calls.held.get() == 1);
          }
        }
        waitFor("the other saves queued", () -> queued(cairn) == 23);
        calls.release();
        for (Future<SaveResponse> f : saves) {
          get(f);
        }
        for (int i = 0; i < 24; i++) {
          assertEquals(states.get(i), cairn.load(ids.get(i)).getCheckpoint().getState());
        }
        List<Integer> batches = sizes.sent.getOrDefault("SaveBatch", List.of());
        assertFalse(batches.isEmpty(), "no SaveBatch call: the saves did not queue into a batch");
        int bytes = saves(cairn, "maxBytes");
        assertTrue(bytes < startBytes && bytes <= 24 * 150_000 / 2,
            "the save coalescer's batch bytes are " + bytes + " after a refusal of " + batches);
      }
    }
  }

  /**
   * Holds every Save until {@code release} opens and every SaveBatch until {@code refuse} opens (then refuses it
   * whole with RESOURCE_EXHAUSTED), or until its call is cancelled; records the threads saved alone.
   */
  static final class StuckServer extends CheckpointStoreGrpc.CheckpointStoreImplBase {
    final CountDownLatch release = new CountDownLatch(1);
    final CountDownLatch refuse = new CountDownLatch(1);
    final AtomicInteger batches = new AtomicInteger();
    final List<String> saved = new CopyOnWriteArrayList<>();

    private static void await(CountDownLatch latch) {
      try {
        latch.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }

    @Override
    public void save(SaveRequest request, StreamObserver<SaveResponse> out) {
      saved.add(request.getCheckpoint().getThreadId());
      await(release);
      out.onNext(SaveResponse.newBuilder().setCheckpointId("cp").build());
      out.onCompleted();
    }

    @Override
    public void saveBatch(SaveBatchRequest request, StreamObserver<SaveBatchResponse> out) {
      batches.incrementAndGet();
      await(refuse);
      out.onError(Status.RESOURCE_EXHAUSTED.withDescription("message larger than max").asRuntimeException());
    }
  }

  @Test
  void closingTheClientAnswersQueuedAndBatchedCallers() throws Exception {
    StuckServer stuck = new StuckServer();
    Server server = CoalesceTest.serve(stuck);
    try {
      CairnClient cairn = client("127.0.0.1:" + server.getPort(), 1, Duration.ofMinutes(10));
      List<Future<SaveResponse>> saves = new ArrayList<>();
      Callable<SaveResponse> first = () -> cairn.save(CoalesceTest.saveOf("t0", ByteString.EMPTY));
      Future<SaveResponse> held = threads.submit(first); // alone, held at the server
      waitFor("the first save reached the server", () -> stuck.saved.size() == 1);
      for (int i = 1; i < 6; i++) {
        String thread = "t" + i;
        saves.add(threads.submit(() -> cairn.save(CoalesceTest.saveOf(thread, ByteString.EMPTY))));
      }
      waitFor("5 saves queued", () -> queued(cairn) == 5);
      stuck.release.countDown(); // the first save returns; the 5 go as one SaveBatch, held at the server
      get(held);
      waitFor("the batch reached the server", () -> stuck.batches.get() == 1);
      for (int i = 6; i < 8; i++) {
        String thread = "t" + i;
        saves.add(threads.submit(() -> cairn.save(CoalesceTest.saveOf(thread, ByteString.EMPTY))));
      }
      waitFor("2 saves queued behind the batch", () -> queued(cairn) == 2);

      cairn.close();
      for (Future<SaveResponse> f : saves) {
        Throwable error = failure(f);
        assertTrue(error instanceof CairnException e && e.code() == Status.Code.CANCELLED,
            "a save waiting when the client closed ended with " + error + ", want CANCELLED (not its deadline)");
      }
    } finally {
      stuck.refuse.countDown();
      server.shutdownNow();
    }
  }

  @Test
  void callersThatLeftAreNotSentWhenABatchFallsBackToSingleCalls() throws Exception {
    StuckServer stuck = new StuckServer();
    Server server = CoalesceTest.serve(stuck);
    try (CairnClient cairn = client("127.0.0.1:" + server.getPort(), 1, Duration.ofMinutes(2))) {
      Future<SaveResponse> first = threads.submit(() -> cairn.save(CoalesceTest.saveOf("first", ByteString.EMPTY)));
      waitFor("the first save reached the server", () -> stuck.saved.size() == 1);
      CompletableFuture<Throwable> left = new CompletableFuture<>();
      Future<?> leaver = threads.submit(() -> {
        try {
          cairn.save(CoalesceTest.saveOf("leaver", ByteString.EMPTY));
          left.complete(null);
        } catch (RuntimeException e) {
          left.complete(e);
        }
      });
      waitFor("the leaver queued", () -> queued(cairn) == 1);
      List<Future<SaveResponse>> stayers = new ArrayList<>();
      for (int i = 0; i < 3; i++) {
        String thread = "stayer" + i;
        stayers.add(threads.submit(() -> cairn.save(CoalesceTest.saveOf(thread, ByteString.EMPTY))));
      }
      waitFor("4 saves queued", () -> queued(cairn) == 4);
      stuck.release.countDown(); // Saves are answered from now on; the 4 go as one SaveBatch, held at the server
      get(first);
      waitFor("the batch reached the server", () -> stuck.batches.get() == 1);
      leaver.cancel(true); // its caller leaves (interrupted)
      Throwable error = left.get(60, TimeUnit.SECONDS);
      assertTrue(error instanceof CairnException e && e.code() == Status.Code.CANCELLED,
          "the caller that left ended with " + error);
      stuck.refuse.countDown(); // refused whole: its items go alone
      for (Future<SaveResponse> f : stayers) {
        get(f);
      }
      assertEquals(List.of("first", "stayer0", "stayer1", "stayer2"), stuck.saved.stream().sorted().toList());
    } finally {
      stuck.refuse.countDown();
      server.shutdownNow();
    }
  }
}
