package dev.cairn.client;

import com.google.rpc.ErrorInfo;
import io.grpc.Status;

/** UNAUTHENTICATED: missing ({@code MISSING_TOKEN}) or invalid ({@code INVALID_TOKEN}) bearer token. */
public class UnauthenticatedException extends CairnException {
  UnauthenticatedException(Status status, ErrorInfo info, Throwable cause) {
    super(status, info, cause);
  }
}
