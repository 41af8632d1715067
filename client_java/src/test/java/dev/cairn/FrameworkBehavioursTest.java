package dev.cairn;

import static com.alibaba.cloud.ai.graph.StateGraph.END;
import static com.alibaba.cloud.ai.graph.StateGraph.START;
import static com.alibaba.cloud.ai.graph.action.AsyncEdgeAction.edge_async;
import static com.alibaba.cloud.ai.graph.action.AsyncNodeAction.node_async;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.alibaba.cloud.ai.graph.CompileConfig;
import com.alibaba.cloud.ai.graph.CompiledGraph;
import com.alibaba.cloud.ai.graph.KeyStrategy;
import com.alibaba.cloud.ai.graph.OverAllState;
import com.alibaba.cloud.ai.graph.RunnableConfig;
import com.alibaba.cloud.ai.graph.StateGraph;
import com.alibaba.cloud.ai.graph.checkpoint.BaseCheckpointSaver;
import com.alibaba.cloud.ai.graph.checkpoint.Checkpoint;
import com.alibaba.cloud.ai.graph.checkpoint.config.SaverConfig;
import com.alibaba.cloud.ai.graph.checkpoint.savers.MemorySaver;
import com.alibaba.cloud.ai.graph.state.StateSnapshot;
import com.alibaba.cloud.ai.graph.state.strategy.AppendStrategy;
import com.alibaba.cloud.ai.graph.state.strategy.ReplaceStrategy;
import dev.cairn.saa.CairnSaver;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The saver behaviours that Spring AI Alibaba graph-core 1.1.2.2's own tests check
 * ({@code StateGraphMemorySaverTest}, {@code TimeTravelTest}; their code is not on Maven Central, see
 * README), each scenario run on the framework's {@link MemorySaver} and on {@link CairnSaver}: the
 * outcome, written as a list of plain values, must be the same. Checkpoints are compared by value (id,
 * node, next node, state): the framework's {@code Checkpoint} has no {@code equals}, and only savers
 * that keep the stored Java objects in memory give back the same instances (see README).
 */
class FrameworkBehavioursTest extends LiveServerTest {

  interface Scenario {
    List<Object> run(BaseCheckpointSaver saver, String thread) throws Exception;
  }

  /** Runs the scenario on MemorySaver and on CairnSaver; returns the common outcome. */
  static List<Object> onBoth(String name, Scenario scenario) throws Exception {
    List<Object> reference = scenario.run(new MemorySaver(), TestServer.threadId(name));
    List<Object> cairnOutcome = scenario.run(new CairnSaver(cairn), TestServer.threadId(name));
    assertEquals(reference, cairnOutcome, name + ": CairnSaver differs from MemorySaver");
    return cairnOutcome;
  }

  static CompiledGraph compile(StateGraph graph, BaseCheckpointSaver saver, String... interruptBefore) throws Exception {
    return graph.compile(CompileConfig.builder()
        .saverConfig(SaverConfig.builder().register(saver).build())
        .interruptBefore(interruptBefore)
        .build());
  }

  static List<Object> value(Checkpoint c) {
    return List.of(c.getNodeId(), String.valueOf(c.getNextNodeId()), c.getState());
  }

  /** A state's data without the per-run execution id the graph adds (random, so never the same twice). */
  static Map<String, Object> data(Map<String, Object> data) {
    Map<String, Object> out = new java.util.TreeMap<>(data);
    out.remove("_graph_execution_id_");
    return out;
  }

  static RunnableConfig config(String thread) {
    return RunnableConfig.builder().threadId(thread).build();
  }

  /** node1 sets k1, node2 sets k2. */
  static StateGraph twoSteps() throws Exception {
    Map<String, KeyStrategy> keys = Map.of("k1", new ReplaceStrategy(), "k2", new ReplaceStrategy());
    return new StateGraph(() -> keys)
        .addNode("node1", node_async(s -> Map.of("k1", "v1")))
        .addNode("node2", node_async(s -> Map.of("k2", "v2")))
        .addEdge(START, "node1")
        .addEdge("node1", "node2")
        .addEdge("node2", END);
  }

