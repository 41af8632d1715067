package dev.cairn.client;

import com.google.rpc.ErrorInfo;
import io.grpc.Status;

/**
 * DATA_LOSS: the stored bytes are corrupt ({@code CHECKSUM_MISMATCH}, from the server), or, with
 * {@code compressStates}, a state the server sent zstd-encoded does not decode ({@code STATE_ENCODING},
 * raised by the client).
 */
public class DataLossException extends CairnException {
  DataLossException(Status status, ErrorInfo info, Throwable cause) {
    super(status, info, cause);
  }
}
