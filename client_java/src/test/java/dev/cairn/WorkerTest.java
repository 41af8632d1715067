package dev.cairn;

import static com.alibaba.cloud.ai.graph.StateGraph.END;
import static com.alibaba.cloud.ai.graph.StateGraph.START;
import static com.alibaba.cloud.ai.graph.action.AsyncNodeAction.node_async;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.alibaba.cloud.ai.graph.CompileConfig;
import com.alibaba.cloud.ai.graph.CompiledGraph;
import com.alibaba.cloud.ai.graph.KeyStrategy;
import com.alibaba.cloud.ai.graph.StateGraph;
import com.alibaba.cloud.ai.graph.checkpoint.config.SaverConfig;
import com.alibaba.cloud.ai.graph.state.strategy.AppendStrategy;
import com.alibaba.cloud.ai.graph.state.strategy.ReplaceStrategy;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cairn.saa.CairnSaver;
import dev.cairn.saa.Worker;
import dev.cairn.v1.ClaimRunResponse;
import dev.cairn.v1.Run;
import dev.cairn.v1.RunStatus;
import dev.cairn.v1.StartRunRequest;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
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
 * The durable-runs Worker over a compiled Spring AI Alibaba graph and CairnSaver, against a real server: it
 * completes a run; a cancel is seen within a heartbeat and the graph ends at its next checkpoint; a worker
 * that lost its lease has its next save refused (LEASE_LOST); an interrupt ends the run INTERRUPTED and a
 * command resumes it; and a run started from TypeScript (client_ts/scripts/runs-peer.mjs) is executed here.
 */
class WorkerTest extends LiveServerTest {
  static final ObjectMapper JSON = new ObjectMapper();

  /** draft -> review -> publish; a hook runs first in its node; ran counts node executions. */
  static final class Pipeline {
    final Map<String, AtomicInteger> ran = new ConcurrentHashMap<>();
    final Map<String, Runnable> hooks = new HashMap<>();

    CompiledGraph compile(String... interruptBefore) throws Exception {
      Map<String, KeyStrategy> keys = Map.of("log", new AppendStrategy(), "topic", new ReplaceStrategy(),
          "approved", new ReplaceStrategy());
      StateGraph graph = new StateGraph("pipeline", () -> keys)
          .addNode("draft", node_async(s -> step("draft")))
          .addNode("review", node_async(s -> step("review")))
          .addNode("publish", node_async(s -> step("publish")))
          .addEdge(START, "draft")
          .addEdge("draft", "review")
          .addEdge("review", "publish")
          .addEdge("publish", END);
      return graph.compile(CompileConfig.builder()
          .saverConfig(SaverConfig.builder().register(new CairnSaver(cairn)).build())
          .interruptBefore(interruptBefore)
          .build());
    }

    Map<String, Object> step(String node) {
      Runnable hook = hooks.get(node);
      if (hook != null) {
        hook.run();
      }
      ran.computeIfAbsent(node, k -> new AtomicInteger()).incrementAndGet();
      return Map.of("log", List.of(node));
    }

    int count(String node) {
      AtomicInteger n = ran.get(node);
      return n == null ? 0 : n.get();
    }
  }

  static String queue() {
    return "java-saa-" + UUID.randomUUID();
  }

  static JsonNode output(Run run) throws IOException {
    return JSON.readTree(run.getOutput().toByteArray());
  }

  static void await(CountDownLatch latch) {
    try {
      assertTrue(latch.await(30, TimeUnit.SECONDS), "timed out");
    } catch (InterruptedException e) {
      throw new IllegalStateException(e);
    }
  }

  @Test
  void completesRun() throws Exception {
    String queue = queue();
    Pipeline p = new Pipeline();
    Worker worker = Worker.builder(cairn, queue, p.compile()).workerId("java-w").waitTime(Duration.ofSeconds(5)).build();
    Run started = cairn.startRun(TestServer.threadId("java-saa"), queue, "{\"topic\":\"cairn\"}");
    Run run = worker.runOnce().orElseThrow();
    assertEquals(started.getRunId(), run.getRunId());
    assertEquals(RunStatus.RUN_STATUS_COMPLETED, run.getStatus());
    assertEquals("[\"draft\",\"review\",\"publish\"]", output(run).get("log").toString());
    assertEquals("cairn", output(run).get("topic").asText());
    dev.cairn.v1.Checkpoint head = cairn.load(started.getThreadId()).getCheckpoint();
    assertEquals(head.getCheckpointId(), run.getCheckpointId());
    assertEquals(started.getRunId(), head.getMetadata().getFieldsOrThrow("run_id").getStringValue());
    assertEquals("java-w", cairn.getRun(run.getRunId()).getAttempts(0).getWorkerId());
  }

