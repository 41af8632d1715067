package dev.cairn;

import static com.alibaba.cloud.ai.graph.StateGraph.END;
import static com.alibaba.cloud.ai.graph.StateGraph.START;
import static com.alibaba.cloud.ai.graph.action.AsyncNodeAction.node_async;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.alibaba.cloud.ai.graph.CompileConfig;
import com.alibaba.cloud.ai.graph.CompiledGraph;
import com.alibaba.cloud.ai.graph.KeyStrategy;
import com.alibaba.cloud.ai.graph.OverAllState;
import com.alibaba.cloud.ai.graph.RunnableConfig;
import com.alibaba.cloud.ai.graph.StateGraph;
import com.alibaba.cloud.ai.graph.checkpoint.Checkpoint;
import com.alibaba.cloud.ai.graph.checkpoint.config.SaverConfig;
import com.alibaba.cloud.ai.graph.state.strategy.AppendStrategy;
import com.alibaba.cloud.ai.graph.state.strategy.ReplaceStrategy;
import dev.cairn.client.CairnClient;
import dev.cairn.saa.CairnSaver;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** A compiled StateGraph interrupted before a node and resumed, in a fresh "process", through Cairn. */
class GraphResumeTest {

  /** Counts how often each node ran, across both "processes". */
  final Map<String, AtomicInteger> runs = Map.of(
      "draft", new AtomicInteger(), "approve", new AtomicInteger(), "publish", new AtomicInteger());

  CompiledGraph compile(CairnSaver saver) throws Exception {
    Map<String, KeyStrategy> keys = Map.of("log", new AppendStrategy(), "text", new ReplaceStrategy());
    StateGraph graph = new StateGraph("review", () -> keys)
        .addNode("draft", node_async(s -> step("draft", Map.of("text", "draft of " + s.value("topic").orElse("?")))))
        .addNode("approve", node_async(s -> step("approve", Map.of())))
        .addNode("publish", node_async(s -> step("publish", Map.of("text", "published: " + s.value("text").orElseThrow()))))
        .addEdge(START, "draft")
        .addEdge("draft", "approve")
        .addEdge("approve", "publish")
        .addEdge("publish", END);
    return graph.compile(CompileConfig.builder()
        .saverConfig(SaverConfig.builder().register(saver).build())
        .interruptBefore("approve")
        .build());
  }

  Map<String, Object> step(String node, Map<String, Object> update) {
    runs.get(node).incrementAndGet();
    Map<String, Object> out = new HashMap<>(update);
    out.put("log", List.of(node));
    return out;
  }

  @Test
  void interruptedGraphResumesFromCairn() throws Exception {
    String thread = TestServer.threadId("graph");
    RunnableConfig config = RunnableConfig.builder().threadId(thread).build();

    // Process 1: runs until the interrupt before "approve".
    try (CairnClient client = TestServer.client()) {
      CompiledGraph graph = compile(new CairnSaver(client));
      graph.invoke(Map.of("topic", "cairn"), config);
      Checkpoint head = new CairnSaver(client).get(config).orElseThrow();
      assertEquals("draft", head.getNodeId());
      assertEquals("approve", head.getNextNodeId());
      assertEquals("draft of cairn", head.getState().get("text"));
      dev.cairn.v1.Checkpoint stored = client.load(thread).getCheckpoint();
      assertEquals("draft", stored.getNodeName());
      assertEquals(List.of("approve"), stored.getNextNodesList());
    }
    assertEquals(0, runs.get("approve").get());

    // Process 2: a new client, saver and compiled graph resume the thread from Cairn.
    try (CairnClient client = TestServer.client()) {
      CairnSaver saver = new CairnSaver(client);
      CompiledGraph graph = compile(saver);
      OverAllState done = graph.invoke(Map.of(), RunnableConfig.builder().threadId(thread).resume().build())
          .orElseThrow();
      assertEquals("published: draft of cairn", done.value("text").orElseThrow());
      assertEquals(List.of("draft", "approve", "publish"), done.value("log").orElseThrow());
      assertEquals("publish", saver.get(config).orElseThrow().getNodeId());
      assertEquals(graph.getStateHistory(config).size(), saver.list(config).size());
    }
    assertEquals(1, runs.get("draft").get(), "draft is not re-run on resume");
    assertEquals(1, runs.get("approve").get());
    assertEquals(1, runs.get("publish").get());
  }
}
