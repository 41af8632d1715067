package dev.cairn.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * CheckpointStore keeps the checkpoints and pending writes of graph threads.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class CheckpointStoreGrpc {

  private CheckpointStoreGrpc() {}

  public static final java.lang.String SERVICE_NAME = "cairn.v1.CheckpointStore";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.SaveRequest,
      dev.cairn.v1.SaveResponse> getSaveMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Save",
      requestType = dev.cairn.v1.SaveRequest.class,
      responseType = dev.cairn.v1.SaveResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.SaveRequest,
      dev.cairn.v1.SaveResponse> getSaveMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.SaveRequest, dev.cairn.v1.SaveResponse> getSaveMethod;
    if ((getSaveMethod = CheckpointStoreGrpc.getSaveMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getSaveMethod = CheckpointStoreGrpc.getSaveMethod) == null) {
          CheckpointStoreGrpc.getSaveMethod = getSaveMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.SaveRequest, dev.cairn.v1.SaveResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Save"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.SaveRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.SaveResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("Save"))
              .build();
        }
      }
    }
    return getSaveMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.SaveStreamRequest,
      dev.cairn.v1.SaveStreamResponse> getSaveStreamMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "SaveStream",
      requestType = dev.cairn.v1.SaveStreamRequest.class,
      responseType = dev.cairn.v1.SaveStreamResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.BIDI_STREAMING)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.SaveStreamRequest,
      dev.cairn.v1.SaveStreamResponse> getSaveStreamMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.SaveStreamRequest, dev.cairn.v1.SaveStreamResponse> getSaveStreamMethod;
    if ((getSaveStreamMethod = CheckpointStoreGrpc.getSaveStreamMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getSaveStreamMethod = CheckpointStoreGrpc.getSaveStreamMethod) == null) {
          CheckpointStoreGrpc.getSaveStreamMethod = getSaveStreamMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.SaveStreamRequest, dev.cairn.v1.SaveStreamResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.BIDI_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "SaveStream"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.SaveStreamRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.SaveStreamResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("SaveStream"))
              .build();
        }
      }
    }
    return getSaveStreamMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.SaveBatchRequest,
      dev.cairn.v1.SaveBatchResponse> getSaveBatchMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "SaveBatch",
      requestType = dev.cairn.v1.SaveBatchRequest.class,
      responseType = dev.cairn.v1.SaveBatchResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.SaveBatchRequest,
      dev.cairn.v1.SaveBatchResponse> getSaveBatchMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.SaveBatchRequest, dev.cairn.v1.SaveBatchResponse> getSaveBatchMethod;
    if ((getSaveBatchMethod = CheckpointStoreGrpc.getSaveBatchMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getSaveBatchMethod = CheckpointStoreGrpc.getSaveBatchMethod) == null) {
          CheckpointStoreGrpc.getSaveBatchMethod = getSaveBatchMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.SaveBatchRequest, dev.cairn.v1.SaveBatchResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "SaveBatch"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.SaveBatchRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.SaveBatchResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("SaveBatch"))
              .build();
        }
      }
    }
    return getSaveBatchMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.LoadRequest,
      dev.cairn.v1.LoadResponse> getLoadMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Load",
      requestType = dev.cairn.v1.LoadRequest.class,
      responseType = dev.cairn.v1.LoadResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.LoadRequest,
      dev.cairn.v1.LoadResponse> getLoadMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.LoadRequest, dev.cairn.v1.LoadResponse> getLoadMethod;
    if ((getLoadMethod = CheckpointStoreGrpc.getLoadMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getLoadMethod = CheckpointStoreGrpc.getLoadMethod) == null) {
          CheckpointStoreGrpc.getLoadMethod = getLoadMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.LoadRequest, dev.cairn.v1.LoadResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Load"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.LoadRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.LoadResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("Load"))
              .build();
        }
      }
    }
    return getLoadMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.BatchLoadRequest,
      dev.cairn.v1.BatchLoadResponse> getBatchLoadMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "BatchLoad",
      requestType = dev.cairn.v1.BatchLoadRequest.class,
      responseType = dev.cairn.v1.BatchLoadResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.BatchLoadRequest,
      dev.cairn.v1.BatchLoadResponse> getBatchLoadMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.BatchLoadRequest, dev.cairn.v1.BatchLoadResponse> getBatchLoadMethod;
    if ((getBatchLoadMethod = CheckpointStoreGrpc.getBatchLoadMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getBatchLoadMethod = CheckpointStoreGrpc.getBatchLoadMethod) == null) {
          CheckpointStoreGrpc.getBatchLoadMethod = getBatchLoadMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.BatchLoadRequest, dev.cairn.v1.BatchLoadResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "BatchLoad"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.BatchLoadRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.BatchLoadResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("BatchLoad"))
              .build();
        }
      }
    }
    return getBatchLoadMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.ListRequest,
      dev.cairn.v1.ListResponse> getListMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "List",
      requestType = dev.cairn.v1.ListRequest.class,
      responseType = dev.cairn.v1.ListResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.ListRequest,
      dev.cairn.v1.ListResponse> getListMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.ListRequest, dev.cairn.v1.ListResponse> getListMethod;
    if ((getListMethod = CheckpointStoreGrpc.getListMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getListMethod = CheckpointStoreGrpc.getListMethod) == null) {
          CheckpointStoreGrpc.getListMethod = getListMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.ListRequest, dev.cairn.v1.ListResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "List"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.ListRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.ListResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("List"))
              .build();
        }
      }
    }
    return getListMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.ListThreadsRequest,
      dev.cairn.v1.ListThreadsResponse> getListThreadsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListThreads",
      requestType = dev.cairn.v1.ListThreadsRequest.class,
      responseType = dev.cairn.v1.ListThreadsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.ListThreadsRequest,
      dev.cairn.v1.ListThreadsResponse> getListThreadsMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.ListThreadsRequest, dev.cairn.v1.ListThreadsResponse> getListThreadsMethod;
    if ((getListThreadsMethod = CheckpointStoreGrpc.getListThreadsMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getListThreadsMethod = CheckpointStoreGrpc.getListThreadsMethod) == null) {
          CheckpointStoreGrpc.getListThreadsMethod = getListThreadsMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.ListThreadsRequest, dev.cairn.v1.ListThreadsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListThreads"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.ListThreadsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.ListThreadsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("ListThreads"))
              .build();
        }
      }
    }
    return getListThreadsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.DeleteRequest,
      dev.cairn.v1.DeleteResponse> getDeleteMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Delete",
      requestType = dev.cairn.v1.DeleteRequest.class,
      responseType = dev.cairn.v1.DeleteResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.DeleteRequest,
      dev.cairn.v1.DeleteResponse> getDeleteMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.DeleteRequest, dev.cairn.v1.DeleteResponse> getDeleteMethod;
    if ((getDeleteMethod = CheckpointStoreGrpc.getDeleteMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getDeleteMethod = CheckpointStoreGrpc.getDeleteMethod) == null) {
          CheckpointStoreGrpc.getDeleteMethod = getDeleteMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.DeleteRequest, dev.cairn.v1.DeleteResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Delete"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.DeleteRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.DeleteResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("Delete"))
              .build();
        }
      }
    }
    return getDeleteMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.ClearRequest,
      dev.cairn.v1.ClearResponse> getClearMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Clear",
      requestType = dev.cairn.v1.ClearRequest.class,
      responseType = dev.cairn.v1.ClearResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.ClearRequest,
      dev.cairn.v1.ClearResponse> getClearMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.ClearRequest, dev.cairn.v1.ClearResponse> getClearMethod;
    if ((getClearMethod = CheckpointStoreGrpc.getClearMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getClearMethod = CheckpointStoreGrpc.getClearMethod) == null) {
          CheckpointStoreGrpc.getClearMethod = getClearMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.ClearRequest, dev.cairn.v1.ClearResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Clear"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.ClearRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.ClearResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("Clear"))
              .build();
        }
      }
    }
    return getClearMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.PutWritesRequest,
      dev.cairn.v1.PutWritesResponse> getPutWritesMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "PutWrites",
      requestType = dev.cairn.v1.PutWritesRequest.class,
      responseType = dev.cairn.v1.PutWritesResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.PutWritesRequest,
      dev.cairn.v1.PutWritesResponse> getPutWritesMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.PutWritesRequest, dev.cairn.v1.PutWritesResponse> getPutWritesMethod;
    if ((getPutWritesMethod = CheckpointStoreGrpc.getPutWritesMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getPutWritesMethod = CheckpointStoreGrpc.getPutWritesMethod) == null) {
          CheckpointStoreGrpc.getPutWritesMethod = getPutWritesMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.PutWritesRequest, dev.cairn.v1.PutWritesResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "PutWrites"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.PutWritesRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.PutWritesResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("PutWrites"))
              .build();
        }
      }
    }
    return getPutWritesMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.CopyThreadRequest,
      dev.cairn.v1.CopyThreadResponse> getCopyThreadMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "CopyThread",
      requestType = dev.cairn.v1.CopyThreadRequest.class,
      responseType = dev.cairn.v1.CopyThreadResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.CopyThreadRequest,
      dev.cairn.v1.CopyThreadResponse> getCopyThreadMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.CopyThreadRequest, dev.cairn.v1.CopyThreadResponse> getCopyThreadMethod;
    if ((getCopyThreadMethod = CheckpointStoreGrpc.getCopyThreadMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getCopyThreadMethod = CheckpointStoreGrpc.getCopyThreadMethod) == null) {
          CheckpointStoreGrpc.getCopyThreadMethod = getCopyThreadMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.CopyThreadRequest, dev.cairn.v1.CopyThreadResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "CopyThread"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.CopyThreadRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.CopyThreadResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("CopyThread"))
              .build();
        }
      }
    }
    return getCopyThreadMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.PruneRequest,
      dev.cairn.v1.PruneResponse> getPruneMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Prune",
      requestType = dev.cairn.v1.PruneRequest.class,
      responseType = dev.cairn.v1.PruneResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.PruneRequest,
      dev.cairn.v1.PruneResponse> getPruneMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.PruneRequest, dev.cairn.v1.PruneResponse> getPruneMethod;
    if ((getPruneMethod = CheckpointStoreGrpc.getPruneMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getPruneMethod = CheckpointStoreGrpc.getPruneMethod) == null) {
          CheckpointStoreGrpc.getPruneMethod = getPruneMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.PruneRequest, dev.cairn.v1.PruneResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Prune"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.PruneRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.PruneResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("Prune"))
              .build();
        }
      }
    }
    return getPruneMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.DeleteRunsRequest,
      dev.cairn.v1.DeleteRunsResponse> getDeleteRunsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "DeleteRuns",
      requestType = dev.cairn.v1.DeleteRunsRequest.class,
      responseType = dev.cairn.v1.DeleteRunsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.DeleteRunsRequest,
      dev.cairn.v1.DeleteRunsResponse> getDeleteRunsMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.DeleteRunsRequest, dev.cairn.v1.DeleteRunsResponse> getDeleteRunsMethod;
    if ((getDeleteRunsMethod = CheckpointStoreGrpc.getDeleteRunsMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getDeleteRunsMethod = CheckpointStoreGrpc.getDeleteRunsMethod) == null) {
          CheckpointStoreGrpc.getDeleteRunsMethod = getDeleteRunsMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.DeleteRunsRequest, dev.cairn.v1.DeleteRunsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "DeleteRuns"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.DeleteRunsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.DeleteRunsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("DeleteRuns"))
              .build();
        }
      }
    }
    return getDeleteRunsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.StartRunRequest,
      dev.cairn.v1.StartRunResponse> getStartRunMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "StartRun",
      requestType = dev.cairn.v1.StartRunRequest.class,
      responseType = dev.cairn.v1.StartRunResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.StartRunRequest,
      dev.cairn.v1.StartRunResponse> getStartRunMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.StartRunRequest, dev.cairn.v1.StartRunResponse> getStartRunMethod;
    if ((getStartRunMethod = CheckpointStoreGrpc.getStartRunMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getStartRunMethod = CheckpointStoreGrpc.getStartRunMethod) == null) {
          CheckpointStoreGrpc.getStartRunMethod = getStartRunMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.StartRunRequest, dev.cairn.v1.StartRunResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "StartRun"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.StartRunRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.StartRunResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("StartRun"))
              .build();
        }
      }
    }
    return getStartRunMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.ClaimRunRequest,
      dev.cairn.v1.ClaimRunResponse> getClaimRunMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ClaimRun",
      requestType = dev.cairn.v1.ClaimRunRequest.class,
      responseType = dev.cairn.v1.ClaimRunResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.ClaimRunRequest,
      dev.cairn.v1.ClaimRunResponse> getClaimRunMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.ClaimRunRequest, dev.cairn.v1.ClaimRunResponse> getClaimRunMethod;
    if ((getClaimRunMethod = CheckpointStoreGrpc.getClaimRunMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getClaimRunMethod = CheckpointStoreGrpc.getClaimRunMethod) == null) {
          CheckpointStoreGrpc.getClaimRunMethod = getClaimRunMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.ClaimRunRequest, dev.cairn.v1.ClaimRunResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ClaimRun"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.ClaimRunRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.ClaimRunResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("ClaimRun"))
              .build();
        }
      }
    }
    return getClaimRunMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.HeartbeatRequest,
      dev.cairn.v1.HeartbeatResponse> getHeartbeatMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Heartbeat",
      requestType = dev.cairn.v1.HeartbeatRequest.class,
      responseType = dev.cairn.v1.HeartbeatResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.HeartbeatRequest,
      dev.cairn.v1.HeartbeatResponse> getHeartbeatMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.HeartbeatRequest, dev.cairn.v1.HeartbeatResponse> getHeartbeatMethod;
    if ((getHeartbeatMethod = CheckpointStoreGrpc.getHeartbeatMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getHeartbeatMethod = CheckpointStoreGrpc.getHeartbeatMethod) == null) {
          CheckpointStoreGrpc.getHeartbeatMethod = getHeartbeatMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.HeartbeatRequest, dev.cairn.v1.HeartbeatResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Heartbeat"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.HeartbeatRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.HeartbeatResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("Heartbeat"))
              .build();
        }
      }
    }
    return getHeartbeatMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.CompleteRunRequest,
      dev.cairn.v1.CompleteRunResponse> getCompleteRunMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "CompleteRun",
      requestType = dev.cairn.v1.CompleteRunRequest.class,
      responseType = dev.cairn.v1.CompleteRunResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.CompleteRunRequest,
      dev.cairn.v1.CompleteRunResponse> getCompleteRunMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.CompleteRunRequest, dev.cairn.v1.CompleteRunResponse> getCompleteRunMethod;
    if ((getCompleteRunMethod = CheckpointStoreGrpc.getCompleteRunMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getCompleteRunMethod = CheckpointStoreGrpc.getCompleteRunMethod) == null) {
          CheckpointStoreGrpc.getCompleteRunMethod = getCompleteRunMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.CompleteRunRequest, dev.cairn.v1.CompleteRunResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "CompleteRun"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.CompleteRunRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.CompleteRunResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("CompleteRun"))
              .build();
        }
      }
    }
    return getCompleteRunMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.FailRunRequest,
      dev.cairn.v1.FailRunResponse> getFailRunMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "FailRun",
      requestType = dev.cairn.v1.FailRunRequest.class,
      responseType = dev.cairn.v1.FailRunResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.FailRunRequest,
      dev.cairn.v1.FailRunResponse> getFailRunMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.FailRunRequest, dev.cairn.v1.FailRunResponse> getFailRunMethod;
    if ((getFailRunMethod = CheckpointStoreGrpc.getFailRunMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getFailRunMethod = CheckpointStoreGrpc.getFailRunMethod) == null) {
          CheckpointStoreGrpc.getFailRunMethod = getFailRunMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.FailRunRequest, dev.cairn.v1.FailRunResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "FailRun"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.FailRunRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.FailRunResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("FailRun"))
              .build();
        }
      }
    }
    return getFailRunMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.CancelRunRequest,
      dev.cairn.v1.CancelRunResponse> getCancelRunMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "CancelRun",
      requestType = dev.cairn.v1.CancelRunRequest.class,
      responseType = dev.cairn.v1.CancelRunResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.CancelRunRequest,
      dev.cairn.v1.CancelRunResponse> getCancelRunMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.CancelRunRequest, dev.cairn.v1.CancelRunResponse> getCancelRunMethod;
    if ((getCancelRunMethod = CheckpointStoreGrpc.getCancelRunMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getCancelRunMethod = CheckpointStoreGrpc.getCancelRunMethod) == null) {
          CheckpointStoreGrpc.getCancelRunMethod = getCancelRunMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.CancelRunRequest, dev.cairn.v1.CancelRunResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "CancelRun"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.CancelRunRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.CancelRunResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("CancelRun"))
              .build();
        }
      }
    }
    return getCancelRunMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.GetRunRequest,
      dev.cairn.v1.GetRunResponse> getGetRunMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetRun",
      requestType = dev.cairn.v1.GetRunRequest.class,
      responseType = dev.cairn.v1.GetRunResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.GetRunRequest,
      dev.cairn.v1.GetRunResponse> getGetRunMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.GetRunRequest, dev.cairn.v1.GetRunResponse> getGetRunMethod;
    if ((getGetRunMethod = CheckpointStoreGrpc.getGetRunMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getGetRunMethod = CheckpointStoreGrpc.getGetRunMethod) == null) {
          CheckpointStoreGrpc.getGetRunMethod = getGetRunMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.GetRunRequest, dev.cairn.v1.GetRunResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetRun"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.GetRunRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.GetRunResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("GetRun"))
              .build();
        }
      }
    }
    return getGetRunMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.cairn.v1.ListRunsRequest,
      dev.cairn.v1.ListRunsResponse> getListRunsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListRuns",
      requestType = dev.cairn.v1.ListRunsRequest.class,
      responseType = dev.cairn.v1.ListRunsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.cairn.v1.ListRunsRequest,
      dev.cairn.v1.ListRunsResponse> getListRunsMethod() {
    io.grpc.MethodDescriptor<dev.cairn.v1.ListRunsRequest, dev.cairn.v1.ListRunsResponse> getListRunsMethod;
    if ((getListRunsMethod = CheckpointStoreGrpc.getListRunsMethod) == null) {
      synchronized (CheckpointStoreGrpc.class) {
        if ((getListRunsMethod = CheckpointStoreGrpc.getListRunsMethod) == null) {
          CheckpointStoreGrpc.getListRunsMethod = getListRunsMethod =
              io.grpc.MethodDescriptor.<dev.cairn.v1.ListRunsRequest, dev.cairn.v1.ListRunsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListRuns"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.ListRunsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.cairn.v1.ListRunsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CheckpointStoreMethodDescriptorSupplier("ListRuns"))
              .build();
        }
      }
    }
    return getListRunsMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static CheckpointStoreStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<CheckpointStoreStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<CheckpointStoreStub>() {
        @java.lang.Override
        public CheckpointStoreStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new CheckpointStoreStub(channel, callOptions);
        }
      };
    return CheckpointStoreStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static CheckpointStoreBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<CheckpointStoreBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<CheckpointStoreBlockingV2Stub>() {
        @java.lang.Override
        public CheckpointStoreBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new CheckpointStoreBlockingV2Stub(channel, callOptions);
        }
      };
    return CheckpointStoreBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static CheckpointStoreBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<CheckpointStoreBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<CheckpointStoreBlockingStub>() {
        @java.lang.Override
        public CheckpointStoreBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new CheckpointStoreBlockingStub(channel, callOptions);
        }
      };
    return CheckpointStoreBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static CheckpointStoreFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<CheckpointStoreFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<CheckpointStoreFutureStub>() {
        @java.lang.Override
        public CheckpointStoreFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new CheckpointStoreFutureStub(channel, callOptions);
        }
      };
    return CheckpointStoreFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * CheckpointStore keeps the checkpoints and pending writes of graph threads.
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Save stores one checkpoint and makes it the head of its (thread, namespace).
     * Acknowledged only after the cold store committed it (DURABILITY_SYNC).
     * Fails with INVALID_ARGUMENT, ALREADY_EXISTS, ABORTED, RESOURCE_EXHAUSTED,
     * UNAVAILABLE.
     * </pre>
     */
    default void save(dev.cairn.v1.SaveRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.SaveResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getSaveMethod(), responseObserver);
    }

    /**
     * <pre>
     * SaveStream saves many checkpoints over one stream. Responses come back in
     * request order, one per request, each sent after that save committed; a
     * failed item is reported in its response and does not end the stream.
     * The stream itself fails only with UNAVAILABLE or UNAUTHENTICATED.
     * </pre>
     */
    default io.grpc.stub.StreamObserver<dev.cairn.v1.SaveStreamRequest> saveStream(
        io.grpc.stub.StreamObserver<dev.cairn.v1.SaveStreamResponse> responseObserver) {
      return io.grpc.stub.ServerCalls.asyncUnimplementedStreamingCall(getSaveStreamMethod(), responseObserver);
    }

    /**
     * <pre>
     * SaveBatch runs many saves in one call, each under the rules of the unary
     * Save and each acknowledged only after its commit. The server commits them
     * in as few transactions as it can, sharing them with concurrent calls, but
     * the batch is not atomic: each save gets its own result, in request order,
     * and one failed save (ABORTED, ALREADY_EXISTS, ...) does not fail the rest.
     * Saves of one (thread_id, namespace) apply in request order. Clients use it
     * to carry the saves of many concurrent graphs in one message: one round
     * trip instead of one each. Fails as a whole only with INVALID_ARGUMENT (more
     * items than the server's max batch), RESOURCE_EXHAUSTED (a message over the
     * server's size limit), UNAVAILABLE or UNAUTHENTICATED; after
     * UNAVAILABLE some of the saves may have committed, so retry with the same
     * checkpoint ids (a retried save that did commit answers already_existed).
     * </pre>
     */
    default void saveBatch(dev.cairn.v1.SaveBatchRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.SaveBatchResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getSaveBatchMethod(), responseObserver);
    }

    /**
     * <pre>
     * Load returns one checkpoint (the head when no checkpoint_id is given) and
     * its pending writes. Fails with INVALID_ARGUMENT, NOT_FOUND, DATA_LOSS,
     * UNAVAILABLE.
     * </pre>
     */
    default void load(dev.cairn.v1.LoadRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.LoadResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getLoadMethod(), responseObserver);
    }

    /**
     * <pre>
     * BatchLoad runs up to `max_batch` Loads in one call; each result carries its
     * own status, so one missing checkpoint does not fail the batch.
     * Fails as a whole only with INVALID_ARGUMENT (too many items) or UNAVAILABLE.
     * </pre>
     */
    default void batchLoad(dev.cairn.v1.BatchLoadRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.BatchLoadResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getBatchLoadMethod(), responseObserver);
    }

    /**
     * <pre>
     * List returns checkpoints newest first, paginated (AIP-158).
     * Fails with INVALID_ARGUMENT (bad filter, page size or token), UNAVAILABLE.
     * </pre>
     */
    default void list(dev.cairn.v1.ListRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.ListResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListMethod(), responseObserver);
    }

    /**
     * <pre>
     * ListThreads returns the caller's threads, most recently updated first.
     * Fails with INVALID_ARGUMENT (bad page size or token), UNAVAILABLE.
     * </pre>
     */
    default void listThreads(dev.cairn.v1.ListThreadsRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.ListThreadsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListThreadsMethod(), responseObserver);
    }

    /**
     * <pre>
     * Delete removes one checkpoint and its pending writes. Deleting a
     * checkpoint that does not exist succeeds with deleted = false, so a retry
     * is safe. Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    default void delete(dev.cairn.v1.DeleteRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.DeleteResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getDeleteMethod(), responseObserver);
    }

    /**
     * <pre>
     * Clear removes a whole thread (every namespace) with its writes.
     * Idempotent. Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    default void clear(dev.cairn.v1.ClearRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.ClearResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getClearMethod(), responseObserver);
    }

    /**
     * <pre>
     * PutWrites stores the pending writes of one task, attached to a checkpoint.
     * Re-sending the same (task_id, idx) with the same value is a no-op; with a
     * different value it is ALREADY_EXISTS unless `replace` is set.
     * Fails with INVALID_ARGUMENT, NOT_FOUND (no such checkpoint),
     * ALREADY_EXISTS, RESOURCE_EXHAUSTED, UNAVAILABLE.
     * </pre>
     */
    default void putWrites(dev.cairn.v1.PutWritesRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.PutWritesResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getPutWritesMethod(), responseObserver);
    }

    /**
     * <pre>
     * CopyThread copies every checkpoint (all namespaces) and its writes from one
     * thread to another, keeping ids, parents and order. The target must be
     * empty. Fails with INVALID_ARGUMENT, ABORTED (target not empty), UNAVAILABLE.
     * </pre>
     */
    default void copyThread(dev.cairn.v1.CopyThreadRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.CopyThreadResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getCopyThreadMethod(), responseObserver);
    }

    /**
     * <pre>
     * Prune thins out threads: keep the newest checkpoints of each namespace
     * (following the head's parent chain) or delete everything.
     * Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    default void prune(dev.cairn.v1.PruneRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.PruneResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getPruneMethod(), responseObserver);
    }

    /**
     * <pre>
     * DeleteRuns removes every checkpoint (and its writes) whose metadata
     * `run_id` is one of the given run ids, in every thread of the tenant.
     * Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    default void deleteRuns(dev.cairn.v1.DeleteRunsRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.DeleteRunsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getDeleteRunsMethod(), responseObserver);
    }

    /**
     * <pre>
     * StartRun creates a PENDING run on a queue. Setting run_id makes it
     * idempotent: an identical retry returns the stored run (already_existed).
     * Fails with INVALID_ARGUMENT, ALREADY_EXISTS (RUN_ID_CONFLICT),
     * FAILED_PRECONDITION (THREAD_BUSY), UNAVAILABLE.
     * </pre>
     */
    default void startRun(dev.cairn.v1.StartRunRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.StartRunResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getStartRunMethod(), responseObserver);
    }

    /**
     * <pre>
     * ClaimRun hands the caller the oldest claimable run of a queue (a PENDING
     * run whose backoff has passed, or an abandoned RUNNING one) with a new
     * lease whose epoch is higher than any before it for that run. Long-poll:
     * when none is claimable it waits up to wait_ms (bounded by the call's
     * deadline) for one, and returns an empty response if none came.
     * Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    default void claimRun(dev.cairn.v1.ClaimRunRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.ClaimRunResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getClaimRunMethod(), responseObserver);
    }

    /**
     * <pre>
     * Heartbeat extends the caller's lease. Fails with INVALID_ARGUMENT,
     * NOT_FOUND (RUN_NOT_FOUND), ABORTED (LEASE_LOST, RUN_CANCELLED,
     * RUN_TIMED_OUT: stop working on the run), UNAVAILABLE.
     * </pre>
     */
    default void heartbeat(dev.cairn.v1.HeartbeatRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.HeartbeatResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getHeartbeatMethod(), responseObserver);
    }

    /**
     * <pre>
     * CompleteRun ends the caller's attempt with success: the run becomes
     * COMPLETED, or INTERRUPTED when `interrupted` is set (the graph waits for a
     * human; a new StartRun on the thread resumes it). Fails with
     * INVALID_ARGUMENT, NOT_FOUND (RUN_NOT_FOUND), ABORTED (LEASE_LOST,
     * RUN_CANCELLED, RUN_TIMED_OUT), UNAVAILABLE.
     * </pre>
     */
    default void completeRun(dev.cairn.v1.CompleteRunRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.CompleteRunResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getCompleteRunMethod(), responseObserver);
    }

    /**
     * <pre>
     * FailRun ends the caller's attempt with an error. A retryable error with
     * attempts left under the run's RetryPolicy puts the run back to PENDING,
     * claimable after the backoff; otherwise the run is FAILED with this error.
     * Fails with INVALID_ARGUMENT, NOT_FOUND (RUN_NOT_FOUND), ABORTED
     * (LEASE_LOST, RUN_CANCELLED, RUN_TIMED_OUT), UNAVAILABLE.
     * </pre>
     */
    default void failRun(dev.cairn.v1.FailRunRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.FailRunResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getFailRunMethod(), responseObserver);
    }

    /**
     * <pre>
     * CancelRun cancels a run. A PENDING or INTERRUPTED run (or a RUNNING one
     * whose lease expired) is CANCELLED at once; a RUNNING one is marked
     * cancel_requested and becomes CANCELLED when its worker's next heartbeat or
     * leased write sees it (that call fails with RUN_CANCELLED, and the worker
     * stops at the step boundary), or when its lease expires. Cancelling a
     * CANCELLED run succeeds and changes nothing. Fails with INVALID_ARGUMENT,
     * NOT_FOUND (RUN_NOT_FOUND), FAILED_PRECONDITION (RUN_FINISHED),
     * UNAVAILABLE.
     * </pre>
     */
    default void cancelRun(dev.cairn.v1.CancelRunRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.CancelRunResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getCancelRunMethod(), responseObserver);
    }

    /**
     * <pre>
     * GetRun returns one run with its attempts. Fails with INVALID_ARGUMENT,
     * NOT_FOUND (RUN_NOT_FOUND), UNAVAILABLE.
     * </pre>
     */
    default void getRun(dev.cairn.v1.GetRunRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.GetRunResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetRunMethod(), responseObserver);
    }

    /**
     * <pre>
     * ListRuns returns runs newest first, filtered by status, queue, thread and
     * creation time, paginated (AIP-158). Attempts are left out (GetRun has
     * them). Fails with INVALID_ARGUMENT (bad filter, page size or token),
     * UNAVAILABLE.
     * </pre>
     */
    default void listRuns(dev.cairn.v1.ListRunsRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.ListRunsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListRunsMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service CheckpointStore.
   * <pre>
   * CheckpointStore keeps the checkpoints and pending writes of graph threads.
   * </pre>
   */
  public static abstract class CheckpointStoreImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return CheckpointStoreGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service CheckpointStore.
   * <pre>
   * CheckpointStore keeps the checkpoints and pending writes of graph threads.
   * </pre>
   */
  public static final class CheckpointStoreStub
      extends io.grpc.stub.AbstractAsyncStub<CheckpointStoreStub> {
    private CheckpointStoreStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected CheckpointStoreStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new CheckpointStoreStub(channel, callOptions);
    }

    /**
     * <pre>
     * Save stores one checkpoint and makes it the head of its (thread, namespace).
     * Acknowledged only after the cold store committed it (DURABILITY_SYNC).
     * Fails with INVALID_ARGUMENT, ALREADY_EXISTS, ABORTED, RESOURCE_EXHAUSTED,
     * UNAVAILABLE.
     * </pre>
     */
    public void save(dev.cairn.v1.SaveRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.SaveResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getSaveMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * SaveStream saves many checkpoints over one stream. Responses come back in
     * request order, one per request, each sent after that save committed; a
     * failed item is reported in its response and does not end the stream.
     * The stream itself fails only with UNAVAILABLE or UNAUTHENTICATED.
     * </pre>
     */
    public io.grpc.stub.StreamObserver<dev.cairn.v1.SaveStreamRequest> saveStream(
        io.grpc.stub.StreamObserver<dev.cairn.v1.SaveStreamResponse> responseObserver) {
      return io.grpc.stub.ClientCalls.asyncBidiStreamingCall(
          getChannel().newCall(getSaveStreamMethod(), getCallOptions()), responseObserver);
    }

    /**
     * <pre>
     * SaveBatch runs many saves in one call, each under the rules of the unary
     * Save and each acknowledged only after its commit. The server commits them
     * in as few transactions as it can, sharing them with concurrent calls, but
     * the batch is not atomic: each save gets its own result, in request order,
     * and one failed save (ABORTED, ALREADY_EXISTS, ...) does not fail the rest.
     * Saves of one (thread_id, namespace) apply in request order. Clients use it
     * to carry the saves of many concurrent graphs in one message: one round
     * trip instead of one each. Fails as a whole only with INVALID_ARGUMENT (more
     * items than the server's max batch), RESOURCE_EXHAUSTED (a message over the
     * server's size limit), UNAVAILABLE or UNAUTHENTICATED; after
     * UNAVAILABLE some of the saves may have committed, so retry with the same
     * checkpoint ids (a retried save that did commit answers already_existed).
     * </pre>
     */
    public void saveBatch(dev.cairn.v1.SaveBatchRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.SaveBatchResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getSaveBatchMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Load returns one checkpoint (the head when no checkpoint_id is given) and
     * its pending writes. Fails with INVALID_ARGUMENT, NOT_FOUND, DATA_LOSS,
     * UNAVAILABLE.
     * </pre>
     */
    public void load(dev.cairn.v1.LoadRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.LoadResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getLoadMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * BatchLoad runs up to `max_batch` Loads in one call; each result carries its
     * own status, so one missing checkpoint does not fail the batch.
     * Fails as a whole only with INVALID_ARGUMENT (too many items) or UNAVAILABLE.
     * </pre>
     */
    public void batchLoad(dev.cairn.v1.BatchLoadRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.BatchLoadResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getBatchLoadMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * List returns checkpoints newest first, paginated (AIP-158).
     * Fails with INVALID_ARGUMENT (bad filter, page size or token), UNAVAILABLE.
     * </pre>
     */
    public void list(dev.cairn.v1.ListRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.ListResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * ListThreads returns the caller's threads, most recently updated first.
     * Fails with INVALID_ARGUMENT (bad page size or token), UNAVAILABLE.
     * </pre>
     */
    public void listThreads(dev.cairn.v1.ListThreadsRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.ListThreadsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListThreadsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Delete removes one checkpoint and its pending writes. Deleting a
     * checkpoint that does not exist succeeds with deleted = false, so a retry
     * is safe. Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public void delete(dev.cairn.v1.DeleteRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.DeleteResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getDeleteMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Clear removes a whole thread (every namespace) with its writes.
     * Idempotent. Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public void clear(dev.cairn.v1.ClearRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.ClearResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getClearMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * PutWrites stores the pending writes of one task, attached to a checkpoint.
     * Re-sending the same (task_id, idx) with the same value is a no-op; with a
     * different value it is ALREADY_EXISTS unless `replace` is set.
     * Fails with INVALID_ARGUMENT, NOT_FOUND (no such checkpoint),
     * ALREADY_EXISTS, RESOURCE_EXHAUSTED, UNAVAILABLE.
     * </pre>
     */
    public void putWrites(dev.cairn.v1.PutWritesRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.PutWritesResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getPutWritesMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * CopyThread copies every checkpoint (all namespaces) and its writes from one
     * thread to another, keeping ids, parents and order. The target must be
     * empty. Fails with INVALID_ARGUMENT, ABORTED (target not empty), UNAVAILABLE.
     * </pre>
     */
    public void copyThread(dev.cairn.v1.CopyThreadRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.CopyThreadResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getCopyThreadMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Prune thins out threads: keep the newest checkpoints of each namespace
     * (following the head's parent chain) or delete everything.
     * Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public void prune(dev.cairn.v1.PruneRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.PruneResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getPruneMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * DeleteRuns removes every checkpoint (and its writes) whose metadata
     * `run_id` is one of the given run ids, in every thread of the tenant.
     * Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public void deleteRuns(dev.cairn.v1.DeleteRunsRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.DeleteRunsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getDeleteRunsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * StartRun creates a PENDING run on a queue. Setting run_id makes it
     * idempotent: an identical retry returns the stored run (already_existed).
     * Fails with INVALID_ARGUMENT, ALREADY_EXISTS (RUN_ID_CONFLICT),
     * FAILED_PRECONDITION (THREAD_BUSY), UNAVAILABLE.
     * </pre>
     */
    public void startRun(dev.cairn.v1.StartRunRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.StartRunResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getStartRunMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * ClaimRun hands the caller the oldest claimable run of a queue (a PENDING
     * run whose backoff has passed, or an abandoned RUNNING one) with a new
     * lease whose epoch is higher than any before it for that run. Long-poll:
     * when none is claimable it waits up to wait_ms (bounded by the call's
     * deadline) for one, and returns an empty response if none came.
     * Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public void claimRun(dev.cairn.v1.ClaimRunRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.ClaimRunResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getClaimRunMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Heartbeat extends the caller's lease. Fails with INVALID_ARGUMENT,
     * NOT_FOUND (RUN_NOT_FOUND), ABORTED (LEASE_LOST, RUN_CANCELLED,
     * RUN_TIMED_OUT: stop working on the run), UNAVAILABLE.
     * </pre>
     */
    public void heartbeat(dev.cairn.v1.HeartbeatRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.HeartbeatResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getHeartbeatMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * CompleteRun ends the caller's attempt with success: the run becomes
     * COMPLETED, or INTERRUPTED when `interrupted` is set (the graph waits for a
     * human; a new StartRun on the thread resumes it). Fails with
     * INVALID_ARGUMENT, NOT_FOUND (RUN_NOT_FOUND), ABORTED (LEASE_LOST,
     * RUN_CANCELLED, RUN_TIMED_OUT), UNAVAILABLE.
     * </pre>
     */
    public void completeRun(dev.cairn.v1.CompleteRunRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.CompleteRunResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getCompleteRunMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * FailRun ends the caller's attempt with an error. A retryable error with
     * attempts left under the run's RetryPolicy puts the run back to PENDING,
     * claimable after the backoff; otherwise the run is FAILED with this error.
     * Fails with INVALID_ARGUMENT, NOT_FOUND (RUN_NOT_FOUND), ABORTED
     * (LEASE_LOST, RUN_CANCELLED, RUN_TIMED_OUT), UNAVAILABLE.
     * </pre>
     */
    public void failRun(dev.cairn.v1.FailRunRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.FailRunResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getFailRunMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * CancelRun cancels a run. A PENDING or INTERRUPTED run (or a RUNNING one
     * whose lease expired) is CANCELLED at once; a RUNNING one is marked
     * cancel_requested and becomes CANCELLED when its worker's next heartbeat or
     * leased write sees it (that call fails with RUN_CANCELLED, and the worker
     * stops at the step boundary), or when its lease expires. Cancelling a
     * CANCELLED run succeeds and changes nothing. Fails with INVALID_ARGUMENT,
     * NOT_FOUND (RUN_NOT_FOUND), FAILED_PRECONDITION (RUN_FINISHED),
     * UNAVAILABLE.
     * </pre>
     */
    public void cancelRun(dev.cairn.v1.CancelRunRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.CancelRunResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getCancelRunMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * GetRun returns one run with its attempts. Fails with INVALID_ARGUMENT,
     * NOT_FOUND (RUN_NOT_FOUND), UNAVAILABLE.
     * </pre>
     */
    public void getRun(dev.cairn.v1.GetRunRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.GetRunResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetRunMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * ListRuns returns runs newest first, filtered by status, queue, thread and
     * creation time, paginated (AIP-158). Attempts are left out (GetRun has
     * them). Fails with INVALID_ARGUMENT (bad filter, page size or token),
     * UNAVAILABLE.
     * </pre>
     */
    public void listRuns(dev.cairn.v1.ListRunsRequest request,
        io.grpc.stub.StreamObserver<dev.cairn.v1.ListRunsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListRunsMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service CheckpointStore.
   * <pre>
   * CheckpointStore keeps the checkpoints and pending writes of graph threads.
   * </pre>
   */
  public static final class CheckpointStoreBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<CheckpointStoreBlockingV2Stub> {
    private CheckpointStoreBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected CheckpointStoreBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new CheckpointStoreBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Save stores one checkpoint and makes it the head of its (thread, namespace).
     * Acknowledged only after the cold store committed it (DURABILITY_SYNC).
     * Fails with INVALID_ARGUMENT, ALREADY_EXISTS, ABORTED, RESOURCE_EXHAUSTED,
     * UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.SaveResponse save(dev.cairn.v1.SaveRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getSaveMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * SaveStream saves many checkpoints over one stream. Responses come back in
     * request order, one per request, each sent after that save committed; a
     * failed item is reported in its response and does not end the stream.
     * The stream itself fails only with UNAVAILABLE or UNAUTHENTICATED.
     * </pre>
     */
    @io.grpc.ExperimentalApi("https://github.com/grpc/grpc-java/issues/10918")
    public io.grpc.stub.BlockingClientCall<dev.cairn.v1.SaveStreamRequest, dev.cairn.v1.SaveStreamResponse>
        saveStream() {
      return io.grpc.stub.ClientCalls.blockingBidiStreamingCall(
          getChannel(), getSaveStreamMethod(), getCallOptions());
    }

    /**
     * <pre>
     * SaveBatch runs many saves in one call, each under the rules of the unary
     * Save and each acknowledged only after its commit. The server commits them
     * in as few transactions as it can, sharing them with concurrent calls, but
     * the batch is not atomic: each save gets its own result, in request order,
     * and one failed save (ABORTED, ALREADY_EXISTS, ...) does not fail the rest.
     * Saves of one (thread_id, namespace) apply in request order. Clients use it
     * to carry the saves of many concurrent graphs in one message: one round
     * trip instead of one each. Fails as a whole only with INVALID_ARGUMENT (more
     * items than the server's max batch), RESOURCE_EXHAUSTED (a message over the
     * server's size limit), UNAVAILABLE or UNAUTHENTICATED; after
     * UNAVAILABLE some of the saves may have committed, so retry with the same
     * checkpoint ids (a retried save that did commit answers already_existed).
     * </pre>
     */
    public dev.cairn.v1.SaveBatchResponse saveBatch(dev.cairn.v1.SaveBatchRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getSaveBatchMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Load returns one checkpoint (the head when no checkpoint_id is given) and
     * its pending writes. Fails with INVALID_ARGUMENT, NOT_FOUND, DATA_LOSS,
     * UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.LoadResponse load(dev.cairn.v1.LoadRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getLoadMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * BatchLoad runs up to `max_batch` Loads in one call; each result carries its
     * own status, so one missing checkpoint does not fail the batch.
     * Fails as a whole only with INVALID_ARGUMENT (too many items) or UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.BatchLoadResponse batchLoad(dev.cairn.v1.BatchLoadRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getBatchLoadMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * List returns checkpoints newest first, paginated (AIP-158).
     * Fails with INVALID_ARGUMENT (bad filter, page size or token), UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.ListResponse list(dev.cairn.v1.ListRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ListThreads returns the caller's threads, most recently updated first.
     * Fails with INVALID_ARGUMENT (bad page size or token), UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.ListThreadsResponse listThreads(dev.cairn.v1.ListThreadsRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListThreadsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Delete removes one checkpoint and its pending writes. Deleting a
     * checkpoint that does not exist succeeds with deleted = false, so a retry
     * is safe. Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.DeleteResponse delete(dev.cairn.v1.DeleteRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getDeleteMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Clear removes a whole thread (every namespace) with its writes.
     * Idempotent. Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.ClearResponse clear(dev.cairn.v1.ClearRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getClearMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * PutWrites stores the pending writes of one task, attached to a checkpoint.
     * Re-sending the same (task_id, idx) with the same value is a no-op; with a
     * different value it is ALREADY_EXISTS unless `replace` is set.
     * Fails with INVALID_ARGUMENT, NOT_FOUND (no such checkpoint),
     * ALREADY_EXISTS, RESOURCE_EXHAUSTED, UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.PutWritesResponse putWrites(dev.cairn.v1.PutWritesRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getPutWritesMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * CopyThread copies every checkpoint (all namespaces) and its writes from one
     * thread to another, keeping ids, parents and order. The target must be
     * empty. Fails with INVALID_ARGUMENT, ABORTED (target not empty), UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.CopyThreadResponse copyThread(dev.cairn.v1.CopyThreadRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getCopyThreadMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Prune thins out threads: keep the newest checkpoints of each namespace
     * (following the head's parent chain) or delete everything.
     * Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.PruneResponse prune(dev.cairn.v1.PruneRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getPruneMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * DeleteRuns removes every checkpoint (and its writes) whose metadata
     * `run_id` is one of the given run ids, in every thread of the tenant.
     * Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.DeleteRunsResponse deleteRuns(dev.cairn.v1.DeleteRunsRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getDeleteRunsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * StartRun creates a PENDING run on a queue. Setting run_id makes it
     * idempotent: an identical retry returns the stored run (already_existed).
     * Fails with INVALID_ARGUMENT, ALREADY_EXISTS (RUN_ID_CONFLICT),
     * FAILED_PRECONDITION (THREAD_BUSY), UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.StartRunResponse startRun(dev.cairn.v1.StartRunRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getStartRunMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ClaimRun hands the caller the oldest claimable run of a queue (a PENDING
     * run whose backoff has passed, or an abandoned RUNNING one) with a new
     * lease whose epoch is higher than any before it for that run. Long-poll:
     * when none is claimable it waits up to wait_ms (bounded by the call's
     * deadline) for one, and returns an empty response if none came.
     * Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.ClaimRunResponse claimRun(dev.cairn.v1.ClaimRunRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getClaimRunMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Heartbeat extends the caller's lease. Fails with INVALID_ARGUMENT,
     * NOT_FOUND (RUN_NOT_FOUND), ABORTED (LEASE_LOST, RUN_CANCELLED,
     * RUN_TIMED_OUT: stop working on the run), UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.HeartbeatResponse heartbeat(dev.cairn.v1.HeartbeatRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getHeartbeatMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * CompleteRun ends the caller's attempt with success: the run becomes
     * COMPLETED, or INTERRUPTED when `interrupted` is set (the graph waits for a
     * human; a new StartRun on the thread resumes it). Fails with
     * INVALID_ARGUMENT, NOT_FOUND (RUN_NOT_FOUND), ABORTED (LEASE_LOST,
     * RUN_CANCELLED, RUN_TIMED_OUT), UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.CompleteRunResponse completeRun(dev.cairn.v1.CompleteRunRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getCompleteRunMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * FailRun ends the caller's attempt with an error. A retryable error with
     * attempts left under the run's RetryPolicy puts the run back to PENDING,
     * claimable after the backoff; otherwise the run is FAILED with this error.
     * Fails with INVALID_ARGUMENT, NOT_FOUND (RUN_NOT_FOUND), ABORTED
     * (LEASE_LOST, RUN_CANCELLED, RUN_TIMED_OUT), UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.FailRunResponse failRun(dev.cairn.v1.FailRunRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getFailRunMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * CancelRun cancels a run. A PENDING or INTERRUPTED run (or a RUNNING one
     * whose lease expired) is CANCELLED at once; a RUNNING one is marked
     * cancel_requested and becomes CANCELLED when its worker's next heartbeat or
     * leased write sees it (that call fails with RUN_CANCELLED, and the worker
     * stops at the step boundary), or when its lease expires. Cancelling a
     * CANCELLED run succeeds and changes nothing. Fails with INVALID_ARGUMENT,
     * NOT_FOUND (RUN_NOT_FOUND), FAILED_PRECONDITION (RUN_FINISHED),
     * UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.CancelRunResponse cancelRun(dev.cairn.v1.CancelRunRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getCancelRunMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GetRun returns one run with its attempts. Fails with INVALID_ARGUMENT,
     * NOT_FOUND (RUN_NOT_FOUND), UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.GetRunResponse getRun(dev.cairn.v1.GetRunRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetRunMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ListRuns returns runs newest first, filtered by status, queue, thread and
     * creation time, paginated (AIP-158). Attempts are left out (GetRun has
     * them). Fails with INVALID_ARGUMENT (bad filter, page size or token),
     * UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.ListRunsResponse listRuns(dev.cairn.v1.ListRunsRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListRunsMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service CheckpointStore.
   * <pre>
   * CheckpointStore keeps the checkpoints and pending writes of graph threads.
   * </pre>
   */
  public static final class CheckpointStoreBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<CheckpointStoreBlockingStub> {
    private CheckpointStoreBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected CheckpointStoreBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new CheckpointStoreBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Save stores one checkpoint and makes it the head of its (thread, namespace).
     * Acknowledged only after the cold store committed it (DURABILITY_SYNC).
     * Fails with INVALID_ARGUMENT, ALREADY_EXISTS, ABORTED, RESOURCE_EXHAUSTED,
     * UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.SaveResponse save(dev.cairn.v1.SaveRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getSaveMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * SaveBatch runs many saves in one call, each under the rules of the unary
     * Save and each acknowledged only after its commit. The server commits them
     * in as few transactions as it can, sharing them with concurrent calls, but
     * the batch is not atomic: each save gets its own result, in request order,
     * and one failed save (ABORTED, ALREADY_EXISTS, ...) does not fail the rest.
     * Saves of one (thread_id, namespace) apply in request order. Clients use it
     * to carry the saves of many concurrent graphs in one message: one round
     * trip instead of one each. Fails as a whole only with INVALID_ARGUMENT (more
     * items than the server's max batch), RESOURCE_EXHAUSTED (a message over the
     * server's size limit), UNAVAILABLE or UNAUTHENTICATED; after
     * UNAVAILABLE some of the saves may have committed, so retry with the same
     * checkpoint ids (a retried save that did commit answers already_existed).
     * </pre>
     */
    public dev.cairn.v1.SaveBatchResponse saveBatch(dev.cairn.v1.SaveBatchRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getSaveBatchMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Load returns one checkpoint (the head when no checkpoint_id is given) and
     * its pending writes. Fails with INVALID_ARGUMENT, NOT_FOUND, DATA_LOSS,
     * UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.LoadResponse load(dev.cairn.v1.LoadRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getLoadMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * BatchLoad runs up to `max_batch` Loads in one call; each result carries its
     * own status, so one missing checkpoint does not fail the batch.
     * Fails as a whole only with INVALID_ARGUMENT (too many items) or UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.BatchLoadResponse batchLoad(dev.cairn.v1.BatchLoadRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getBatchLoadMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * List returns checkpoints newest first, paginated (AIP-158).
     * Fails with INVALID_ARGUMENT (bad filter, page size or token), UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.ListResponse list(dev.cairn.v1.ListRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ListThreads returns the caller's threads, most recently updated first.
     * Fails with INVALID_ARGUMENT (bad page size or token), UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.ListThreadsResponse listThreads(dev.cairn.v1.ListThreadsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListThreadsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Delete removes one checkpoint and its pending writes. Deleting a
     * checkpoint that does not exist succeeds with deleted = false, so a retry
     * is safe. Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.DeleteResponse delete(dev.cairn.v1.DeleteRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getDeleteMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Clear removes a whole thread (every namespace) with its writes.
     * Idempotent. Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.ClearResponse clear(dev.cairn.v1.ClearRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getClearMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * PutWrites stores the pending writes of one task, attached to a checkpoint.
     * Re-sending the same (task_id, idx) with the same value is a no-op; with a
     * different value it is ALREADY_EXISTS unless `replace` is set.
     * Fails with INVALID_ARGUMENT, NOT_FOUND (no such checkpoint),
     * ALREADY_EXISTS, RESOURCE_EXHAUSTED, UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.PutWritesResponse putWrites(dev.cairn.v1.PutWritesRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getPutWritesMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * CopyThread copies every checkpoint (all namespaces) and its writes from one
     * thread to another, keeping ids, parents and order. The target must be
     * empty. Fails with INVALID_ARGUMENT, ABORTED (target not empty), UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.CopyThreadResponse copyThread(dev.cairn.v1.CopyThreadRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getCopyThreadMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Prune thins out threads: keep the newest checkpoints of each namespace
     * (following the head's parent chain) or delete everything.
     * Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.PruneResponse prune(dev.cairn.v1.PruneRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getPruneMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * DeleteRuns removes every checkpoint (and its writes) whose metadata
     * `run_id` is one of the given run ids, in every thread of the tenant.
     * Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.DeleteRunsResponse deleteRuns(dev.cairn.v1.DeleteRunsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getDeleteRunsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * StartRun creates a PENDING run on a queue. Setting run_id makes it
     * idempotent: an identical retry returns the stored run (already_existed).
     * Fails with INVALID_ARGUMENT, ALREADY_EXISTS (RUN_ID_CONFLICT),
     * FAILED_PRECONDITION (THREAD_BUSY), UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.StartRunResponse startRun(dev.cairn.v1.StartRunRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getStartRunMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ClaimRun hands the caller the oldest claimable run of a queue (a PENDING
     * run whose backoff has passed, or an abandoned RUNNING one) with a new
     * lease whose epoch is higher than any before it for that run. Long-poll:
     * when none is claimable it waits up to wait_ms (bounded by the call's
     * deadline) for one, and returns an empty response if none came.
     * Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.ClaimRunResponse claimRun(dev.cairn.v1.ClaimRunRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getClaimRunMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Heartbeat extends the caller's lease. Fails with INVALID_ARGUMENT,
     * NOT_FOUND (RUN_NOT_FOUND), ABORTED (LEASE_LOST, RUN_CANCELLED,
     * RUN_TIMED_OUT: stop working on the run), UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.HeartbeatResponse heartbeat(dev.cairn.v1.HeartbeatRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getHeartbeatMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * CompleteRun ends the caller's attempt with success: the run becomes
     * COMPLETED, or INTERRUPTED when `interrupted` is set (the graph waits for a
     * human; a new StartRun on the thread resumes it). Fails with
     * INVALID_ARGUMENT, NOT_FOUND (RUN_NOT_FOUND), ABORTED (LEASE_LOST,
     * RUN_CANCELLED, RUN_TIMED_OUT), UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.CompleteRunResponse completeRun(dev.cairn.v1.CompleteRunRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getCompleteRunMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * FailRun ends the caller's attempt with an error. A retryable error with
     * attempts left under the run's RetryPolicy puts the run back to PENDING,
     * claimable after the backoff; otherwise the run is FAILED with this error.
     * Fails with INVALID_ARGUMENT, NOT_FOUND (RUN_NOT_FOUND), ABORTED
     * (LEASE_LOST, RUN_CANCELLED, RUN_TIMED_OUT), UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.FailRunResponse failRun(dev.cairn.v1.FailRunRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getFailRunMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * CancelRun cancels a run. A PENDING or INTERRUPTED run (or a RUNNING one
     * whose lease expired) is CANCELLED at once; a RUNNING one is marked
     * cancel_requested and becomes CANCELLED when its worker's next heartbeat or
     * leased write sees it (that call fails with RUN_CANCELLED, and the worker
     * stops at the step boundary), or when its lease expires. Cancelling a
     * CANCELLED run succeeds and changes nothing. Fails with INVALID_ARGUMENT,
     * NOT_FOUND (RUN_NOT_FOUND), FAILED_PRECONDITION (RUN_FINISHED),
     * UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.CancelRunResponse cancelRun(dev.cairn.v1.CancelRunRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getCancelRunMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GetRun returns one run with its attempts. Fails with INVALID_ARGUMENT,
     * NOT_FOUND (RUN_NOT_FOUND), UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.GetRunResponse getRun(dev.cairn.v1.GetRunRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetRunMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ListRuns returns runs newest first, filtered by status, queue, thread and
     * creation time, paginated (AIP-158). Attempts are left out (GetRun has
     * them). Fails with INVALID_ARGUMENT (bad filter, page size or token),
     * UNAVAILABLE.
     * </pre>
     */
    public dev.cairn.v1.ListRunsResponse listRuns(dev.cairn.v1.ListRunsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListRunsMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service CheckpointStore.
   * <pre>
   * CheckpointStore keeps the checkpoints and pending writes of graph threads.
   * </pre>
   */
  public static final class CheckpointStoreFutureStub
      extends io.grpc.stub.AbstractFutureStub<CheckpointStoreFutureStub> {
    private CheckpointStoreFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected CheckpointStoreFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new CheckpointStoreFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Save stores one checkpoint and makes it the head of its (thread, namespace).
     * Acknowledged only after the cold store committed it (DURABILITY_SYNC).
     * Fails with INVALID_ARGUMENT, ALREADY_EXISTS, ABORTED, RESOURCE_EXHAUSTED,
     * UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.SaveResponse> save(
        dev.cairn.v1.SaveRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getSaveMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * SaveBatch runs many saves in one call, each under the rules of the unary
     * Save and each acknowledged only after its commit. The server commits them
     * in as few transactions as it can, sharing them with concurrent calls, but
     * the batch is not atomic: each save gets its own result, in request order,
     * and one failed save (ABORTED, ALREADY_EXISTS, ...) does not fail the rest.
     * Saves of one (thread_id, namespace) apply in request order. Clients use it
     * to carry the saves of many concurrent graphs in one message: one round
     * trip instead of one each. Fails as a whole only with INVALID_ARGUMENT (more
     * items than the server's max batch), RESOURCE_EXHAUSTED (a message over the
     * server's size limit), UNAVAILABLE or UNAUTHENTICATED; after
     * UNAVAILABLE some of the saves may have committed, so retry with the same
     * checkpoint ids (a retried save that did commit answers already_existed).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.SaveBatchResponse> saveBatch(
        dev.cairn.v1.SaveBatchRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getSaveBatchMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Load returns one checkpoint (the head when no checkpoint_id is given) and
     * its pending writes. Fails with INVALID_ARGUMENT, NOT_FOUND, DATA_LOSS,
     * UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.LoadResponse> load(
        dev.cairn.v1.LoadRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getLoadMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * BatchLoad runs up to `max_batch` Loads in one call; each result carries its
     * own status, so one missing checkpoint does not fail the batch.
     * Fails as a whole only with INVALID_ARGUMENT (too many items) or UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.BatchLoadResponse> batchLoad(
        dev.cairn.v1.BatchLoadRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getBatchLoadMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * List returns checkpoints newest first, paginated (AIP-158).
     * Fails with INVALID_ARGUMENT (bad filter, page size or token), UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.ListResponse> list(
        dev.cairn.v1.ListRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * ListThreads returns the caller's threads, most recently updated first.
     * Fails with INVALID_ARGUMENT (bad page size or token), UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.ListThreadsResponse> listThreads(
        dev.cairn.v1.ListThreadsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListThreadsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Delete removes one checkpoint and its pending writes. Deleting a
     * checkpoint that does not exist succeeds with deleted = false, so a retry
     * is safe. Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.DeleteResponse> delete(
        dev.cairn.v1.DeleteRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getDeleteMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Clear removes a whole thread (every namespace) with its writes.
     * Idempotent. Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.ClearResponse> clear(
        dev.cairn.v1.ClearRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getClearMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * PutWrites stores the pending writes of one task, attached to a checkpoint.
     * Re-sending the same (task_id, idx) with the same value is a no-op; with a
     * different value it is ALREADY_EXISTS unless `replace` is set.
     * Fails with INVALID_ARGUMENT, NOT_FOUND (no such checkpoint),
     * ALREADY_EXISTS, RESOURCE_EXHAUSTED, UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.PutWritesResponse> putWrites(
        dev.cairn.v1.PutWritesRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getPutWritesMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * CopyThread copies every checkpoint (all namespaces) and its writes from one
     * thread to another, keeping ids, parents and order. The target must be
     * empty. Fails with INVALID_ARGUMENT, ABORTED (target not empty), UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.CopyThreadResponse> copyThread(
        dev.cairn.v1.CopyThreadRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getCopyThreadMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Prune thins out threads: keep the newest checkpoints of each namespace
     * (following the head's parent chain) or delete everything.
     * Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.PruneResponse> prune(
        dev.cairn.v1.PruneRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getPruneMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * DeleteRuns removes every checkpoint (and its writes) whose metadata
     * `run_id` is one of the given run ids, in every thread of the tenant.
     * Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.DeleteRunsResponse> deleteRuns(
        dev.cairn.v1.DeleteRunsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getDeleteRunsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * StartRun creates a PENDING run on a queue. Setting run_id makes it
     * idempotent: an identical retry returns the stored run (already_existed).
     * Fails with INVALID_ARGUMENT, ALREADY_EXISTS (RUN_ID_CONFLICT),
     * FAILED_PRECONDITION (THREAD_BUSY), UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.StartRunResponse> startRun(
        dev.cairn.v1.StartRunRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getStartRunMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * ClaimRun hands the caller the oldest claimable run of a queue (a PENDING
     * run whose backoff has passed, or an abandoned RUNNING one) with a new
     * lease whose epoch is higher than any before it for that run. Long-poll:
     * when none is claimable it waits up to wait_ms (bounded by the call's
     * deadline) for one, and returns an empty response if none came.
     * Fails with INVALID_ARGUMENT, UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.ClaimRunResponse> claimRun(
        dev.cairn.v1.ClaimRunRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getClaimRunMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Heartbeat extends the caller's lease. Fails with INVALID_ARGUMENT,
     * NOT_FOUND (RUN_NOT_FOUND), ABORTED (LEASE_LOST, RUN_CANCELLED,
     * RUN_TIMED_OUT: stop working on the run), UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.HeartbeatResponse> heartbeat(
        dev.cairn.v1.HeartbeatRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getHeartbeatMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * CompleteRun ends the caller's attempt with success: the run becomes
     * COMPLETED, or INTERRUPTED when `interrupted` is set (the graph waits for a
     * human; a new StartRun on the thread resumes it). Fails with
     * INVALID_ARGUMENT, NOT_FOUND (RUN_NOT_FOUND), ABORTED (LEASE_LOST,
     * RUN_CANCELLED, RUN_TIMED_OUT), UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.CompleteRunResponse> completeRun(
        dev.cairn.v1.CompleteRunRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getCompleteRunMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * FailRun ends the caller's attempt with an error. A retryable error with
     * attempts left under the run's RetryPolicy puts the run back to PENDING,
     * claimable after the backoff; otherwise the run is FAILED with this error.
     * Fails with INVALID_ARGUMENT, NOT_FOUND (RUN_NOT_FOUND), ABORTED
     * (LEASE_LOST, RUN_CANCELLED, RUN_TIMED_OUT), UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.FailRunResponse> failRun(
        dev.cairn.v1.FailRunRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getFailRunMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * CancelRun cancels a run. A PENDING or INTERRUPTED run (or a RUNNING one
     * whose lease expired) is CANCELLED at once; a RUNNING one is marked
     * cancel_requested and becomes CANCELLED when its worker's next heartbeat or
     * leased write sees it (that call fails with RUN_CANCELLED, and the worker
     * stops at the step boundary), or when its lease expires. Cancelling a
     * CANCELLED run succeeds and changes nothing. Fails with INVALID_ARGUMENT,
     * NOT_FOUND (RUN_NOT_FOUND), FAILED_PRECONDITION (RUN_FINISHED),
     * UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.CancelRunResponse> cancelRun(
        dev.cairn.v1.CancelRunRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getCancelRunMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * GetRun returns one run with its attempts. Fails with INVALID_ARGUMENT,
     * NOT_FOUND (RUN_NOT_FOUND), UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.GetRunResponse> getRun(
        dev.cairn.v1.GetRunRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetRunMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * ListRuns returns runs newest first, filtered by status, queue, thread and
     * creation time, paginated (AIP-158). Attempts are left out (GetRun has
     * them). Fails with INVALID_ARGUMENT (bad filter, page size or token),
     * UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.cairn.v1.ListRunsResponse> listRuns(
        dev.cairn.v1.ListRunsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListRunsMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_SAVE = 0;
  private static final int METHODID_SAVE_BATCH = 1;
  private static final int METHODID_LOAD = 2;
  private static final int METHODID_BATCH_LOAD = 3;
  private static final int METHODID_LIST = 4;
  private static final int METHODID_LIST_THREADS = 5;
  private static final int METHODID_DELETE = 6;
  private static final int METHODID_CLEAR = 7;
  private static final int METHODID_PUT_WRITES = 8;
  private static final int METHODID_COPY_THREAD = 9;
  private static final int METHODID_PRUNE = 10;
  private static final int METHODID_DELETE_RUNS = 11;
  private static final int METHODID_START_RUN = 12;
  private static final int METHODID_CLAIM_RUN = 13;
  private static final int METHODID_HEARTBEAT = 14;
  private static final int METHODID_COMPLETE_RUN = 15;
  private static final int METHODID_FAIL_RUN = 16;
  private static final int METHODID_CANCEL_RUN = 17;
  private static final int METHODID_GET_RUN = 18;
  private static final int METHODID_LIST_RUNS = 19;
  private static final int METHODID_SAVE_STREAM = 20;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final AsyncService serviceImpl;
    private final int methodId;

    MethodHandlers(AsyncService serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_SAVE:
          serviceImpl.save((dev.cairn.v1.SaveRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.SaveResponse>) responseObserver);
          break;
        case METHODID_SAVE_BATCH:
          serviceImpl.saveBatch((dev.cairn.v1.SaveBatchRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.SaveBatchResponse>) responseObserver);
          break;
        case METHODID_LOAD:
          serviceImpl.load((dev.cairn.v1.LoadRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.LoadResponse>) responseObserver);
          break;
        case METHODID_BATCH_LOAD:
          serviceImpl.batchLoad((dev.cairn.v1.BatchLoadRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.BatchLoadResponse>) responseObserver);
          break;
        case METHODID_LIST:
          serviceImpl.list((dev.cairn.v1.ListRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.ListResponse>) responseObserver);
          break;
        case METHODID_LIST_THREADS:
          serviceImpl.listThreads((dev.cairn.v1.ListThreadsRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.ListThreadsResponse>) responseObserver);
          break;
        case METHODID_DELETE:
          serviceImpl.delete((dev.cairn.v1.DeleteRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.DeleteResponse>) responseObserver);
          break;
        case METHODID_CLEAR:
          serviceImpl.clear((dev.cairn.v1.ClearRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.ClearResponse>) responseObserver);
          break;
        case METHODID_PUT_WRITES:
          serviceImpl.putWrites((dev.cairn.v1.PutWritesRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.PutWritesResponse>) responseObserver);
          break;
        case METHODID_COPY_THREAD:
          serviceImpl.copyThread((dev.cairn.v1.CopyThreadRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.CopyThreadResponse>) responseObserver);
          break;
        case METHODID_PRUNE:
          serviceImpl.prune((dev.cairn.v1.PruneRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.PruneResponse>) responseObserver);
          break;
        case METHODID_DELETE_RUNS:
          serviceImpl.deleteRuns((dev.cairn.v1.DeleteRunsRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.DeleteRunsResponse>) responseObserver);
          break;
        case METHODID_START_RUN:
          serviceImpl.startRun((dev.cairn.v1.StartRunRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.StartRunResponse>) responseObserver);
          break;
        case METHODID_CLAIM_RUN:
          serviceImpl.claimRun((dev.cairn.v1.ClaimRunRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.ClaimRunResponse>) responseObserver);
          break;
        case METHODID_HEARTBEAT:
          serviceImpl.heartbeat((dev.cairn.v1.HeartbeatRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.HeartbeatResponse>) responseObserver);
          break;
        case METHODID_COMPLETE_RUN:
          serviceImpl.completeRun((dev.cairn.v1.CompleteRunRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.CompleteRunResponse>) responseObserver);
          break;
        case METHODID_FAIL_RUN:
          serviceImpl.failRun((dev.cairn.v1.FailRunRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.FailRunResponse>) responseObserver);
          break;
        case METHODID_CANCEL_RUN:
          serviceImpl.cancelRun((dev.cairn.v1.CancelRunRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.CancelRunResponse>) responseObserver);
          break;
        case METHODID_GET_RUN:
          serviceImpl.getRun((dev.cairn.v1.GetRunRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.GetRunResponse>) responseObserver);
          break;
        case METHODID_LIST_RUNS:
          serviceImpl.listRuns((dev.cairn.v1.ListRunsRequest) request,
              (io.grpc.stub.StreamObserver<dev.cairn.v1.ListRunsResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_SAVE_STREAM:
          return (io.grpc.stub.StreamObserver<Req>) serviceImpl.saveStream(
              (io.grpc.stub.StreamObserver<dev.cairn.v1.SaveStreamResponse>) responseObserver);
        default:
          throw new AssertionError();
      }
    }
  }

  public static final io.grpc.ServerServiceDefinition bindService(AsyncService service) {
    return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
        .addMethod(
          getSaveMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.SaveRequest,
              dev.cairn.v1.SaveResponse>(
                service, METHODID_SAVE)))
        .addMethod(
          getSaveStreamMethod(),
          io.grpc.stub.ServerCalls.asyncBidiStreamingCall(
            new MethodHandlers<
              dev.cairn.v1.SaveStreamRequest,
              dev.cairn.v1.SaveStreamResponse>(
                service, METHODID_SAVE_STREAM)))
        .addMethod(
          getSaveBatchMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.SaveBatchRequest,
              dev.cairn.v1.SaveBatchResponse>(
                service, METHODID_SAVE_BATCH)))
        .addMethod(
          getLoadMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.LoadRequest,
              dev.cairn.v1.LoadResponse>(
                service, METHODID_LOAD)))
        .addMethod(
          getBatchLoadMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.BatchLoadRequest,
              dev.cairn.v1.BatchLoadResponse>(
                service, METHODID_BATCH_LOAD)))
        .addMethod(
          getListMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.ListRequest,
              dev.cairn.v1.ListResponse>(
                service, METHODID_LIST)))
        .addMethod(
          getListThreadsMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.ListThreadsRequest,
              dev.cairn.v1.ListThreadsResponse>(
                service, METHODID_LIST_THREADS)))
        .addMethod(
          getDeleteMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.DeleteRequest,
              dev.cairn.v1.DeleteResponse>(
                service, METHODID_DELETE)))
        .addMethod(
          getClearMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.ClearRequest,
              dev.cairn.v1.ClearResponse>(
                service, METHODID_CLEAR)))
        .addMethod(
          getPutWritesMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.PutWritesRequest,
              dev.cairn.v1.PutWritesResponse>(
                service, METHODID_PUT_WRITES)))
        .addMethod(
          getCopyThreadMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.CopyThreadRequest,
              dev.cairn.v1.CopyThreadResponse>(
                service, METHODID_COPY_THREAD)))
        .addMethod(
          getPruneMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.PruneRequest,
              dev.cairn.v1.PruneResponse>(
                service, METHODID_PRUNE)))
        .addMethod(
          getDeleteRunsMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.DeleteRunsRequest,
              dev.cairn.v1.DeleteRunsResponse>(
                service, METHODID_DELETE_RUNS)))
        .addMethod(
          getStartRunMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.StartRunRequest,
              dev.cairn.v1.StartRunResponse>(
                service, METHODID_START_RUN)))
        .addMethod(
          getClaimRunMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.ClaimRunRequest,
              dev.cairn.v1.ClaimRunResponse>(
                service, METHODID_CLAIM_RUN)))
        .addMethod(
          getHeartbeatMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.HeartbeatRequest,
              dev.cairn.v1.HeartbeatResponse>(
                service, METHODID_HEARTBEAT)))
        .addMethod(
          getCompleteRunMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.CompleteRunRequest,
              dev.cairn.v1.CompleteRunResponse>(
                service, METHODID_COMPLETE_RUN)))
        .addMethod(
          getFailRunMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.FailRunRequest,
              dev.cairn.v1.FailRunResponse>(
                service, METHODID_FAIL_RUN)))
        .addMethod(
          getCancelRunMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.CancelRunRequest,
              dev.cairn.v1.CancelRunResponse>(
                service, METHODID_CANCEL_RUN)))
        .addMethod(
          getGetRunMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.GetRunRequest,
              dev.cairn.v1.GetRunResponse>(
                service, METHODID_GET_RUN)))
        .addMethod(
          getListRunsMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.cairn.v1.ListRunsRequest,
              dev.cairn.v1.ListRunsResponse>(
                service, METHODID_LIST_RUNS)))
        .build();
  }

  private static abstract class CheckpointStoreBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    CheckpointStoreBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return dev.cairn.v1.CheckpointStoreProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("CheckpointStore");
    }
  }

  private static final class CheckpointStoreFileDescriptorSupplier
      extends CheckpointStoreBaseDescriptorSupplier {
    CheckpointStoreFileDescriptorSupplier() {}
  }

  private static final class CheckpointStoreMethodDescriptorSupplier
      extends CheckpointStoreBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    CheckpointStoreMethodDescriptorSupplier(java.lang.String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (CheckpointStoreGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new CheckpointStoreFileDescriptorSupplier())
              .addMethod(getSaveMethod())
              .addMethod(getSaveStreamMethod())
              .addMethod(getSaveBatchMethod())
              .addMethod(getLoadMethod())
              .addMethod(getBatchLoadMethod())
              .addMethod(getListMethod())
              .addMethod(getListThreadsMethod())
              .addMethod(getDeleteMethod())
              .addMethod(getClearMethod())
              .addMethod(getPutWritesMethod())
              .addMethod(getCopyThreadMethod())
              .addMethod(getPruneMethod())
              .addMethod(getDeleteRunsMethod())
              .addMethod(getStartRunMethod())
              .addMethod(getClaimRunMethod())
              .addMethod(getHeartbeatMethod())
              .addMethod(getCompleteRunMethod())
              .addMethod(getFailRunMethod())
              .addMethod(getCancelRunMethod())
              .addMethod(getGetRunMethod())
              .addMethod(getListRunsMethod())
              .build();
        }
      }
    }
    return result;
  }
}
