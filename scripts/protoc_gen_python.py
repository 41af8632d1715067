"""A buf plugin for the Python stubs (`_pb2.py`, `_pb2.pyi`, `_pb2_grpc.py`): grpcio-tools' protoc run on the
request's files, so `make gen` gets byte-for-byte what `python -m grpc_tools.protoc` writes, from the one
buf.gen.yaml that drives every language (grpcio-tools ships its Python generators inside its own protoc, not
as protoc plugins buf could call)."""

import subprocess
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _as_protoc_reads(message: descriptor_pb2.DescriptorProto) -> None:
    """buf fills in every field's default json_name, which protoc leaves unset; unset it, so the descriptor
    embedded in _pb2.py is the one protoc embeds."""
    for f in message.field:
        if f.json_name == _camel(f.name):
            f.ClearField("json_name")
    for nested in message.nested_type:
        _as_protoc_reads(nested)


def main() -> None:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    response = plugin_pb2.CodeGeneratorResponse(supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL)
    for file in request.proto_file:
        for message in file.message_type:
            _as_protoc_reads(message)
    with tempfile.TemporaryDirectory() as tmp:
        descriptors = Path(tmp, "in.binpb")
        descriptors.write_bytes(descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString())
        out = Path(tmp, "out")
        out.mkdir()
        done = subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", f"--descriptor_set_in={descriptors}", f"--python_out={out}",
             f"--pyi_out={out}", f"--grpc_python_out={out}", *request.file_to_generate],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            response.error = done.stderr or f"grpc_tools.protoc exited {done.returncode}"
        else:
            for path in sorted(p for p in out.rglob("*") if p.is_file()):
                response.file.add(name=path.relative_to(out).as_posix(), content=path.read_text())
    sys.stdout.buffer.write(response.SerializeToString())


if __name__ == "__main__":
    main()