  /** agent asks the tool once, then answers; messages append. */
  static StateGraph agentWithTool() throws Exception {
    Map<String, KeyStrategy> keys = Map.of("messages", new AppendStrategy());
    return new StateGraph(() -> keys)
        .addNode("agent", node_async(s -> {
          List<?> messages = (List<?>) s.value("messages").orElseThrow();
          String last = String.valueOf(messages.get(messages.size() - 1));
          if (last.startsWith("tool:")) return Map.of("messages", "answer from " + last);
          if (last.startsWith("ask ")) return Map.of("messages", "call tool");
          return Map.of("messages", "hello " + last);
        }))
        .addNode("tools", node_async(s -> Map.of("messages", "tool: sunny")))
        .addEdge(START, "agent")
        .addConditionalEdges("agent", edge_async(s -> {
          List<?> messages = (List<?>) s.value("messages").orElseThrow();
          return "call tool".equals(messages.get(messages.size() - 1)) ? "tools" : END;
        }), Map.of("tools", "tools", END, END))
        .addEdge("tools", "agent");
  }

  // StateGraphMemorySaverTest.testCheckpointInitialState: a stored checkpoint does not override the inputs
  // of a new run, but adds its other keys; get is the last put; release returns the listed checkpoints and
  // empties the thread.
  @Test
  void storedCheckpointsAndInitialState() throws Exception {
    onBoth("saa-initial", (saver, thread) -> {
      List<Object> out = new ArrayList<>();
      RunnableConfig config = config(thread);
      CompiledGraph app = compile(twoSteps(), saver);
      Map<String, Object> inputs = Map.of("input", "fresh");
      out.add(app.getInitialState(inputs, config));
      saver.put(config, Checkpoint.builder().state(Map.of("input", "stored")).nodeId(START).nextNodeId("node1").build());
      out.add(compile(twoSteps(), saver).getInitialState(inputs, config));
      saver.put(config, Checkpoint.builder().state(Map.of("input", "stored", "k1", "v1")).nodeId("node1")
          .nextNodeId("node2").build());
      out.add(compile(twoSteps(), saver).getInitialState(inputs, config));
      Collection<Checkpoint> listed = saver.list(config);
      out.add(listed.stream().map(FrameworkBehavioursTest::value).toList());
      out.add(value(saver.get(config).orElseThrow()));
      BaseCheckpointSaver.Tag tag = saver.release(config);
      List<String> listedIds = listed.stream().map(Checkpoint::getId).toList();
      out.add(listedIds.equals(tag.checkpoints().stream().map(Checkpoint::getId).toList()));
      out.add(tag.checkpoints().stream().map(FrameworkBehavioursTest::value).toList());
      out.add(saver.list(config).isEmpty());
      return out;
    });
  }

  // Why testCheckpointInitialState's assertIterableEquals(list, release().checkpoints()) holds only for
  // in-memory savers: Checkpoint has no equals(), MemorySaver (and FileSystemSaver, PostgresSaver, which
  // extend it) hand back the instances they hold, while a saver that reads its store on every call
  // (RedisSaver, CairnSaver) returns new, equal ones.
  @Test
  void onlyInMemorySaversGiveBackTheStoredInstances() throws Exception {
    for (BaseCheckpointSaver saver : List.of(new MemorySaver(), new CairnSaver(cairn))) {
      RunnableConfig config = config(TestServer.threadId("saa-identity"));
      saver.put(config, Checkpoint.builder().state(Map.of("k1", "v1")).nodeId(START).nextNodeId("node1").build());
      Checkpoint listed = saver.list(config).iterator().next();
      Checkpoint released = saver.release(config).checkpoints().iterator().next();
      assertEquals(value(listed), value(released));
      assertEquals(listed.getId(), released.getId());
      if (saver instanceof MemorySaver) {
        assertSame(listed, released);
      } else {
        assertNotSame(listed, released);
      }
    }
  }

