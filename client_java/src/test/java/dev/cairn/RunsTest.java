package dev.cairn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Timestamp;
import dev.cairn.client.ConflictException;
import dev.cairn.client.FailedPreconditionException;
import dev.cairn.client.NotFoundException;
import dev.cairn.client.RunStoppedException;
import dev.cairn.v1.Checkpoint;
import dev.cairn.v1.ClaimRunResponse;
import dev.cairn.v1.ListRunsRequest;
import dev.cairn.v1.ListRunsResponse;
import dev.cairn.v1.PutWritesRequest;
import dev.cairn.v1.RetryPolicy;
import dev.cairn.v1.Run;
import dev.cairn.v1.RunError;
import dev.cairn.v1.RunLease;
import dev.cairn.v1.RunStatus;
import dev.cairn.v1.SaveRequest;
import dev.cairn.v1.StartRunRequest;
import dev.cairn.v1.Write;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * Durable runs through the client against a real server: claim, heartbeat and complete with fenced writes; a
 * zombie's fenced save refused with LEASE_LOST once another worker took the run over; cancel seen at the
 * heartbeat; retries with history; ListRuns paging and filters.
 */
class RunsTest extends LiveServerTest {

  static String queue() {
    return "java-q-" + UUID.randomUUID();
  }

  static ClaimRunResponse claim(String queue, String worker, Duration lease) {
    return cairn.claimRun(queue, worker, lease, Duration.ofSeconds(5)).orElseThrow();
  }

  static SaveRequest save(String thread, String parent, String json, RunLease lease) {
    return SaveRequest.newBuilder().setCheckpoint(Checkpoint.newBuilder().setThreadId(thread)
        .setParentCheckpointId(parent).setState(ByteString.copyFromUtf8(json)).setStateType("json")).setRunLease(lease)
        .build();
  }

  @Test
  void claimHeartbeatComplete() {
    String thread = TestServer.threadId("java-run");
    String queue = queue();
    Run started = cairn.startRun(thread, queue, "{\"n\":1}");
    assertEquals(RunStatus.RUN_STATUS_PENDING, started.getStatus());
    assertTrue(cairn.claimRun(queue(), "w", Duration.ZERO, Duration.ofMillis(200)).isEmpty());

    ClaimRunResponse c = claim(queue, "java-worker-1", Duration.ofSeconds(5));
    assertEquals(started.getRunId(), c.getRun().getRunId());
    assertEquals(RunStatus.RUN_STATUS_RUNNING, c.getRun().getStatus());
    assertEquals(1, c.getLease().getEpoch());
    assertFalse(c.getRecovered());
    assertEquals("{\"n\":1}", c.getRun().getInput().toStringUtf8());

    RunLease lease = cairn.heartbeat(c.getLease());
    assertTrue(lease.getExpiresAt().getSeconds() >= c.getLease().getExpiresAt().getSeconds());
    String id = cairn.save(save(thread, "", "{\"n\":2}", lease)).getCheckpointId();
    cairn.putWrites(PutWritesRequest.newBuilder().setThreadId(thread).setCheckpointId(id).setTaskId("t")
        .addWrites(Write.newBuilder().setChannel("c").setValueType("json").setValue(ByteString.copyFromUtf8("1")))
        .setRunLease(lease).build());
    Run done = cairn.completeRun(lease, "{\"n\":2}", id);
    assertEquals(RunStatus.RUN_STATUS_COMPLETED, done.getStatus());

    Run got = cairn.getRun(started.getRunId());
    assertEquals("{\"n\":2}", got.getOutput().toStringUtf8());
    assertEquals(id, got.getCheckpointId());
    assertEquals(1, got.getAttemptsCount());
    assertEquals("java-worker-1", got.getAttempts(0).getWorkerId());
    assertEquals(RunStatus.RUN_STATUS_COMPLETED, got.getAttempts(0).getStatus());
  }

  @Test
  void fencedSaveAfterLeaseLostIsRefused() {
    String thread = TestServer.threadId("java-zombie");
    String queue = queue();
    Run started = cairn.startRun(thread, queue, null);
    ClaimRunResponse zombie = claim(queue, "zombie", Duration.ofSeconds(1));
    String first = cairn.save(save(thread, "", "{}", zombie.getLease())).getCheckpointId();

    Optional<ClaimRunResponse> taker = Optional.empty();
    for (Instant deadline = Instant.now().plusSeconds(15); taker.isEmpty() && Instant.now().isBefore(deadline); ) {
      taker = cairn.claimRun(queue, "taker", Duration.ofSeconds(10), Duration.ofSeconds(2));
    }
    assertTrue(taker.orElseThrow().getRecovered());
    assertEquals(2, taker.get().getLease().getEpoch());

    RunStoppedException e = assertThrows(RunStoppedException.class,
        () -> cairn.save(save(thread, first, "{\"z\":1}", zombie.getLease())));
    assertInstanceOf(ConflictException.class, e);
    assertEquals("LEASE_LOST", e.reason());
    assertEquals(started.getRunId(), e.runId());
    assertEquals("2", e.metadata().get("current_epoch"));
    assertThrows(RunStoppedException.class, () -> cairn.putWrites(PutWritesRequest.newBuilder().setThreadId(thread)
        .setCheckpointId(first).setTaskId("z").addWrites(Write.newBuilder().setChannel("c").setValueType("json")
            .setValue(ByteString.copyFromUtf8("1"))).setRunLease(zombie.getLease()).build()));
    assertEquals("LEASE_LOST", assertThrows(RunStoppedException.class, () -> cairn.heartbeat(zombie.getLease())).reason());

    assertEquals(first, cairn.load(thread).getCheckpoint().getCheckpointId());
    assertEquals(0, cairn.load(thread).getPendingWritesCount());
    cairn.save(save(thread, first, "{\"t\":1}", taker.get().getLease()));
    Run run = cairn.getRun(started.getRunId());
    assertEquals(2, run.getAttemptCount());
    assertEquals(1, run.getRecoveryCount());
    assertEquals("LEASE_EXPIRED", run.getAttempts(0).getError().getReason());
    assertTrue(run.getAttempts(1).getRecovered());
  }