  @Test
  void cancelIsSeenWithinAHeartbeatAndEndsTheGraphAtItsNextCheckpoint() throws Exception {
    String queue = queue();
    Pipeline p = new Pipeline();
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    p.hooks.put("review", () -> {
      entered.countDown();
      await(release);
    });
    Worker worker = Worker.builder(cairn, queue, p.compile()).lease(Duration.ofSeconds(3))
        .heartbeat(Duration.ofMillis(200)).waitTime(Duration.ofSeconds(5)).build();
    Run started = cairn.startRun(TestServer.threadId("java-saa-cancel"), queue, "{}");
    CompletableFuture<Optional<Run>> running = CompletableFuture.supplyAsync(worker::runOnce);
    await(entered);
    Instant cancelled = Instant.now();
    cairn.cancelRun(started.getRunId());
    while (cairn.getRun(started.getRunId()).getStatus() != RunStatus.RUN_STATUS_CANCELLED) {
      assertTrue(Duration.between(cancelled, Instant.now()).toMillis() < 5000, "the cancel was not seen");
      Thread.sleep(50);
    }
    release.countDown(); // review ends; its checkpoint is not written and publish does not run
    Run run = running.get(30, TimeUnit.SECONDS).orElseThrow();
    assertEquals(RunStatus.RUN_STATUS_CANCELLED, run.getStatus());
    assertEquals("RUN_CANCELLED", worker.lastStopReason());
    assertEquals(0, p.count("publish"));
    assertEquals("draft", cairn.load(started.getThreadId()).getCheckpoint().getNodeName());
  }

  @Test
  void executionTimeoutStopsTheRunAtItsNextCheckpoint() throws Exception {
    String queue = queue();
    Pipeline p = new Pipeline();
    CountDownLatch release = new CountDownLatch(1);
    p.hooks.put("review", () -> await(release));
    Worker worker = Worker.builder(cairn, queue, p.compile()).lease(Duration.ofSeconds(3))
        .heartbeat(Duration.ofMillis(200)).waitTime(Duration.ofSeconds(5)).build();
    Run started = cairn.startRun(StartRunRequest.newBuilder().setThreadId(TestServer.threadId("java-saa-timeout"))
        .setQueue(queue).setExecutionTimeoutMs(1500).build());
    CompletableFuture<Optional<Run>> running = CompletableFuture.supplyAsync(worker::runOnce);
    Instant start = Instant.now();
    while (cairn.getRun(started.getRunId()).getStatus() != RunStatus.RUN_STATUS_FAILED) {
      assertTrue(Duration.between(start, Instant.now()).toSeconds() < 20, "the timeout was not seen");
      Thread.sleep(100);
    }
    release.countDown();
    Run run = running.get(30, TimeUnit.SECONDS).orElseThrow();
    assertEquals(RunStatus.RUN_STATUS_FAILED, run.getStatus());
    assertEquals("EXECUTION_TIMEOUT", run.getError().getReason());
    assertEquals("RUN_TIMED_OUT", worker.lastStopReason());
    assertEquals(0, p.count("publish"));
  }

