package dev.cairn.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdCompressCtx;
import com.google.protobuf.ByteString;
import dev.cairn.TestStates;
import dev.cairn.v1.BatchLoadResult;
import dev.cairn.v1.Checkpoint;
import dev.cairn.v1.ListRequest;
import dev.cairn.v1.ListResponse;
import dev.cairn.v1.LoadRequest;
import dev.cairn.v1.LoadResponse;
import dev.cairn.v1.SaveRequest;
import dev.cairn.v1.SaveResponse;
import dev.cairn.v1.StateEncoding;
import io.grpc.Status;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;

/** The client's side of states on the wire as zstd, without a server: request building and decoding. */
class StateWireTest {
  static final StateEncoding ZSTD = StateEncoding.STATE_ENCODING_ZSTD;
  static final byte[] STATE = TestStates.compressible(37_000, 1);
  static final SaveResponse ACCEPTS = SaveResponse.newBuilder().addAcceptedStateEncodings(ZSTD).build();
  /** The builder's default maxMessageBytes. */
  static final int MAX = 64 << 20;
  static final StateWire DECODER = new StateWire(true, MAX);

  static SaveRequest save(byte[] state) {
    return SaveRequest.newBuilder().setCheckpoint(Checkpoint.newBuilder().setThreadId("t")
        .setCheckpointId("c").setStateType("json").setState(ByteString.copyFrom(state))).build();
  }

  static StateWire learned() {
    StateWire wire = new StateWire(true, MAX);
    wire.saved(ACCEPTS);
    return wire;
  }

  static Checkpoint returned(byte[] frame, long stateSize) {
    return Checkpoint.newBuilder().setThreadId("t").setCheckpointId("c").setStateType("json")
        .setState(ByteString.copyFrom(frame)).setStateEncoding(ZSTD).setStateSizeBytes(stateSize)
        .setStoredSizeBytes(frame.length).build();
  }

  @Test
  void savesAreCompressedOnlyAfterTheServerSaidItAccepts() {
    StateWire wire = new StateWire(true, MAX);
    SaveRequest big = save(STATE);
    assertSame(big, wire.outgoing(big), "not before a SaveResponse listed ZSTD");
    wire.saved(SaveResponse.getDefaultInstance()); // an older server lists nothing
    assertSame(big, wire.outgoing(big));
    assertFalse(wire.serverAccepts());

    wire.saved(ACCEPTS);
    SaveRequest out = wire.outgoing(big);
    assertEquals(ZSTD, out.getCheckpoint().getStateEncoding());
    byte[] frame = out.getCheckpoint().getState().toByteArray();
    assertTrue(frame.length < STATE.length / 2, "compressible: " + frame.length);
    assertEquals(STATE.length, Zstd.getFrameContentSize(frame), "the frame declares its content size");
    assertArrayEquals(STATE, Zstd.decompress(frame, STATE.length));
    assertEquals(big.getCheckpoint().toBuilder().clearState().clearStateEncoding().build(),
        out.getCheckpoint().toBuilder().clearState().clearStateEncoding().build(), "other fields as sent");
    assertEquals(save(STATE), big, "the caller's request is left as it was");

    wire.saved(SaveResponse.getDefaultInstance()); // a rollback: the server answering now lists nothing
    assertSame(big, wire.outgoing(big), "frames stop when the latest SaveResponse no longer lists ZSTD");
  }

  @Test
  void smallIncompressibleAndAlreadyEncodedStatesGoAsTheyAre() {
    StateWire wire = learned();
    SaveRequest small = save(Arrays.copyOf(STATE, StateWire.MIN_BYTES - 1));
    assertSame(small, wire.outgoing(small));
    assertEquals(ZSTD, wire.outgoing(save(Arrays.copyOf(STATE, StateWire.MIN_BYTES))).getCheckpoint()
        .getStateEncoding(), "256 bytes of JSON are compressed");

    byte[] noise = new byte[4096];
    new Random(7).nextBytes(noise);
    SaveRequest random = save(noise);
    assertSame(random, wire.outgoing(random), "a frame not smaller than the state is not sent");

    SaveRequest.Builder b = save(Zstd.compress(STATE, 19)).toBuilder();
    b.getCheckpointBuilder().setStateEncoding(ZSTD);
    SaveRequest encoded = b.build();
    assertSame(encoded, wire.outgoing(encoded), "a caller's own frame is not compressed again");
  }

