package dev.cairn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.rpc.ErrorInfo;
import dev.cairn.client.AlreadyExistsException;
import dev.cairn.client.CairnClient;
import dev.cairn.client.CairnException;
import dev.cairn.client.ConflictException;
import dev.cairn.client.DataLossException;
import dev.cairn.client.InvalidArgumentException;
import dev.cairn.client.NotFoundException;
import dev.cairn.client.ResourceExhaustedException;
import dev.cairn.client.Structs;
import dev.cairn.client.UnauthenticatedException;
import dev.cairn.client.UnavailableException;
import dev.cairn.v1.BatchLoadResult;
import dev.cairn.v1.Checkpoint;
import dev.cairn.v1.ListRequest;
import dev.cairn.v1.ListResponse;
import dev.cairn.v1.ListThreadsRequest;
import dev.cairn.v1.LoadRequest;
import dev.cairn.v1.LoadResponse;
import dev.cairn.v1.PutWritesRequest;
import dev.cairn.v1.SaveRequest;
import dev.cairn.v1.SaveResponse;
import dev.cairn.v1.SaveStreamResponse;
import dev.cairn.v1.ThreadInfo;
import dev.cairn.v1.Write;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/** The client against a real Cairn server: every RPC and the error mapping. */
class CairnClientTest extends LiveServerTest {

  static Checkpoint cp(String thread, String json) {
    return Checkpoint.newBuilder().setThreadId(thread).setState(ByteString.copyFromUtf8(json))
        .setStateType("json").build();
  }

  @Test
  void saveThenLoadRoundTripsEveryField() {
    String thread = TestServer.threadId("roundtrip");
    Checkpoint sent = cp(thread, "{\"step\":1}").toBuilder()
        .setMetadata(Structs.of(Map.of("run_id", "r1", "step", 1, "ok", true)))
        .setNodeName("plan").addNextNodes("act").addNextNodes("review").build();
    SaveResponse saved = cairn.save(sent);

    assertEquals('7', saved.getCheckpointId().charAt(14), "client generates a UUIDv7 id");
    assertFalse(saved.getAlreadyExisted());
    Checkpoint head = cairn.load(thread).getCheckpoint();
    assertEquals(saved.getCheckpointId(), head.getCheckpointId());
    assertEquals(sent.getState(), head.getState());
    assertEquals("json", head.getStateType());
    assertEquals("plan", head.getNodeName());
    assertEquals(List.of("act", "review"), head.getNextNodesList());
    assertEquals(Map.of("run_id", "r1", "step", 1.0, "ok", true), Structs.toMap(head.getMetadata()));
    assertEquals(saved.getSequence(), head.getSequence());
    assertEquals(sent.getState().size(), head.getStateSizeBytes());
    assertEquals(head, cairn.load(thread, saved.getCheckpointId()).getCheckpoint());
  }

  @Test
  void identicalResaveIsIdempotentAndDifferentContentConflicts() {
    String thread = TestServer.threadId("idem");
    Checkpoint c = cp(thread, "{\"v\":1}").toBuilder().setCheckpointId("c1").build();
    assertFalse(cairn.save(c).getAlreadyExisted());
    assertTrue(cairn.save(c).getAlreadyExisted());

    Checkpoint changed = c.toBuilder().setState(ByteString.copyFromUtf8("{\"v\":2}")).build();
    AlreadyExistsException e = assertThrows(AlreadyExistsException.class, () -> cairn.save(changed));
    assertEquals("CHECKPOINT_ID_CONFLICT", e.reason());
    assertEquals("cairn.dev", e.domain());
    assertEquals(Status.Code.ALREADY_EXISTS, e.code());

    cairn.save(SaveRequest.newBuilder().setCheckpoint(changed).setReplaceExisting(true).build());
    assertEquals(changed.getState(), cairn.load(thread, "c1").getCheckpoint().getState());
  }

  @Test
  void loadOfEmptyThreadAndMissingCheckpointIsNotFound() {
    String thread = TestServer.threadId("missing");
    NotFoundException empty = assertThrows(NotFoundException.class, () -> cairn.load(thread));
    assertEquals("THREAD_EMPTY", empty.reason());

    cairn.save(cp(thread, "{}"));
    NotFoundException missing = assertThrows(NotFoundException.class, () -> cairn.load(thread, "nope"));
    assertEquals("CHECKPOINT_NOT_FOUND", missing.reason());
    assertEquals(Status.Code.NOT_FOUND, missing.status().getCode());
  }

