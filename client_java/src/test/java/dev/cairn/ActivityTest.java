package dev.cairn;

import static com.alibaba.cloud.ai.graph.StateGraph.END;
import static com.alibaba.cloud.ai.graph.StateGraph.START;
import static com.alibaba.cloud.ai.graph.action.AsyncNodeActionWithConfig.node_async;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.alibaba.cloud.ai.graph.CompileConfig;
import com.alibaba.cloud.ai.graph.CompiledGraph;
import com.alibaba.cloud.ai.graph.KeyStrategy;
import com.alibaba.cloud.ai.graph.RunnableConfig;
import com.alibaba.cloud.ai.graph.StateGraph;
import com.alibaba.cloud.ai.graph.checkpoint.config.SaverConfig;
import com.alibaba.cloud.ai.graph.state.strategy.AppendStrategy;
import com.alibaba.cloud.ai.graph.state.strategy.ReplaceStrategy;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cairn.saa.Activities;
import dev.cairn.saa.CairnSaver;
import dev.cairn.saa.Worker;
import dev.cairn.v1.ListRequest;
import dev.cairn.v1.PendingWrite;
import dev.cairn.v1.RetryPolicy;
import dev.cairn.v1.Run;
import dev.cairn.v1.RunStatus;
import dev.cairn.v1.StartRunRequest;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Activity records and node timeouts of the durable-runs Worker over a Spring AI Alibaba graph and CairnSaver,
 * against a real server: an activity recorded before the first worker lost its run is not called again by the
 * worker that takes the run over (it gets the recorded result); a step past the node timeout fails the attempt
 * with a retryable NodeTimeoutException and the run's retry policy runs it again.
 */
class ActivityTest extends LiveServerTest {
  static final ObjectMapper JSON = new ObjectMapper();

  interface Hook {
    Map<String, Object> run(RunnableConfig config) throws Exception;
  }

  /** draft -> review -> publish; a hook runs first in its node and may add to its update. */
  static final class Pipeline {
    final Map<String, AtomicInteger> ran = new ConcurrentHashMap<>();
    final Map<String, Hook> hooks = new ConcurrentHashMap<>();

    CompiledGraph compile() throws Exception {
      Map<String, KeyStrategy> keys = Map.of("log", new AppendStrategy(), "receipt", new ReplaceStrategy());
      StateGraph graph = new StateGraph("activities", () -> keys)
          .addNode("draft", node_async((s, c) -> step("draft", c)))
          .addNode("review", node_async((s, c) -> step("review", c)))
          .addNode("publish", node_async((s, c) -> step("publish", c)))
          .addEdge(START, "draft")
          .addEdge("draft", "review")
          .addEdge("review", "publish")
          .addEdge("publish", END);
      return graph.compile(CompileConfig.builder()
          .saverConfig(SaverConfig.builder().register(new CairnSaver(cairn)).build()).build());
    }

    Map<String, Object> step(String node, RunnableConfig config) throws Exception {
      Hook hook = hooks.get(node);
      Map<String, Object> extra = hook == null ? Map.of() : hook.run(config);
      ran.computeIfAbsent(node, k -> new AtomicInteger()).incrementAndGet();
      Map<String, Object> update = new java.util.HashMap<>(extra);
      update.put("log", List.of(node));
      return update;
    }

    int count(String node) {
      AtomicInteger n = ran.get(node);
      return n == null ? 0 : n.get();
    }
  }

  static String queue() {
    return "java-act-" + UUID.randomUUID();
  }

