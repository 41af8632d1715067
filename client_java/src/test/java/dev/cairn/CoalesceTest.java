package dev.cairn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.cairn.client.CairnClient;
import dev.cairn.client.CairnException;
import dev.cairn.client.ConflictException;
import dev.cairn.client.NotFoundException;
import dev.cairn.v1.BatchLoadRequest;
import dev.cairn.v1.Checkpoint;
import dev.cairn.v1.CheckpointStoreGrpc;
import dev.cairn.v1.LoadRequest;
import dev.cairn.v1.LoadResponse;
import dev.cairn.v1.SaveBatchRequest;
import dev.cairn.v1.SaveBatchResult;
import dev.cairn.v1.SaveRequest;
import dev.cairn.v1.SaveResponse;
import io.grpc.BindableService;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntFunction;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@code saveBatch}, and the coalescing of concurrent {@code save} and {@code load} calls into SaveBatch and
 * BatchLoad calls ({@code Coalescer}), against the real server (the shared one; for batches larger than the server
 * takes, one started with {@code --max-batch-items 3}); the fallback for a server without the batch methods
 * against an in-process server that has only Save and Load.
 */
class CoalesceTest {

  /** Counts the client's calls by method and can hold calls of one method until released. */
  static final class Calls implements ClientInterceptor {
    final Map<String, AtomicInteger> counts = new ConcurrentHashMap<>();
    volatile String holding = "";
    volatile CountDownLatch hold = new CountDownLatch(0);
    final AtomicInteger held = new AtomicInteger();

    void holdCalls(String method) {
      hold = new CountDownLatch(1);
      holding = method;
    }

    void release() {
      hold.countDown();
    }

    int count(String method) {
      return counts.getOrDefault(method, new AtomicInteger()).get();
    }

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
      String name = method.getBareMethodName();
      counts.computeIfAbsent(name, k -> new AtomicInteger()).incrementAndGet();
      if (name.equals(holding) && hold.getCount() > 0) {
        held.incrementAndGet();
        try {
          hold.await();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      return next.newCall(method, options);
    }
  }

  private final List<ManagedChannel> channels = new ArrayList<>();
  private final ExecutorService threads = Executors.newCachedThreadPool();

  @AfterEach
  void close() {
    threads.shutdownNow();
    channels.forEach(ManagedChannel::shutdownNow);
  }

  private CairnClient client(Calls calls, String target, int coalesce, Duration deadline) {
    ManagedChannel channel = ManagedChannelBuilder.forTarget(target).usePlaintext().intercept(calls).build();
    channels.add(channel);
    return CairnClient.builder().channel(channel).token(System.getenv("CAIRN_TOKEN")).coalesce(coalesce)
        .deadline(deadline).build();
  }

  private CairnClient client(Calls calls, int coalesce) {
    return client(calls, TestServer.target(), coalesce, Duration.ofSeconds(30));
  }

  /** A JSON state of about 36 KB, the size of a typical agent state. */
  static ByteString state36k(String tag) {
    return ByteString.copyFromUtf8("{\"tag\":\"" + tag + "\",\"blob\":\"" + "abcdefghij".repeat(3686) + "\"}");
  }

  static SaveRequest saveOf(String thread, ByteString state) {
    return SaveRequest.newBuilder()
        .setCheckpoint(Checkpoint.newBuilder().setThreadId(thread).setState(state).setStateType("json")).build();
  }

  /** Runs {@code call(i)} for i in [0, n) on n threads at once; releases the held calls once all have begun. */
  private <T> List<Future<T>> all(int n, Calls calls, IntFunction<T> call) {
    CountDownLatch entered = new CountDownLatch(n);
    List<Future<T>> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int index = i;
      out.add(threads.submit(() -> {
        entered.countDown();
        return call.apply(index);
      }));
    }
    try {
      entered.await();
    } catch (InterruptedException e) {
      throw new IllegalStateException(e);
    }
    calls.release();
    return out;
  }

