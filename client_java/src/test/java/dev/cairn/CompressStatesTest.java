package dev.cairn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.alibaba.cloud.ai.graph.RunnableConfig;
import com.alibaba.cloud.ai.graph.checkpoint.Checkpoint;
import com.google.protobuf.ByteString;
import dev.cairn.client.CairnClient;
import dev.cairn.client.DataLossException;
import dev.cairn.saa.CairnSaver;
import dev.cairn.v1.BatchLoadRequest;
import dev.cairn.v1.BatchLoadResponse;
import dev.cairn.v1.BatchLoadResult;
import dev.cairn.v1.ListRequest;
import dev.cairn.v1.ListResponse;
import dev.cairn.v1.LoadRequest;
import dev.cairn.v1.LoadResponse;
import dev.cairn.v1.SaveRequest;
import dev.cairn.v1.SaveResponse;
import dev.cairn.v1.SaveStreamRequest;
import dev.cairn.v1.SaveStreamResponse;
import dev.cairn.v1.StateEncoding;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code compressStates(true)} against a real server: states go out as zstd once the server said it
 * accepts them, reads ask for zstd, and every client reads back exactly the bytes saved. Assumes a
 * server without a zstd dictionary or encryption (as the Python harness, cairn_tools.cluster, starts it), which
 * sends a compressible state as its stored frame when asked.
 */
class CompressStatesTest {
  static final StateEncoding ZSTD = StateEncoding.STATE_ENCODING_ZSTD;
  static final StateEncoding IDENTITY = StateEncoding.STATE_ENCODING_UNSPECIFIED;
  static final List<ByteString> STATES = IntStream.range(0, 6)
      .mapToObj(i -> ByteString.copyFrom(TestStates.compressible(37_000, i))).toList();

  static CairnClient plain;

  @BeforeAll
  static void connect() {
    plain = TestServer.client();
  }

  @AfterAll
  static void close() {
    plain.close();
  }

  /** What goes over the wire: state_encoding of each checkpoint sent and received, accept lists of reads. */
  static final class Recorder implements ClientInterceptor {
    final List<StateEncoding> sent = new CopyOnWriteArrayList<>();
    final List<StateEncoding> received = new CopyOnWriteArrayList<>();
    final List<List<StateEncoding>> accepted = new CopyOnWriteArrayList<>();