  @Test
  void workerThatLostItsLeaseWritesNothingMore() throws Exception {
    String queue = queue();
    Pipeline p = new Pipeline();
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch taken = new CountDownLatch(1);
    p.hooks.put("review", () -> {
      entered.countDown();
      await(taken); // a paused process: no heartbeat, the lease of 1 s runs out
    });
    Worker zombie = Worker.builder(cairn, queue, p.compile()).workerId("zombie").lease(Duration.ofSeconds(1))
        .heartbeat(Duration.ofHours(1)).waitTime(Duration.ofSeconds(5)).build();
    Run started = cairn.startRun(TestServer.threadId("java-saa-zombie"), queue, "{}");
    CompletableFuture<Optional<Run>> running = CompletableFuture.supplyAsync(zombie::runOnce);
    await(entered);
    Optional<ClaimRunResponse> taker = Optional.empty();
    for (Instant deadline = Instant.now().plusSeconds(15); taker.isEmpty() && Instant.now().isBefore(deadline); ) {
      taker = cairn.claimRun(queue, "taker", Duration.ofSeconds(30), Duration.ofSeconds(2));
    }
    assertTrue(taker.orElseThrow().getRecovered());
    taken.countDown();
    Run run = running.get(30, TimeUnit.SECONDS).orElseThrow();
    assertEquals("LEASE_LOST", zombie.lastStopReason());
    assertEquals(RunStatus.RUN_STATUS_RUNNING, run.getStatus());
    assertEquals("taker", run.getWorkerId());
    assertEquals(0, p.count("publish"));
    assertEquals("draft", cairn.load(started.getThreadId()).getCheckpoint().getNodeName());
  }

  @Test
  void interruptEndsRunInterruptedAndACommandResumesIt() throws Exception {
    String queue = queue();
    Pipeline p = new Pipeline();
    Worker worker = Worker.builder(cairn, queue, p.compile("publish")).waitTime(Duration.ofSeconds(5)).build();
    String thread = TestServer.threadId("java-saa-interrupt");
    cairn.startRun(thread, queue, "{\"topic\":\"x\"}");
    Run paused = worker.runOnce().orElseThrow();
    assertEquals(RunStatus.RUN_STATUS_INTERRUPTED, paused.getStatus());
    assertEquals("[{\"node\":\"publish\"}]", output(paused).toString());
    cairn.startRun(thread, queue, "{\"__command__\":{\"update\":{\"approved\":true}}}");
    Run done = worker.runOnce().orElseThrow();
    assertEquals(RunStatus.RUN_STATUS_COMPLETED, done.getStatus());
    assertTrue(output(done).get("approved").asBoolean());
    assertEquals("[\"draft\",\"review\",\"publish\"]", output(done).get("log").toString());
    assertEquals(1, p.count("draft"));
  }

  /** Runs client_ts/scripts/runs-peer.mjs (the TypeScript client, built by run_tests.sh) and parses its line. */
  static JsonNode tsPeer(String... args) throws Exception {
    List<String> cmd = new ArrayList<>(List.of("node",
        TestServer.repoRoot().resolve("client_ts/scripts/runs-peer.mjs").toString()));
    cmd.addAll(List.of(args));
    cmd.addAll(List.of("--target", TestServer.target()));
    Process proc = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    String out = new String(proc.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    if (!proc.waitFor(60, TimeUnit.SECONDS) || proc.exitValue() != 0) {
      throw new IllegalStateException("runs-peer.mjs " + String.join(" ", args) + " failed: " + out
          + " (build the TypeScript client first: cd client_ts && npm ci && npm run build)");
    }
    return JSON.readTree(out);
  }

  @Test
  void runStartedFromTypeScriptIsExecutedByTheJavaWorker() throws Exception {
    String queue = "xlang-ts-java-" + UUID.randomUUID();
    String thread = TestServer.threadId("xlang-ts-java");
    JsonNode started = tsPeer("start", "--thread", thread, "--queue", queue, "--input", "{\"topic\":\"typescript\"}");
    assertEquals("PENDING", started.get("status").asText());
    Pipeline p = new Pipeline();
    Worker worker = Worker.builder(cairn, queue, p.compile()).workerId("java-xlang").waitTime(Duration.ofSeconds(5)).build();
    Run run = worker.runOnce().orElseThrow();
    assertEquals(started.get("run_id").asText(), run.getRunId());
    assertEquals("typescript", run.getMetadata().getFieldsOrThrow("started_by").getStringValue());
    JsonNode got = tsPeer("get", "--run", run.getRunId());
    assertEquals("COMPLETED", got.get("status").asText());
    assertEquals("typescript", got.get("output").get("topic").asText());
    assertEquals("[\"draft\",\"review\",\"publish\"]", got.get("output").get("log").toString());
    assertEquals("[\"java-xlang\"]", got.get("worker_ids").toString());
    assertEquals(run.getCheckpointId(), got.get("checkpoint_id").asText());
  }
}