  private static <T> T get(Future<T> f) throws Exception {
    try {
      return f.get(60, TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      if (e.getCause() instanceof Error err) {
        throw err;
      }
      throw (Exception) e.getCause();
    }
  }

  @Test
  void saveBatchGivesEachItemItsOwnOutcome() {
    try (CairnClient cairn = TestServer.client()) {
      String a = TestServer.threadId("batch-a");
      String b = TestServer.threadId("batch-b");
      SaveResponse head = cairn.save(saveOf(b, ByteString.copyFromUtf8("{\"n\":0}")));
      SaveRequest conflicting = saveOf(b, ByteString.copyFromUtf8("{\"n\":2}")).toBuilder()
          .setExpectedHeadId("not-the-head").build();
      SaveRequest following = saveOf(b, ByteString.copyFromUtf8("{\"n\":3}")).toBuilder()
          .setExpectedHeadId(head.getCheckpointId()).build();
      List<SaveBatchResult> results = cairn.saveBatch(
          List.of(saveOf(a, ByteString.copyFromUtf8("{\"n\":1}")), conflicting, following));
      assertEquals(3, results.size());
      assertTrue(results.get(0).hasSave() && results.get(2).hasSave(), results.toString());
      CairnException e = CairnClient.toException(results.get(1).getError());
      ConflictException conflict = (ConflictException) e;
      assertEquals("HEAD_MOVED", conflict.reason());
      assertEquals(head.getCheckpointId(), conflict.currentHeadId());
      assertEquals(results.get(0).getSave().getCheckpointId(), cairn.load(a).getCheckpoint().getCheckpointId());
      assertEquals(results.get(2).getSave().getCheckpointId(), cairn.load(b).getCheckpoint().getCheckpointId());
    }
  }

  @Test
  void concurrentSavesTravelInFewerCalls() throws Exception {
    Calls calls = new Calls();
    try (CairnClient cairn = client(calls, 4)) {
      calls.holdCalls("Save");
      List<String> ids = new ArrayList<>();
      for (int i = 0; i < 64; i++) {
        ids.add(TestServer.threadId("coalesce-" + i));
      }
      for (Future<SaveResponse> f : all(64, calls, i -> cairn.save(saveOf(ids.get(i), state36k(ids.get(i)))))) {
        get(f);
      }
      int saves = calls.count("Save");
      int batches = calls.count("SaveBatch");
      assertTrue(batches > 0 && saves + batches < 64,
          "64 concurrent saves made " + saves + " Save and " + batches + " SaveBatch calls; want fewer calls");
      for (String id : ids) {
        assertEquals(state36k(id), cairn.load(id).getCheckpoint().getState());
      }
    }
  }

  @Test
  void coalescedCompareAndSetFailsOnlyItsOwnSave() throws Exception {
    Calls calls = new Calls();
    try (CairnClient cairn = client(calls, 1)) {
      calls.holdCalls("Save");
      String thread = TestServer.threadId("coalesce-cas");
      SaveRequest req = saveOf(thread, ByteString.copyFromUtf8("{}")).toBuilder().setExpectEmpty(true).build();
      int won = 0;
      for (Future<SaveResponse> f : all(16, calls, i -> {
        try {
          return cairn.save(req);
        } catch (ConflictException e) {
          return null;
        }
      })) {
        won += get(f) == null ? 0 : 1;
      }
      assertEquals(1, won, "ExpectEmpty saves of one thread that succeeded");
      assertTrue(calls.count("SaveBatch") > 0, "the saves did not travel together");
    }
  }

  @Test
  void concurrentLoadsTravelInBatchLoads() throws Exception {
    Calls calls = new Calls();
    try (CairnClient cairn = client(calls, 1)) {
      List<String> ids = new ArrayList<>();
      for (int i = 0; i < 24; i++) {
        ids.add(TestServer.threadId("coalesce-load-" + i));
        if (i > 0) { // the first thread stays empty
          cairn.save(saveOf(ids.get(i), state36k(ids.get(i))));
        }
      }
      calls.holdCalls("Load");
      List<Future<LoadResponse>> loads = all(24, calls, i -> {
        try {
          return cairn.load(ids.get(i));
        } catch (NotFoundException e) {
          assertEquals("THREAD_EMPTY", e.reason());
          return null;
        }
      });
      assertEquals(null, get(loads.get(0)));
      for (int i = 1; i < 24; i++) {
        assertEquals(state36k(ids.get(i)), get(loads.get(i)).getCheckpoint().getState());
      }
      assertTrue(calls.count("BatchLoad") > 0 && calls.count("Load") + calls.count("BatchLoad") < 24,
          calls.count("Load") + " Load and " + calls.count("BatchLoad") + " BatchLoad calls for 24 loads");
    }
  }

  @Test
  void queuedSaveEndsAtItsOwnDeadline() throws Exception {
    Calls calls = new Calls();
    try (CairnClient cairn = client(calls, TestServer.target(), 1, Duration.ofSeconds(3))) {
      // Connected, and the server past its first save, so that the save sent after the release answers in time.
      cairn.save(saveOf(TestServer.threadId("deadline-warm"), ByteString.copyFromUtf8("{}")));
      calls.holdCalls("Save");
      String first = TestServer.threadId("deadline-first");
      String late = TestServer.threadId("deadline-late");
      String patient = TestServer.threadId("deadline-patient");
      Future<SaveResponse> a = threads.submit(() -> cairn.save(saveOf(first, ByteString.copyFromUtf8("{}"))));
      while (calls.held.get() < 1) { // the one sender is busy: the next saves queue
        Thread.sleep(1);
      }
      Future<SaveResponse> b = threads.submit(() -> cairn.save(saveOf(late, ByteString.copyFromUtf8("{}"))));
      Thread.sleep(1500); // so that c's deadline is 1.5 s after b's
      Future<SaveResponse> c = threads.submit(() -> cairn.save(saveOf(patient, ByteString.copyFromUtf8("{}"))));

      CairnException lateError = assertThrows(CairnException.class, () -> get(b));
      assertEquals(Status.Code.DEADLINE_EXCEEDED, lateError.code());
      assertFalse(c.isDone(), "the later save ended before the save it queued behind was released");
      calls.release();
      // The held save's own deadline passed while it was held; the later one still has 1.5 s.
      assertEquals(Status.Code.DEADLINE_EXCEEDED, assertThrows(CairnException.class, () -> get(a)).code());
      SaveResponse saved = get(c);
      assertEquals(saved.getCheckpointId(), cairn.load(patient).getCheckpoint().getCheckpointId());
      // The late save was dropped from the queue, never sent.
      assertEquals("THREAD_EMPTY", assertThrows(NotFoundException.class, () -> cairn.load(late)).reason());
    }
  }

  @Test
  void coalesceOffSendsEverySaveAlone() throws Exception {
    Calls calls = new Calls();
    try (CairnClient cairn = client(calls, 0)) {
      calls.holdCalls("Save");
      for (Future<SaveResponse> f : all(16, calls,
          i -> cairn.save(saveOf(TestServer.threadId("coalesce-off"), ByteString.copyFromUtf8("{}"))))) {
        get(f);
      }
      assertEquals(16, calls.count("Save"));
      assertEquals(0, calls.count("SaveBatch"));
    }
    assertThrows(IllegalArgumentException.class, () -> CairnClient.builder().coalesce(-1));
  }

  /** A started gRPC server of {@code service} on a free port, each call on a thread of its own. */
  static Server serve(BindableService service) throws IOException {
    return Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()).addService(service)
        .executor(Executors.newCachedThreadPool()).build().start();
  }