    @Override
    public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
        MethodDescriptor<ReqT, RespT> method, CallOptions options, Channel next) {
      return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
        @Override
        public void start(Listener<RespT> listener, Metadata headers) {
          super.start(new ForwardingClientCallListener.SimpleForwardingClientCallListener<>(listener) {
            @Override
            public void onMessage(RespT message) {
              record(message);
              super.onMessage(message);
            }
          }, headers);
        }

        @Override
        public void sendMessage(ReqT message) {
          record(message);
          super.sendMessage(message);
        }
      };
    }

    void record(Object m) {
      if (m instanceof SaveRequest r) {
        sent.add(r.getCheckpoint().getStateEncoding());
      } else if (m instanceof SaveStreamRequest r) {
        sent.add(r.getSave().getCheckpoint().getStateEncoding());
      } else if (m instanceof LoadRequest r) {
        accepted.add(r.getAcceptStateEncodingsList());
      } else if (m instanceof BatchLoadRequest r) {
        r.getLoadsList().forEach(l -> accepted.add(l.getAcceptStateEncodingsList()));
      } else if (m instanceof ListRequest r) {
        accepted.add(r.getAcceptStateEncodingsList());
      } else if (m instanceof LoadResponse r) {
        received.add(r.getCheckpoint().getStateEncoding());
      } else if (m instanceof BatchLoadResponse r) {
        r.getResultsList().stream().filter(BatchLoadResult::hasLoad)
            .forEach(x -> received.add(x.getLoad().getCheckpoint().getStateEncoding()));
      } else if (m instanceof ListResponse r) {
        r.getCheckpointsList().forEach(c -> received.add(c.getStateEncoding()));
      }
    }
  }

  /** A fresh compressing client on a channel of its own that records what it sends and receives. */
  record Recorded(CairnClient client, Recorder wire, ManagedChannel channel) implements AutoCloseable {
    static Recorded open() {
      Recorder wire = new Recorder();
      ManagedChannel channel = Grpc.newChannelBuilder(TestServer.target(), InsecureChannelCredentials.create())
          .intercept(wire).build();
      CairnClient client = CairnClient.builder().channel(channel).token(System.getenv("CAIRN_TOKEN"))
          .compressStates(true).build();
      return new Recorded(client, wire, channel);
    }

    @Override
    public void close() throws InterruptedException {
      client.close();
      channel.shutdown().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  static dev.cairn.v1.Checkpoint cp(String thread, ByteString state, String parent) {
    return dev.cairn.v1.Checkpoint.newBuilder().setThreadId(thread).setState(state).setStateType("json")
        .setParentCheckpointId(parent).build();
  }

  static List<ByteString> states(List<dev.cairn.v1.Checkpoint> checkpoints) {
    checkpoints.forEach(c -> assertEquals(IDENTITY, c.getStateEncoding(), "the caller gets the raw state"));
    return checkpoints.stream().map(dev.cairn.v1.Checkpoint::getState).toList();
  }

  static List<ByteString> reversed(List<ByteString> states) {
    List<ByteString> out = new ArrayList<>(states);
    Collections.reverse(out);
    return out;
  }

  @Test
  void aCompressingClientRoundTripsEveryReadPath() throws Exception {
    String thread = TestServer.threadId("zstd");
    List<String> ids = new ArrayList<>();
    try (Recorded c = Recorded.open()) {
      SaveResponse first = c.client().save(cp(thread, STATES.get(0), ""));
      assertEquals(List.of(ZSTD), first.getAcceptedStateEncodingsList(), "the server accepts zstd states");
      ids.add(first.getCheckpointId());
      for (ByteString state : STATES.subList(1, STATES.size())) {
        SaveResponse saved = c.client().save(cp(thread, state, ids.get(ids.size() - 1)));
        assertTrue(saved.getStoredSizeBytes() < state.size(), "stored as the client's frame");
        ids.add(saved.getCheckpointId());
      }
      List<StateEncoding> later = Collections.nCopies(STATES.size() - 1, ZSTD);
      assertEquals(IDENTITY, c.wire().sent.get(0), "the first save goes as is: the server had not said yet");
      assertEquals(later, c.wire().sent.subList(1, STATES.size()), "later saves go compressed");

      c.client().save(cp(TestServer.threadId("zstd-small"), ByteString.copyFromUtf8("{\"small\":true}"), ""));
      assertEquals(IDENTITY, c.wire().sent.get(STATES.size()), "a small state goes as is");

      assertEquals(STATES.get(5), c.client().load(thread).getCheckpoint().getState());
      assertEquals(STATES, states(ids.stream().map(id -> c.client().load(thread, id).getCheckpoint()).toList()));
      ListRequest list = ListRequest.newBuilder().setThreadId(thread).setIncludeState(true).build();
      assertEquals(reversed(STATES), states(c.client().list(list.toBuilder().setPageSize(100).build())
          .getCheckpointsList()));
      assertEquals(reversed(STATES), states(c.client().listAll(list.toBuilder().setPageSize(2).build())),
          "page tokens work with accept_state_encodings");
      List<BatchLoadResult> batch = c.client().batchLoad(ids.stream()
          .map(id -> LoadRequest.newBuilder().setThreadId(thread).setCheckpointId(id).build()).toList());
      assertEquals(STATES, states(batch.stream().map(r -> r.getLoad().getCheckpoint()).toList()));

      assertFalse(c.wire().accepted.isEmpty());
      c.wire().accepted.forEach(a -> assertEquals(List.of(ZSTD), a, "every read asks for zstd"));
      assertEquals(1 + 6 + 6 + 6 + 6, c.wire().received.size());
      c.wire().received.forEach(e -> assertEquals(ZSTD, e, "the server sent the stored frames"));
    }
    // A client without the option reads the same bytes, uncompressed.
    assertEquals(STATES, ids.stream().map(id -> plain.load(thread, id).getCheckpoint())
        .peek(c -> assertEquals(IDENTITY, c.getStateEncoding())).map(dev.cairn.v1.Checkpoint::getState).toList());
    assertEquals(reversed(STATES), states(plain.listAll(ListRequest.newBuilder().setThreadId(thread)
        .setIncludeState(true).build())));
  }

  @Test
  void saveStreamSendsCompressedStatesOnceTheServerAccepts() throws Exception {
    String thread = TestServer.threadId("zstd-stream");
    try (Recorded c = Recorded.open()) {
      List<SaveStreamResponse> first = c.client().saveStream(List.of(
          SaveRequest.newBuilder().setCheckpoint(cp(thread, STATES.get(0), "")).build()));
      assertTrue(first.get(0).hasSave());
      assertEquals(List.of(IDENTITY), c.wire().sent, "a fresh client has not heard from the server");

      // The stream's SaveResponse taught the client: from now on states of 256 bytes or more go as zstd.
      List<SaveRequest> more = new ArrayList<>();
      STATES.subList(1, 5).forEach(s -> more.add(SaveRequest.newBuilder().setCheckpoint(cp(thread, s, "")).build()));
      more.add(SaveRequest.newBuilder().setCheckpoint(cp(thread, ByteString.copyFromUtf8("{\"n\":1}"), "")).build());
      List<SaveStreamResponse> out = c.client().saveStream(more);
      out.forEach(r -> assertTrue(r.hasSave(), () -> r.getError().toString()));
      assertEquals(List.of(ZSTD, ZSTD, ZSTD, ZSTD, IDENTITY), c.wire().sent.subList(1, 6));

      List<String> ids = out.stream().map(r -> r.getSave().getCheckpointId()).toList();
      for (int i = 0; i < 4; i++) {
        assertEquals(STATES.get(i + 1), c.client().load(thread, ids.get(i)).getCheckpoint().getState());
        assertEquals(STATES.get(i + 1), plain.load(thread, ids.get(i)).getCheckpoint().getState());
      }
      assertEquals("{\"n\":1}", plain.load(thread).getCheckpoint().getState().toStringUtf8());
    }
  }

  @Test
  void aStateOverTheClientsMaxMessageBytesIsDataLossEvenAsASmallFrame() {
    String thread = TestServer.threadId("zstd-max");
    plain.save(cp(thread, STATES.get(0), ""));
    try (CairnClient small = CairnClient.builder().target(TestServer.target()).token(System.getenv("CAIRN_TOKEN"))
        .compressStates(true).maxMessageBytes(20_000).build()) {
      // The stored frame (~7.7 KB) fits in a message of 20,000 bytes; the ~37 KB state it declares doesn't.
      DataLossException e = assertThrows(DataLossException.class, () -> small.load(thread));
      assertEquals("STATE_ENCODING", e.reason());
      assertTrue(e.getMessage().contains("declares " + STATES.get(0).size()
          + " bytes, over this client's max message size 20000"), e.getMessage());
    }
  }

  @Test
  void aSaverOnACompressingClientRoundTripsLargeStates() throws Exception {
    RunnableConfig config = RunnableConfig.builder().threadId(TestServer.threadId("zstd-saver")).build();
    List<String> transcripts = IntStream.range(10, 13)
        .mapToObj(i -> new String(TestStates.compressible(37_000, i), StandardCharsets.UTF_8)).toList();
    try (Recorded c = Recorded.open()) {
      CairnSaver saver = CairnSaver.builder().client(c.client()).build();
      for (int i = 0; i < transcripts.size(); i++) {
        saver.put(config, Checkpoint.builder().id("cp" + i).state(Map.of("transcript", transcripts.get(i)))
            .nodeId("agent").nextNodeId("tools").build());
      }
      assertEquals(IDENTITY, c.wire().sent.get(0));
      assertEquals(List.of(ZSTD, ZSTD), c.wire().sent.subList(1, 3), "the saver's puts go compressed");
      assertEquals(transcripts.get(2), saver.get(config).orElseThrow().getState().get("transcript"));
      assertEquals(List.of(transcripts.get(2), transcripts.get(1), transcripts.get(0)),
          saver.list(config).stream().map(cp -> cp.getState().get("transcript")).toList());
      assertTrue(c.wire().received.contains(ZSTD), "and its reads come compressed");
    }
    CairnSaver plainSaver = new CairnSaver(plain);
    assertEquals(List.of(transcripts.get(2), transcripts.get(1), transcripts.get(0)),
        plainSaver.list(config).stream().map(cp -> cp.getState().get("transcript")).toList());
    plainSaver.clear(config);
  }
}
