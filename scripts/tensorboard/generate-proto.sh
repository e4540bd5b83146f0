#!/bin/sh
# Regenerates Sources/DecoupledTensorBoard/Generated/*.pb.swift from the .proto files in
# Sources/DecoupledTensorBoard/Proto. Run it only after editing a .proto: the generated
# files are committed, so building Decoupled needs neither protoc nor the plugin.
#
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-swift of the swift-protobuf
# version Package.swift resolves (1.39.0 here), built once outside the repository:
#   git clone https://github.com/apple/swift-protobuf /tmp/swift-protobuf
#   git -C /tmp/swift-protobuf checkout 1.39.0
#   (cd /tmp/swift-protobuf && swift build --product protoc-gen-swift)   # ~10 min on 2 cores
#   PROTOC_GEN_SWIFT=/tmp/swift-protobuf/.build/debug/protoc-gen-swift scripts/tensorboard/generate-proto.sh
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
plugin=${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}
if [ -z "$plugin" ] || [ ! -x "$plugin" ]; then
    echo "generate-proto.sh: protoc-gen-swift not found; set PROTOC_GEN_SWIFT to its path (see the comment at the top)" >&2
    exit 1
fi
command -v protoc >/dev/null || { echo "generate-proto.sh: protoc not found (Debian: apt-get install protobuf-compiler)" >&2; exit 1; }
proto="$root/Sources/DecoupledTensorBoard/Proto"
out="$root/Sources/DecoupledTensorBoard/Generated"
mkdir -p "$out"
# Internal visibility: the generated types stay inside DecoupledTensorBoard, whose public API
# is its own Swift types.
protoc --plugin=protoc-gen-swift="$plugin" -I "$proto" \
    --swift_opt=Visibility=Internal --swift_opt=FileNaming=DropPath \
    --swift_out="$out" "$proto/event.proto" "$proto/summary.proto"
echo "generated: $(ls "$out")"
