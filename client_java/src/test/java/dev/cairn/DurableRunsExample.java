package dev.cairn;

import static com.alibaba.cloud.ai.graph.StateGraph.END;
import static com.alibaba.cloud.ai.graph.StateGraph.START;
import static com.alibaba.cloud.ai.graph.action.AsyncNodeAction.node_async;

import com.alibaba.cloud.ai.graph.CompileConfig;
import com.alibaba.cloud.ai.graph.CompiledGraph;
import com.alibaba.cloud.ai.graph.KeyStrategy;
import com.alibaba.cloud.ai.graph.StateGraph;
import com.alibaba.cloud.ai.graph.checkpoint.config.SaverConfig;
import com.alibaba.cloud.ai.graph.state.strategy.ReplaceStrategy;
import dev.cairn.client.CairnClient;
import dev.cairn.client.RunStoppedException;
import dev.cairn.saa.CairnSaver;
import dev.cairn.saa.Worker;
import dev.cairn.v1.ListRunsRequest;
import dev.cairn.v1.RetryPolicy;
import dev.cairn.v1.Run;
import dev.cairn.v1.RunLease;
import dev.cairn.v1.RunStatus;
import dev.cairn.v1.StartRunRequest;
import com.google.protobuf.ByteString;
import java.time.Duration;
import java.util.Map;

/** The "Durable runs" example of README.md (DurableRunsExampleTest runs it against the test server). */
public class DurableRunsExample {
  public static void main(String[] args) throws Exception {
    String target = args.length > 0 ? args[0] : "localhost:50051";
    try (CairnClient client = CairnClient.builder().target(target).build()) {
      // A Spring AI Alibaba graph that checkpoints into Cairn.
      Map<String, KeyStrategy> keys = Map.of("name", new ReplaceStrategy(), "greeting", new ReplaceStrategy());
      CompiledGraph graph = new StateGraph("greeter", () -> keys)
          .addNode("greet", node_async(s -> Map.of("greeting", "hello " + s.value("name").orElse("?"))))
          .addEdge(START, "greet")
          .addEdge("greet", END)
          .compile(CompileConfig.builder()
              .saverConfig(SaverConfig.builder().register(new CairnSaver(client)).build()).build());

      // Queue a run (from any language), then execute it; a worker process would call worker.run() instead.
      String thread = "greet-" + System.nanoTime();
      Run started = client.startRun(StartRunRequest.newBuilder().setThreadId(thread).setQueue("greetings")
          .setInput(ByteString.copyFromUtf8("{\"name\":\"cairn\"}")).setInputType("json")
          .setRetryPolicy(RetryPolicy.newBuilder().setMaxAttempts(3)).build());
      Worker worker = Worker.builder(client, "greetings", graph).lease(Duration.ofSeconds(10)).build();
      Run run = worker.runOnce().orElseThrow(); // claims, heartbeats, saves under the lease, completes
      System.out.println(run.getStatus() + " " + run.getOutput().toStringUtf8());
      // RUN_STATUS_COMPLETED {"name":"cairn","greeting":"hello cairn"}

      for (Run r : client.listAllRuns(ListRunsRequest.newBuilder().setThreadId(thread)
          .addStatuses(RunStatus.RUN_STATUS_COMPLETED).build())) {
        System.out.println(r.getRunId().equals(started.getRunId())); // true
      }
      // A cancelled run stops at its worker's next heartbeat or save; a worker that lost its lease gets
      // RunStoppedException (reason LEASE_LOST, RUN_CANCELLED or RUN_TIMED_OUT).
      Run again = client.startRun(thread, "greetings", "{\"name\":\"again\"}");
      System.out.println(client.cancelRun(again.getRunId()).getStatus()); // RUN_STATUS_CANCELLED
      try {
        client.heartbeat(RunLease.newBuilder().setRunId(again.getRunId()).setEpoch(1).setToken("stale").build());
      } catch (RunStoppedException e) {
        System.out.println(e.reason()); // LEASE_LOST
      }
    }
  }
}