  @Test
  void cancelPendingAtOnceAndRunningAtHeartbeat() {
    String queue = queue();
    Instant later = Instant.now().plusSeconds(3600);
    Run pending = cairn.startRun(StartRunRequest.newBuilder().setThreadId(TestServer.threadId("java-cancel"))
        .setQueue(queue).setNotBefore(Timestamp.newBuilder().setSeconds(later.getEpochSecond())).build());
    assertEquals(RunStatus.RUN_STATUS_CANCELLED, cairn.cancelRun(pending.getRunId()).getStatus());

    Run running = cairn.startRun(TestServer.threadId("java-cancel"), queue, null);
    ClaimRunResponse c = claim(queue, "w", Duration.ofSeconds(10));
    Run requested = cairn.cancelRun(running.getRunId());
    assertEquals(RunStatus.RUN_STATUS_RUNNING, requested.getStatus());
    assertTrue(requested.getCancelRequested());
    assertEquals("RUN_CANCELLED", assertThrows(RunStoppedException.class, () -> cairn.heartbeat(c.getLease())).reason());
    assertEquals(RunStatus.RUN_STATUS_CANCELLED, cairn.getRun(running.getRunId()).getStatus());
    assertThrows(NotFoundException.class, () -> cairn.getRun("missing-" + UUID.randomUUID()));
  }

  @Test
  void retriesKeepHistoryAndListRunsPages() {
    String queue = queue();
    Timestamp since = Timestamp.newBuilder().setSeconds(Instant.now().minusSeconds(60).getEpochSecond()).build();
    List<String> threads = List.of(TestServer.threadId("java-list"), TestServer.threadId("java-list"),
        TestServer.threadId("java-list"));
    List<String> ids = new ArrayList<>();
    for (String thread : threads) {
      ids.add(cairn.startRun(StartRunRequest.newBuilder().setThreadId(thread).setQueue(queue)
          .setRetryPolicy(RetryPolicy.newBuilder().setMaxAttempts(2).setInitialBackoffMs(100)).build()).getRunId());
    }
    FailedPreconditionException busy = assertThrows(FailedPreconditionException.class,
        () -> cairn.startRun(threads.get(0), queue, null));
    assertEquals("THREAD_BUSY", busy.reason());
    assertEquals(ids.get(0), busy.runId());

    ClaimRunResponse c = claim(queue, "w", Duration.ofSeconds(5));
    assertEquals(ids.get(0), c.getRun().getRunId()); // oldest first
    Run retrying = cairn.failRun(c.getLease(), RunError.newBuilder().setType("java.net.SocketException")
        .setMessage("connection reset").setRetryable(true).build());
    assertEquals(RunStatus.RUN_STATUS_PENDING, retrying.getStatus());
    for (c = claim(queue, "w", Duration.ofSeconds(5)); !c.getRun().getRunId().equals(ids.get(0));
        c = claim(queue, "w", Duration.ofSeconds(5))) {
      cairn.failRun(c.getLease(), RunError.newBuilder().setMessage("not this one").build());
    }
    Run failed = cairn.failRun(c.getLease(), RunError.newBuilder().setType("IllegalArgumentException")
        .setMessage("bad input").setRetryable(true).build());
    assertEquals(RunStatus.RUN_STATUS_FAILED, failed.getStatus());
    assertEquals(2, failed.getFailedAttemptCount());
    Run history = cairn.getRun(ids.get(0));
    assertEquals(2, history.getAttemptsCount());
    assertEquals("java.net.SocketException", history.getAttempts(0).getError().getType());

    List<String> listed = new ArrayList<>();
    int pages = 0;
    ListRunsRequest page = ListRunsRequest.newBuilder().setQueue(queue).setPageSize(2).setCreatedAfter(since).build();
    while (true) {
      ListRunsResponse r = cairn.listRuns(page);
      pages++;
      r.getRunsList().forEach(run -> listed.add(run.getRunId()));
      if (r.getNextPageToken().isEmpty()) {
        break;
      }
      page = page.toBuilder().setPageToken(r.getNextPageToken()).build();
    }
    assertEquals(2, pages);
    assertEquals(List.of(ids.get(2), ids.get(1), ids.get(0)), listed);
    List<Run> failedRuns = cairn.listAllRuns(ListRunsRequest.newBuilder().setQueue(queue)
        .addStatuses(RunStatus.RUN_STATUS_FAILED).build());
    assertTrue(failedRuns.stream().allMatch(r -> r.getStatus() == RunStatus.RUN_STATUS_FAILED));
    assertTrue(failedRuns.stream().anyMatch(r -> r.getRunId().equals(ids.get(0))));
    assertEquals(List.of(ids.get(0)), cairn.listAllRuns(ListRunsRequest.newBuilder().setThreadId(threads.get(0)).build())
        .stream().map(Run::getRunId).toList());
  }
}