  // StateGraphMemorySaverTest.testViewAndUpdatePastGraphState: the history of a finished run, and a
  // past state updated and replayed takes the other branch.
  @Test
  void viewAndUpdatePastState() throws Exception {
    List<Object> outcome = onBoth("saa-past", (saver, thread) -> {
      List<Object> out = new ArrayList<>();
      RunnableConfig config = config(thread);
      CompiledGraph app = compile(agentWithTool(), saver);
      OverAllState done = app.invoke(Map.of("messages", "ask weather"), config).orElseThrow();
      out.add(done.value("messages").orElseThrow());
      out.add(app.getState(config).next());
      List<StateSnapshot> history = new ArrayList<>(app.getStateHistory(config));
      out.add(history.size());
      out.add(history.stream().map(s -> s.node() + "->" + s.next()).toList());
      StateSnapshot first = history.get(history.size() - 1);
      RunnableConfig updated = app.updateState(first.config(), Map.of("messages", "i am bob"));
      OverAllState replayed = app.invoke(Map.of(), RunnableConfig.builder(updated).threadId(thread).resume().build())
          .orElseThrow();
      out.add(replayed.value("messages").orElseThrow());
      return out;
    });
    assertEquals(List.of("ask weather", "call tool", "tool: sunny", "answer from tool: sunny"), outcome.get(0));
    assertEquals(END, outcome.get(1));
  }

  // StateGraphMemorySaverTest.testPauseAndUpdatePastGraphState: interrupted before a node, the state says
  // what is next, and a resume finishes the run.
  @Test
  void pauseAndResume() throws Exception {
    onBoth("saa-pause", (saver, thread) -> {
      List<Object> out = new ArrayList<>();
      RunnableConfig config = config(thread);
      CompiledGraph app = compile(agentWithTool(), saver, "tools");
      out.add(app.invoke(Map.of("messages", "ask weather"), config).map(s -> s.value("messages").orElseThrow()));
      out.add(app.getState(config).next());
      OverAllState done = app.invoke(Map.of(), RunnableConfig.builder(config).resume().build()).orElseThrow();
      out.add(done.value("messages").orElseThrow());
      return out;
    });
  }

  // StateGraphMemorySaverTest.testCheckpointSaverResubmit: a looping run per thread, threads apart, and a
  // thread invoked again continues from its last state.
  @Test
  void threadsAndResubmit() throws Exception {
    onBoth("saa-resubmit", (saver, thread) -> {
      Map<String, KeyStrategy> keys = Map.of("steps", new ReplaceStrategy(), "messages", new AppendStrategy());
      StateGraph graph = new StateGraph(() -> keys)
          .addNode("agent", node_async(s -> {
            int steps = ((Number) s.value("steps").orElseThrow()).intValue() + 1;
            return Map.of("steps", steps, "messages", "step " + steps);
          }))
          .addEdge(START, "agent")
          .addConditionalEdges("agent",
              edge_async(s -> ((Number) s.value("steps").orElseThrow()).intValue() >= 3 ? "exit" : "next"),
              Map.of("next", "agent", "exit", END));
      CompiledGraph app = compile(graph, saver);
      List<Object> out = new ArrayList<>();
      for (String t : List.of(thread + "-1", thread + "-2")) {
        out.add(data(app.invoke(Map.of("steps", 0), config(t)).orElseThrow().data()));
      }
      out.add(data(app.invoke(Map.of(), config(thread + "-2")).orElseThrow().data()));
      out.add(saver.list(config(thread + "-1")).size());
      return out;
    });
  }

  // TimeTravelTest: resuming from a past checkpoint (twice, and from different ones) runs the rest of the
  // graph again, and each past state holds what had been set by then.
  @Test
  void timeTravel() throws Exception {
    List<Object> outcome = onBoth("saa-travel", (saver, thread) -> {
      List<Object> out = new ArrayList<>();
      RunnableConfig config = config(thread);
      CompiledGraph app = compile(twoSteps(), saver);
      out.add(data(app.invoke(Map.of(), config).orElseThrow().data()));
      List<StateSnapshot> history = new ArrayList<>(app.getStateHistory(config));
      out.add(history.stream().map(s -> s.node() + ":" + data(s.state().data())).toList());
      for (String node : List.of("node1", "node1", START)) {
        StateSnapshot past = history.stream().filter(s -> node.equals(s.node())).findFirst().orElseThrow();
        RunnableConfig from = RunnableConfig.builder().threadId(thread)
            .checkPointId(past.config().checkPointId().orElseThrow()).build();
        out.add(data(app.invoke(Map.of(), from).orElseThrow().data()));
      }
      return out;
    });
    assertEquals(Map.of("k1", "v1", "k2", "v2"), outcome.get(0));
    for (int i = 2; i < outcome.size(); i++) {
      assertTrue(((Map<?, ?>) outcome.get(i)).entrySet().containsAll(Map.of("k1", "v1", "k2", "v2").entrySet()));
    }
  }
}