  /** A Cairn server from before SaveBatch and BatchLoad: Save and Load only; holds a call on request. */
  static final class OldServer extends CheckpointStoreGrpc.CheckpointStoreImplBase {
    final AtomicInteger saves = new AtomicInteger();
    final AtomicInteger loads = new AtomicInteger();
    final AtomicBoolean holding = new AtomicBoolean();
    volatile CountDownLatch held = new CountDownLatch(1);
    volatile CountDownLatch hold = new CountDownLatch(1);

    void holdNext() {
      held = new CountDownLatch(1);
      hold = new CountDownLatch(1);
      holding.set(true);
    }

    private void await() {
      if (holding.compareAndSet(true, false)) {
        held.countDown();
        try {
          hold.await();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    }

    @Override
    public void save(SaveRequest request, StreamObserver<SaveResponse> out) {
      saves.incrementAndGet();
      await();
      out.onNext(SaveResponse.newBuilder().setCheckpointId(request.getCheckpoint().getCheckpointId()).build());
      out.onCompleted();
    }

    @Override
    public void load(LoadRequest request, StreamObserver<LoadResponse> out) {
      loads.incrementAndGet();
      await();
      out.onNext(LoadResponse.newBuilder().setCheckpoint(Checkpoint.newBuilder()
          .setThreadId(request.getThreadId()).setState(ByteString.copyFromUtf8(request.getThreadId()))).build());
      out.onCompleted();
    }
  }

  @Test
  void serverWithoutBatchMethodsGetsCallsAlone() throws Exception {
    OldServer old = new OldServer();
    Server server = serve(old);
    Calls calls = new Calls();
    try (CairnClient cairn = client(calls, "127.0.0.1:" + server.getPort(), 1, Duration.ofSeconds(30))) {
      // One call holds the one sender at the server while 7 more queue behind it.
      round(old, () -> cairn.save(saveOf("t0", ByteString.EMPTY)),
          i -> cairn.save(saveOf("t" + i, ByteString.EMPTY)));
      assertEquals(8, old.saves.get());
      assertEquals(1, calls.count("SaveBatch"), "SaveBatch calls: the one that found UNIMPLEMENTED");

      List<Future<LoadResponse>> loads = round(old, () -> cairn.load("t0"), i -> cairn.load("t" + i));
      for (int i = 0; i < loads.size(); i++) {
        assertArrayEquals(("t" + (i + 1)).getBytes(StandardCharsets.UTF_8),
            get(loads.get(i)).getCheckpoint().getState().toByteArray());
      }
      assertEquals(8, old.loads.get());
      assertEquals(1, calls.count("BatchLoad"), "BatchLoad calls: the one that found UNIMPLEMENTED");

      // Once the server said UNIMPLEMENTED, concurrent saves go alone from the start.
      round(old, () -> cairn.save(saveOf("u0", ByteString.EMPTY)),
          i -> cairn.save(saveOf("u" + i, ByteString.EMPTY)));
      assertEquals(16, old.saves.get());
      assertEquals(1, calls.count("SaveBatch"), "no SaveBatch call after UNIMPLEMENTED");
    } finally {
      server.shutdownNow();
    }
  }

  /** The first call held at the server, then 7 more at once, then the first released; the 7 answers. */
  private <T> List<Future<T>> round(OldServer old, java.util.concurrent.Callable<T> first, IntFunction<T> more)
      throws Exception {
    old.holdNext();
    Future<T> f = threads.submit(first);
    old.held.await();
    CountDownLatch entered = new CountDownLatch(7);
    List<Future<T>> out = new ArrayList<>();
    for (int i = 1; i < 8; i++) {
      int index = i;
      out.add(threads.submit(() -> {
        entered.countDown();
        return more.apply(index);
      }));
    }
    entered.await();
    old.hold.countDown();
    get(f);
    for (Future<T> g : out) {
      get(g);
    }
    return out;
  }

  /** Records the item count of each SaveBatch and BatchLoad call sent. */
  static final class BatchSizes implements ClientInterceptor {
    final Map<String, List<Integer>> sent = new ConcurrentHashMap<>();

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
      return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
        @Override
        public void sendMessage(Q message) {
          int n = message instanceof SaveBatchRequest r ? r.getSavesCount()
              : message instanceof BatchLoadRequest r ? r.getLoadsCount() : -1;
          if (n >= 0) {
            sent.computeIfAbsent(method.getBareMethodName(), k -> new CopyOnWriteArrayList<>()).add(n);
          }
          super.sendMessage(message);
        }
      };
    }
  }

