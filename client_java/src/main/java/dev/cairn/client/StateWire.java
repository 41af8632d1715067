package dev.cairn.client;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdException;
import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import com.google.rpc.ErrorInfo;
import dev.cairn.v1.BatchLoadResult;
import dev.cairn.v1.Checkpoint;
import dev.cairn.v1.ItemError;
import dev.cairn.v1.ListRequest;
import dev.cairn.v1.ListResponse;
import dev.cairn.v1.LoadRequest;
import dev.cairn.v1.LoadResponse;
import dev.cairn.v1.SaveRequest;
import dev.cairn.v1.SaveResponse;
import dev.cairn.v1.StateEncoding;
import io.grpc.Status;

/**
 * How states travel for one {@link CairnClient}: as they are, or, with {@code compressStates}, as one
 * zstd frame (the Python client's {@code StateWire}). Saves are compressed only after a SaveResponse
 * listed {@code STATE_ENCODING_ZSTD} (an older server would store the frame as the state); reads ask
 * for zstd and take either answer, handing the caller the raw state. Disabled, every method returns
 * its argument. Thread-safe: the only state is a volatile flag, and zstd-jni's one-shot calls use a
 * context of their own.
 */
final class StateWire {

  /** Below this a state goes as is: compression costs more than it saves (the server's rule too). */
  static final int MIN_BYTES = 256;
  /**
   * zstd level of client-side compression: level 1, as the other clients, ~0.7x the CPU of level 3 for a
   * frame a few percent larger (the client pays for compression; the server and the network gain).
   */
  static final int LEVEL = 1;
  static final String REASON = "STATE_ENCODING";

  private static final StateEncoding ZSTD = StateEncoding.STATE_ENCODING_ZSTD;

  private final boolean enabled;
  /**
   * Largest state decoded: the client's maxMessageBytes, which no identity state could exceed either.
   * zstd allocates what a frame declares, so a frame declaring more is refused before that.
   */
  private final int maxStateBytes;
  /** Whether the latest SaveResponse listed ZSTD (see the rolling-upgrade caveat). */
  private volatile boolean serverAccepts;

  StateWire(boolean enabled, int maxStateBytes) {
    this.enabled = enabled;
    this.maxStateBytes = maxStateBytes;
  }

  boolean enabled() {
    return enabled;
  }

  boolean serverAccepts() {
    return serverAccepts;
  }

  // ---------------------------------------------------------------------------------------------
  // Saves

  /** {@code req}, or a copy whose state is one zstd frame (the caller's request is never changed). */
  SaveRequest outgoing(SaveRequest req) {
    Checkpoint cp = req.getCheckpoint();
    if (!enabled || !serverAccepts || cp.getStateEncodingValue() != 0 || cp.getState().size() < MIN_BYTES) {
      return req;
    }
    byte[] frame = compress(cp.getState());
    if (frame == null) {
      return req;
    }
    SaveRequest.Builder b = req.toBuilder();
    b.getCheckpointBuilder().setState(UnsafeByteOperations.unsafeWrap(frame)).setStateEncoding(ZSTD);
    return b.build();
  }

  /**
   * One zstd frame of {@code state} at {@link #LEVEL}, no dictionary, declaring its content size (the
   * server refuses frames that don't); null when it would not be smaller than the state.
   */
  static byte[] compress(ByteString state) {
    byte[] raw = state.toByteArray();
    byte[] frame = Zstd.compress(raw, LEVEL);
    if (frame.length >= raw.length || Zstd.getFrameContentSize(frame) != raw.length) {
      return null;
    }
    return frame;
  }

