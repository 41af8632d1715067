package dev.cairn.client;

import com.google.rpc.ErrorInfo;
import io.grpc.Status;

/** UNAVAILABLE: the server or its cold store is unreachable; retry with backoff (the client already retried). */
public class UnavailableException extends CairnException {
  UnavailableException(Status status, ErrorInfo info, Throwable cause) {
    super(status, info, cause);
  }
}
