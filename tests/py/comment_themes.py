"""Calls MetricsService.GetCommentThemes with grpcio, a client that is not tonic.

The request arrives serialised (hex, built by the Rust test), so that no protobuf package
is needed; the reply's bytes go back as hex for the test to decode and compare.

usage: comment_themes.py ADDR KEY REQUEST_HEX
On success prints the CommentThemesReport bytes as hex on stdout; on failure prints the
gRPC status on stderr and exits 1.
"""

import sys

import grpc

METHOD = "/cxmetrics.v1.MetricsService/GetCommentThemes"


def main():
    addr, key, request_hex = sys.argv[1:4]
    request = bytes.fromhex(request_hex)
    with grpc.insecure_channel(addr) as channel:
        call = channel.unary_unary(
            METHOD,
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        try:
            reply = call(
                request,
                metadata=[("authorization", "Bearer " + key)],
                timeout=60,
            )
        except grpc.RpcError as error:
            print(f"{error.code()}: {error.details()}", file=sys.stderr)
            sys.exit(1)
    print(reply.hex())


if __name__ == "__main__":
    main()