  /**
   * Learns from a SaveResponse whether the server accepts zstd states; returns {@code resp}. It follows the
   * latest answer: a server that stops listing zstd (a rollback) stops getting frames.
   */
  SaveResponse saved(SaveResponse resp) {
    if (enabled) {
      serverAccepts = resp.getAcceptedStateEncodingsList().contains(ZSTD);
    }
    return resp;
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  LoadRequest accepting(LoadRequest req) {
    if (!enabled || req.getAcceptStateEncodingsList().contains(ZSTD)) {
      return req;
    }
    return req.toBuilder().addAcceptStateEncodings(ZSTD).build();
  }

  ListRequest accepting(ListRequest req) {
    if (!enabled || req.getAcceptStateEncodingsList().contains(ZSTD)) {
      return req;
    }
    return req.toBuilder().addAcceptStateEncodings(ZSTD).build();
  }

  LoadResponse loaded(LoadResponse r) {
    if (!enabled || r.getCheckpoint().getStateEncodingValue() == 0) {
      return r;
    }
    return r.toBuilder().setCheckpoint(decode(r.getCheckpoint())).build();
  }

  ListResponse listed(ListResponse r) {
    if (!enabled || r.getCheckpointsList().stream().allMatch(c -> c.getStateEncodingValue() == 0)) {
      return r;
    }
    ListResponse.Builder b = r.toBuilder();
    for (int i = 0; i < b.getCheckpointsCount(); i++) {
      b.setCheckpoints(i, decode(b.getCheckpoints(i)));
    }
    return b.build();
  }

  /** A load of a batch with its state decoded; a bad frame becomes that item's DATA_LOSS error. */
  BatchLoadResult item(BatchLoadResult r) {
    if (!enabled || !r.hasLoad() || r.getLoad().getCheckpoint().getStateEncodingValue() == 0) {
      return r;
    }
    try {
      return BatchLoadResult.newBuilder().setLoad(loaded(r.getLoad())).build();
    } catch (DataLossException e) {
      return BatchLoadResult.newBuilder().setError(ItemError.newBuilder()
          .setCode(Status.Code.DATA_LOSS.value())
          .setMessage(e.status().getDescription())
          .setReason(REASON)).build();
    }
  }

  /**
   * The checkpoint with its raw state and no state_encoding; identity answers come back as they are.
   *
   * @throws DataLossException (reason {@code STATE_ENCODING}) for an encoding this client did not ask
   *     for, or a zstd state that is not one frame declaring {@code state_size_bytes} (at most the
   *     client's maxMessageBytes) and decompressing to exactly that many bytes
   */
  Checkpoint decode(Checkpoint c) {
    int encoding = c.getStateEncodingValue();
    if (encoding == 0) {
      return c;
    }
    if (encoding != ZSTD.getNumber()) {
      throw dataLoss(c, "the server sent state_encoding " + encoding + ", which this client did not ask for", null);
    }
    byte[] frame = c.getState().toByteArray();
    long size = c.getStateSizeBytes();
    long declared = frame.length == 0 ? -2 : Zstd.getFrameContentSize(frame);
    if (declared == -2) {
      throw dataLoss(c, "the zstd-encoded state is not a zstd frame", null);
    }
    if (declared == -1) {
      throw dataLoss(c, "the zstd frame does not declare its content size", null);
    }
    if (declared != size || size < 0) { // a size of 2^63 or more is a negative long
      throw dataLoss(c, "the zstd frame declares " + Long.toUnsignedString(declared)
          + " bytes but state_size_bytes is " + size, null);
    }
    if (size > maxStateBytes) { // before allocating: a faulty server could declare terabytes
      throw dataLoss(c, "the zstd frame declares " + size + " bytes, over this client's max message size "
          + maxStateBytes + " (raise it with CairnClient.Builder.maxMessageBytes)", null);
    }
    if (size > Integer.MAX_VALUE - 8) {
      throw dataLoss(c, "state_size_bytes " + size + " is too large for a Java byte array", null);
    }
    // Bounded by state_size_bytes: a frame holding more (a second frame, trailing data) fails.
    byte[] raw = new byte[(int) size];
    byte[] dst = size == 0 ? new byte[1] : raw;
    long n;
    try {
      n = Zstd.decompressByteArray(dst, 0, dst.length, frame, 0, frame.length);
    } catch (ZstdException e) {
      throw dataLoss(c, "the zstd-encoded state does not decompress (" + e.getMessage() + ")", e);
    }
    if (n != size) {
      throw dataLoss(c, "the zstd frame decompressed to " + n + " bytes, not state_size_bytes " + size, null);
    }
    return c.toBuilder().setState(UnsafeByteOperations.unsafeWrap(raw)).clearStateEncoding().build();
  }

  private static DataLossException dataLoss(Checkpoint c, String what, Throwable cause) {
    String message = String.format("checkpoint '%s' of thread '%s': %s; a client without compressStates "
        + "reads the state uncompressed", c.getCheckpointId(), c.getThreadId(), what);
    ErrorInfo info = ErrorInfo.newBuilder().setDomain("cairn.dev").setReason(REASON).build();
    return new DataLossException(Status.DATA_LOSS.withDescription(message), info, cause);
  }
}