  @Test
  void lostCompareAndSetIsConflictWithCurrentHead() {
    String thread = TestServer.threadId("cas");
    String first = cairn.save(cp(thread, "{\"n\":1}")).getCheckpointId();
    String second = cairn.save(SaveRequest.newBuilder().setCheckpoint(cp(thread, "{\"n\":2}"))
        .setExpectedHeadId(first).build()).getCheckpointId();

    ConflictException stale = assertThrows(ConflictException.class, () -> cairn.save(
        SaveRequest.newBuilder().setCheckpoint(cp(thread, "{\"n\":3}")).setExpectedHeadId(first).build()));
    assertEquals("HEAD_MOVED", stale.reason());
    assertEquals(second, stale.currentHeadId());

    ConflictException notEmpty = assertThrows(ConflictException.class, () -> cairn.save(
        SaveRequest.newBuilder().setCheckpoint(cp(thread, "{\"n\":4}")).setExpectEmpty(true).build()));
    assertEquals(second, notEmpty.currentHeadId());
    assertEquals(second, cairn.load(thread).getCheckpoint().getCheckpointId());
  }

  @Test
  void invalidFieldNamesTheField() {
    InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> cairn.save(cp("", "{}")));
    assertEquals("INVALID_FIELD", e.reason());
    assertTrue(e.field().contains("thread_id"), e.field());