  @Test
  void disabledChangesNothing() {
    StateWire off = new StateWire(false, MAX);
    off.saved(ACCEPTS);
    SaveRequest big = save(STATE);
    assertSame(big, off.outgoing(big));
    LoadRequest load = LoadRequest.newBuilder().setThreadId("t").build();
    assertSame(load, off.accepting(load));
    ListRequest list = ListRequest.newBuilder().setThreadId("t").build();
    assertSame(list, off.accepting(list));
    LoadResponse zstd = LoadResponse.newBuilder().setCheckpoint(returned(Zstd.compress(STATE, 3), STATE.length))
        .build();
    assertSame(zstd, off.loaded(zstd), "a plain client hands back what the server sent, as before");
  }

  @Test
  void readsAskForZstdOnce() {
    StateWire wire = new StateWire(true, MAX);
    LoadRequest load = wire.accepting(LoadRequest.newBuilder().setThreadId("t").build());
    assertEquals(List.of(ZSTD), load.getAcceptStateEncodingsList());
    assertSame(load, wire.accepting(load));
    ListRequest list = wire.accepting(ListRequest.newBuilder().setThreadId("t").setIncludeState(true).build());
    assertEquals(List.of(ZSTD), list.getAcceptStateEncodingsList());
    assertSame(list, wire.accepting(list));
  }

  @Test
  void aZstdStateDecodesToTheRawStateAndIdentityIsTakenAsItIs() {
    byte[] frame = Zstd.compress(STATE, 3);
    Checkpoint got = DECODER.decode(returned(frame, STATE.length));
    assertArrayEquals(STATE, got.getState().toByteArray());
    assertEquals(StateEncoding.STATE_ENCODING_UNSPECIFIED, got.getStateEncoding());
    assertEquals(STATE.length, got.getStateSizeBytes());
    assertEquals(frame.length, got.getStoredSizeBytes());

    Checkpoint plain = Checkpoint.newBuilder().setCheckpointId("c").setState(ByteString.copyFrom(STATE)).build();
    assertSame(plain, DECODER.decode(plain));
    Checkpoint empty = DECODER.decode(returned(Zstd.compress(new byte[0], 3), 0));
    assertTrue(empty.getState().isEmpty());

    StateWire wire = new StateWire(true, MAX);
    ListResponse page = wire.listed(ListResponse.newBuilder().addCheckpoints(returned(frame, STATE.length))
        .addCheckpoints(plain).setNextPageToken("next").build());
    assertArrayEquals(STATE, page.getCheckpoints(0).getState().toByteArray());
    assertSame(plain, page.getCheckpoints(1));
    assertEquals("next", page.getNextPageToken());
  }

  static DataLossException refused(UnaryOperator<Checkpoint.Builder> bad) {
    Checkpoint cp = bad.apply(returned(Zstd.compress(STATE, 3), STATE.length).toBuilder()).build();
    DataLossException e = assertThrows(DataLossException.class, () -> DECODER.decode(cp));
    assertEquals(Status.Code.DATA_LOSS, e.code());
    assertEquals("STATE_ENCODING", e.reason());
    assertTrue(e.getMessage().contains("checkpoint 'c' of thread 't'"), e.getMessage());
    return e;
  }

