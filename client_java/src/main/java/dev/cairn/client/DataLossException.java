package dev.cairn.client;

import com.google.rpc.ErrorInfo;
import io.grpc.Status;

/** DATA_LOSS ({@code CHECKSUM_MISMATCH}): the stored bytes are corrupt. */
public class DataLossException extends CairnException {
  DataLossException(Status status, ErrorInfo info, Throwable cause) {
    super(status, info, cause);
  }
}