  @Test
  void activityRecordedBeforeTheWorkerLostItsRunIsNotCalledAgain() throws Exception {
    String queue = queue();
    AtomicInteger calls = new AtomicInteger();
    Hook review = config -> Map.of("receipt",
        Activities.activity(config, "review", "charge", String.class, () -> "r-" + calls.incrementAndGet()));
    CountDownLatch recorded = new CountDownLatch(1);
    CountDownLatch taken = new CountDownLatch(1);
    Pipeline first = new Pipeline();
    first.hooks.put("review", config -> {
      Map<String, Object> out = review.run(config);
      recorded.countDown();
      WorkerTest.await(taken); // a paused process: no heartbeat, the lease of 1 s runs out
      return out;
    });
    Worker zombie = Worker.builder(cairn, queue, first.compile()).workerId("zombie").lease(Duration.ofSeconds(1))
        .heartbeat(Duration.ofHours(1)).waitTime(Duration.ofSeconds(5)).build();
    Run started = cairn.startRun(TestServer.threadId("java-act"), queue, "{}");
    CompletableFuture<Optional<Run>> running = CompletableFuture.supplyAsync(zombie::runOnce);
    WorkerTest.await(recorded);

    Pipeline second = new Pipeline();
    second.hooks.put("review", review);
    Worker taker = Worker.builder(cairn, queue, second.compile()).workerId("taker").lease(Duration.ofSeconds(30))
        .waitTime(Duration.ofSeconds(2)).build();
    Optional<Run> done = Optional.empty();
    for (Instant deadline = Instant.now().plusSeconds(15); done.isEmpty() && Instant.now().isBefore(deadline); ) {
      done = taker.runOnce();
    }
    Run run = done.orElseThrow();
    assertEquals(started.getRunId(), run.getRunId());
    assertEquals(RunStatus.RUN_STATUS_COMPLETED, run.getStatus());
    assertEquals(1, run.getRecoveryCount());
    assertEquals(1, calls.get(), "the activity ran again");
    assertEquals(1, second.count("review"));
    assertEquals("r-1", WorkerTest.output(run).get("receipt").asText());
    assertEquals("[\"draft\",\"review\",\"publish\"]", WorkerTest.output(run).get("log").toString());

    // The record is the pending write every language's worker uses: task activity:NODE:NAME, channel "activity".
    List<PendingWrite> writes = cairn.list(ListRequest.newBuilder().setThreadId(started.getThreadId())
        .setIncludeWrites(true).build()).getPendingWritesList().stream()
        .filter(w -> w.getChannel().equals("activity")).toList();
    assertEquals(1, writes.size());
    assertEquals("activity:review:charge", writes.get(0).getTaskId());
    assertEquals("json", writes.get(0).getValueType());
    assertEquals("\"r-1\"", writes.get(0).getValue().toStringUtf8());

    taken.countDown();
    running.get(30, TimeUnit.SECONDS);
    assertEquals("LEASE_LOST", zombie.lastStopReason());
  }

  @Test
  void activityOutsideARunIsAnError() {
    assertThrows(IllegalStateException.class,
        () -> Activities.activity(RunnableConfig.builder().build(), "n", "a", String.class, () -> "x"));
  }

  @Test
  void nodeTimeoutFailsTheAttemptAndTheRetryPolicyRetriesIt() throws Exception {
    String queue = queue();
    AtomicInteger attempts = new AtomicInteger();
    Pipeline p = new Pipeline();
    CompiledGraph graph = p.compile();
    // A first invoke outside any run loads the framework's classes, so that only review's wait is slow below.
    graph.invoke(Map.of(), RunnableConfig.builder().threadId(TestServer.threadId("java-act-warmup")).build());
    p.ran.clear();
    p.hooks.put("review", config -> {
      if (attempts.incrementAndGet() == 1) {
        Thread.sleep(60_000); // interrupted when the attempt times out
      }
      return Map.of();
    });
    Worker worker = Worker.builder(cairn, queue, graph).nodeTimeout(Duration.ofSeconds(1))
        .waitTime(Duration.ofSeconds(5)).build();
    Run started = cairn.startRun(StartRunRequest.newBuilder().setThreadId(TestServer.threadId("java-act-timeout"))
        .setQueue(queue).setInput(com.google.protobuf.ByteString.copyFromUtf8("{}")).setInputType("json")
        .setRetryPolicy(RetryPolicy.newBuilder().setMaxAttempts(2).setInitialBackoffMs(10)).build());
    Run run = worker.runOnce().orElseThrow();
    assertEquals(RunStatus.RUN_STATUS_PENDING, run.getStatus());
    assertEquals(1, run.getFailedAttemptCount());
    assertEquals(0, p.count("publish"));
    while (run.getStatus() == RunStatus.RUN_STATUS_PENDING) {
      run = worker.runOnce().orElseThrow();
    }
    assertEquals(started.getRunId(), run.getRunId());
    assertEquals(RunStatus.RUN_STATUS_COMPLETED, run.getStatus(), () -> p.ran + " " + cairn.getRun(started.getRunId()));
    assertEquals(2, run.getAttemptCount());
    assertEquals("[\"draft\",\"review\",\"publish\"]", WorkerTest.output(run).get("log").toString());
    var failed = cairn.getRun(started.getRunId()).getAttempts(0);
    assertEquals(RunStatus.RUN_STATUS_FAILED, failed.getStatus());
    assertEquals("dev.cairn.saa.NodeTimeoutException", failed.getError().getType());
    assertTrue(failed.getError().getRetryable());
  }
}