    InvalidArgumentException page = assertThrows(InvalidArgumentException.class,
        () -> cairn.list(ListRequest.newBuilder().setThreadId("x").setPageSize(-1).build()));
    assertTrue(page.field().contains("page_size"), page.field());
  }

  @Test
  void pendingWritesAreStoredReplacedAndLoaded() {
    String thread = TestServer.threadId("writes");
    String id = cairn.save(cp(thread, "{}")).getCheckpointId();
    PutWritesRequest put = PutWritesRequest.newBuilder().setThreadId(thread).setCheckpointId(id)
        .setTaskId("task-1").setTaskPath("a")
        .addWrites(Write.newBuilder().setIdx(0).setChannel("messages").setValueType("json")
            .setValue(ByteString.copyFromUtf8("\"hi\"")))
        .build();
    assertEquals(1, cairn.putWrites(put));
    assertEquals(0, cairn.putWrites(put), "an identical re-send is a no-op");

    PutWritesRequest changed = put.toBuilder().setWrites(0, put.getWrites(0).toBuilder()
        .setValue(ByteString.copyFromUtf8("\"bye\""))).build();
    AlreadyExistsException conflict = assertThrows(AlreadyExistsException.class, () -> cairn.putWrites(changed));
    assertEquals("WRITE_CONFLICT", conflict.reason());
    assertEquals(1, cairn.putWrites(changed.toBuilder().setReplace(true).build()));

    LoadResponse loaded = cairn.load(thread, id);
    assertEquals(1, loaded.getPendingWritesCount());
    assertEquals("\"bye\"", loaded.getPendingWrites(0).getValue().toStringUtf8());
    assertEquals("task-1", loaded.getPendingWrites(0).getTaskId());

    NotFoundException noCheckpoint = assertThrows(NotFoundException.class,
        () -> cairn.putWrites(put.toBuilder().setCheckpointId("missing").build()));
    assertEquals("CHECKPOINT_NOT_FOUND", noCheckpoint.reason());
  }

  @Test
  void listPagesNewestFirstAndFiltersOnMetadata() {
    String thread = TestServer.threadId("list");
    for (int i = 0; i < 5; i++) {
      cairn.save(cp(thread, "{\"i\":" + i + "}").toBuilder()
          .setMetadata(Structs.of(Map.of("i", i, "even", i % 2 == 0))).build());
    }
    ListRequest req = ListRequest.newBuilder().setThreadId(thread).setPageSize(2).build();
    ListResponse first = cairn.list(req);
    assertEquals(2, first.getCheckpointsCount());
    assertFalse(first.getNextPageToken().isEmpty());
    assertTrue(first.getCheckpoints(0).getState().isEmpty(), "state is left out by default");
    assertEquals("{\"i\":4}".length(), first.getCheckpoints(0).getStateSizeBytes());

    List<Checkpoint> all = cairn.listAll(req.toBuilder().setIncludeState(true).build());
    assertEquals(5, all.size());
    for (int i = 0; i < 5; i++) {
      assertEquals("{\"i\":" + (4 - i) + "}", all.get(i).getState().toStringUtf8());
    }
    List<Checkpoint> even = cairn.listAll(ListRequest.newBuilder().setThreadId(thread)
        .setMetadataFilter(Structs.of(Map.of("even", true))).build());
    assertEquals(3, even.size());
  }

  /** Integers up to ±(2^53−1) round-trip and filter exactly; beyond, Structs.of refuses them (StructsTest). */
  @Test
  void metadataIntegersRoundTripUpToTheDoubleLimit() {
    String thread = TestServer.threadId("safe-int");
    long maxSafe = 9007199254740991L;
    cairn.save(cp(thread, "{}").toBuilder().setCheckpointId("max")
        .setMetadata(Structs.of(Map.of("n", maxSafe, "neg", -maxSafe))).build());
    cairn.save(cp(thread, "{}").toBuilder().setCheckpointId("float")
        .setMetadata(Structs.of(Map.of("n", (double) (1L << 60)))).build());
    assertEquals(Map.of("n", 9007199254740991.0, "neg", -9007199254740991.0),
        Structs.toMap(cairn.load(thread, "max").getCheckpoint().getMetadata()));
    List<Checkpoint> found = cairn.listAll(ListRequest.newBuilder().setThreadId(thread)
        .setMetadataFilter(Structs.of(Map.of("n", maxSafe))).build());
    assertEquals(List.of("max"), found.stream().map(Checkpoint::getCheckpointId).toList());
    // Rounded to a double, 2^60+1 would match the checkpoint "float".
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Structs.of(Map.of("n", (1L << 60) + 1)));
    assertTrue(e.getMessage().startsWith("metadata value at \"n\" is the integer 1152921504606846977,"), e.getMessage());
  }

  @Test
  void listThreadsFindsThreadsByHeadMetadata() {
    String marker = UUID.randomUUID().toString();
    String a = TestServer.threadId("threads-a");
    String b = TestServer.threadId("threads-b");
    cairn.save(cp(a, "{}").toBuilder().setMetadata(Structs.of(Map.of("marker", marker))).setNodeName("n1").build());
    cairn.save(cp(b, "{}").toBuilder().setMetadata(Structs.of(Map.of("marker", marker))).build());
    cairn.save(cp(b, "{}").toBuilder().setMetadata(Structs.of(Map.of("marker", marker))).build());

    List<ThreadInfo> threads = cairn.listThreads(ListThreadsRequest.newBuilder()
        .setMetadataFilter(Structs.of(Map.of("marker", marker))).build()).getThreadsList();
    assertEquals(List.of(b, a), threads.stream().map(ThreadInfo::getThreadId).toList());
    assertEquals(2, threads.get(0).getCheckpointCount());
    assertEquals("n1", threads.get(1).getHeadNodeName());
  }

  @Test
  void batchLoadReportsEachItem() {
    String thread = TestServer.threadId("batch");
    String id = cairn.save(cp(thread, "{}")).getCheckpointId();
    List<BatchLoadResult> results = cairn.batchLoad(List.of(
        LoadRequest.newBuilder().setThreadId(thread).setCheckpointId(id).build(),
        LoadRequest.newBuilder().setThreadId(thread).setCheckpointId("missing").build()));
    assertEquals(id, results.get(0).getLoad().getCheckpoint().getCheckpointId());
    assertTrue(results.get(1).hasError());
    CairnException e = CairnClient.toException(results.get(1).getError());
    assertInstanceOf(NotFoundException.class, e);
    assertEquals("CHECKPOINT_NOT_FOUND", e.reason());
  }

  @Test
  void saveStreamAnswersEveryItemInOrder() {
    String thread = TestServer.threadId("stream");
    List<SaveStreamResponse> out = cairn.saveStream(List.of(
        SaveRequest.newBuilder().setCheckpoint(cp(thread, "{\"n\":1}").toBuilder().setCheckpointId("s1")).build(),
        SaveRequest.newBuilder().setCheckpoint(cp(thread, "{\"n\":2}").toBuilder().setCheckpointId("s1")).build(),
        SaveRequest.newBuilder().setCheckpoint(cp(thread, "{\"n\":3}")).build()));
    assertEquals(3, out.size());
    assertEquals("s1", out.get(0).getSave().getCheckpointId());
    assertInstanceOf(AlreadyExistsException.class, CairnClient.toException(out.get(1).getError()));
    assertFalse(out.get(2).getSave().getCheckpointId().isEmpty());
    assertEquals(out.get(2).getSave().getCheckpointId(), cairn.load(thread).getCheckpoint().getCheckpointId());
  }

  @Test
  void deleteClearCopyPruneAndDeleteRuns() {
    String thread = TestServer.threadId("house");
    String run = "run-" + UUID.randomUUID();
    String[] ids = new String[4];
    String parent = "";
    for (int i = 0; i < 4; i++) {
      ids[i] = cairn.save(cp(thread, "{\"i\":" + i + "}").toBuilder().setParentCheckpointId(parent)
          .setMetadata(Structs.of(Map.of("run_id", i < 3 ? "other" : run))).build()).getCheckpointId();
      parent = ids[i];
    }
    String copy = TestServer.threadId("house-copy");
    assertEquals(4, cairn.copyThread(thread, copy));
    assertEquals(ids[3], cairn.load(copy).getCheckpoint().getCheckpointId());
    ConflictException notEmpty = assertThrows(ConflictException.class, () -> cairn.copyThread(thread, copy));
    assertEquals(Status.Code.ABORTED, notEmpty.code());

    assertTrue(cairn.delete(thread, "", ids[0]));
    assertFalse(cairn.delete(thread, "", ids[0]), "deleting twice is still a success");
    assertEquals(1, cairn.pruneKeepLatest(List.of(thread), 2));
    assertEquals(List.of(ids[3], ids[2]), cairn.listAll(ListRequest.newBuilder().setThreadId(thread).build())
        .stream().map(Checkpoint::getCheckpointId).toList());

    assertEquals(2, cairn.deleteRuns(List.of(run)), "the run's checkpoint in both threads");
    assertEquals(1, cairn.clear(thread));
    assertEquals(0, cairn.clear(thread));
    assertEquals(3, cairn.clear(copy));
  }

  @Test
  void unreachableServerIsUnavailableAfterRetries() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    try (CairnClient down = CairnClient.builder().target("127.0.0.1:" + port).maxAttempts(2)
        .deadline(Duration.ofSeconds(20)).build()) {
      UnavailableException e = assertThrows(UnavailableException.class, () -> down.load("t"));
      assertEquals(Status.Code.UNAVAILABLE, e.code());
      assertEquals("", e.reason(), "no ErrorInfo when the server never answered");
    }
  }

  /** The mapping from status trailers to exception types, for codes a healthy server rarely sends. */
  @Test
  void statusDetailsMapToTypedExceptions() {
    Map<Integer, Class<? extends CairnException>> expected = Map.of(
        Status.Code.DATA_LOSS.value(), DataLossException.class,
        Status.Code.RESOURCE_EXHAUSTED.value(), ResourceExhaustedException.class,
        Status.Code.UNAUTHENTICATED.value(), UnauthenticatedException.class,
        Status.Code.UNAVAILABLE.value(), UnavailableException.class,
        Status.Code.ABORTED.value(), ConflictException.class,
        Status.Code.DEADLINE_EXCEEDED.value(), CairnException.class);
    expected.forEach((code, type) -> {
      ErrorInfo info = ErrorInfo.newBuilder().setDomain("cairn.dev").setReason("R" + code)
          .putMetadata("current_head_id", "h1").build();
      com.google.rpc.Status st = com.google.rpc.Status.newBuilder().setCode(code).setMessage("m")
          .addDetails(Any.pack(info)).build();
      CairnException e = CairnException.from(StatusProto.toStatusRuntimeException(st));
      assertEquals(type, e.getClass());
      assertEquals("R" + code, e.reason());
      assertEquals("h1", e.metadata().get("current_head_id"));
      assertEquals("m", e.status().getDescription());
    });
  }
}