  @Test
  void aBadFrameOrEncodingFromTheServerIsDataLoss() {
    byte[] frame = Zstd.compress(STATE, 3);
    refused(c -> c.setState(ByteString.copyFrom(new byte[] {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd,
        ' ', 'g', 'a', 'r', 'b', 'a', 'g', 'e'}))); // zstd magic, then garbage
    assertTrue(refused(c -> c.setState(ByteString.copyFromUtf8("not zstd at all"))).getMessage()
        .contains("not a zstd frame"));
    assertTrue(refused(c -> c.setState(ByteString.EMPTY)).getMessage().contains("not a zstd frame"));
    assertTrue(refused(c -> c.setState(ByteString.copyFrom(frame, 0, frame.length - 7))).getMessage()
        .contains("does not decompress"));
    assertTrue(refused(c -> c.setState(c.getState().concat(c.getState()))).getMessage()
        .contains("does not decompress"), "two frames");
    assertTrue(refused(c -> c.setState(c.getState().concat(ByteString.copyFromUtf8("junk")))).getMessage()
        .contains("does not decompress"), "trailing bytes");
    assertTrue(refused(c -> c.setStateSizeBytes(STATE.length + 1)).getMessage()
        .contains("declares " + STATE.length + " bytes but state_size_bytes is " + (STATE.length + 1)));
    assertTrue(refused(c -> c.setStateEncodingValue(9)).getMessage().contains("state_encoding 9"));
    try (ZstdCompressCtx ctx = new ZstdCompressCtx()) {
      byte[] undeclared = ctx.setLevel(3).setContentSize(false).compress(STATE);
      assertTrue(refused(c -> c.setState(ByteString.copyFrom(undeclared))).getMessage()
          .contains("does not declare its content size"));
    }
  }

  /** A single-segment frame header declaring {@code size} bytes (8-byte field), then an empty last raw block. */
  static byte[] declaring(long size) {
    ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
    b.put(new byte[] {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd, (byte) 0xe0}).putLong(size).put(new byte[] {1, 0, 0});
    return b.array();
  }

  @Test
  void aFrameDeclaringMoreThanMaxMessageBytesIsDataLossBeforeAllocating() {
    // A terabyte, over Integer.MAX_VALUE too: refused without allocating it (or casting it to an int).
    long huge = 1L << 40;
    assertEquals(huge, Zstd.getFrameContentSize(declaring(huge)), "the hand-made header");
    DataLossException e = refused(c -> c.setState(ByteString.copyFrom(declaring(huge))).setStateSizeBytes(huge));
    assertTrue(e.getMessage().contains("declares " + huge + " bytes, over this client's max message size " + MAX
        + " (raise it with CairnClient.Builder.maxMessageBytes)"), e.getMessage());
    // 2^64 - 3, a negative long that is neither of zstd-jni's error values.
    e = refused(c -> c.setState(ByteString.copyFrom(declaring(-3))).setStateSizeBytes(-3));
    assertTrue(e.getMessage().contains("declares 18446744073709551613 bytes"), e.getMessage());

    // A real state exactly at the limit decodes; one byte under it, the state is refused.
    Checkpoint cp = returned(Zstd.compress(STATE, 3), STATE.length);
    assertArrayEquals(STATE, new StateWire(true, STATE.length).decode(cp).getState().toByteArray());
    e = assertThrows(DataLossException.class, () -> new StateWire(true, STATE.length - 1).decode(cp));
    assertEquals("STATE_ENCODING", e.reason());
    assertTrue(e.getMessage().contains("declares " + STATE.length + " bytes, over this client's max message size "
        + (STATE.length - 1)), e.getMessage());
  }

  @Test
  void aBadFrameInABatchIsThatItemsDataLoss() {
    StateWire wire = new StateWire(true, MAX);
    Checkpoint good = returned(Zstd.compress(STATE, 3), STATE.length);
    Checkpoint bad = good.toBuilder().setStateSizeBytes(1).build();
    BatchLoadResult ok = wire.item(BatchLoadResult.newBuilder()
        .setLoad(LoadResponse.newBuilder().setCheckpoint(good)).build());
    assertArrayEquals(STATE, ok.getLoad().getCheckpoint().getState().toByteArray());
    BatchLoadResult failed = wire.item(BatchLoadResult.newBuilder()
        .setLoad(LoadResponse.newBuilder().setCheckpoint(bad)).build());
    CairnException e = CairnClient.toException(failed.getError());
    assertInstanceOf(DataLossException.class, e);
    assertEquals("STATE_ENCODING", e.reason());
    assertTrue(e.getMessage().contains("checkpoint 'c' of thread 't'"), e.getMessage());
  }
}