  /** The most items the client's coalescer of saves or loads puts in one batch call now. */
  private static int batchLimit(CairnClient cairn, String kind) throws ReflectiveOperationException {
    java.lang.reflect.Field field = CairnClient.class.getDeclaredField(kind);
    field.setAccessible(true);
    Object coalescer = field.get(cairn);
    java.lang.reflect.Method maxItems = coalescer.getClass().getDeclaredMethod("maxItems");
    maxItems.setAccessible(true);
    return (int) maxItems.invoke(coalescer);
  }

  @Test
  void batchTooLargeForTheServerGoesAloneAndLaterBatchesShrink() throws Exception {
    try (TestServer.Own small = TestServer.start("--max-batch-items", "3")) {
      Calls calls = new Calls();
      BatchSizes sizes = new BatchSizes();
      ManagedChannel channel = ManagedChannelBuilder.forTarget(small.target()).usePlaintext()
          .intercept(calls, sizes).build();
      channels.add(channel);
      try (CairnClient cairn = CairnClient.builder().channel(channel).deadline(Duration.ofSeconds(60)).build()) {
        Map<String, Integer> start = Map.of("saves", batchLimit(cairn, "saves"), "loads", batchLimit(cairn, "loads"));
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
          ids.add(TestServer.threadId("small-batch-" + i));
        }
        // The first saves are held at the client, so the rest queue and leave in batches larger than 3.
        calls.holdCalls("Save");
        List<Future<SaveResponse>> saves = all(40, calls, i -> cairn.save(saveOf(ids.get(i), state36k(ids.get(i)))));
        List<String> saved = new ArrayList<>();
        for (Future<SaveResponse> f : saves) {
          saved.add(get(f).getCheckpointId());
        }
        calls.holdCalls("Load");
        List<Future<LoadResponse>> loads = all(40, calls, i -> cairn.load(ids.get(i)));
        for (int i = 0; i < 40; i++) {
          Checkpoint cp = get(loads.get(i)).getCheckpoint();
          assertEquals(saved.get(i), cp.getCheckpointId());
          assertEquals(state36k(ids.get(i)), cp.getState());
        }

        // The server refuses every batch of more than 3; each refusal halves the limit (never raising it).
        for (String[] k : new String[][] {{"saves", "SaveBatch"}, {"loads", "BatchLoad"}}) {
          List<Integer> refused = sizes.sent.getOrDefault(k[1], List.of()).stream().filter(n -> n > 3).toList();
          assertFalse(refused.isEmpty(), "no " + k[1] + " call larger than the server takes: " + sizes.sent);
          int want = start.get(k[0]);
          for (int n : refused) {
            want = Math.min(want, Math.max(1, n / 2));
          }
          int limit = batchLimit(cairn, k[0]);
          assertEquals(want, limit, k[0] + " batch limit after refusals of " + refused);
          assertTrue(limit < start.get(k[0]), k[0] + " batch limit " + limit + " did not come down");
        }
      }
    }
  }
}
