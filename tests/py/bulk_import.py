"""Streams COUNT survey responses on one ImportRecords call, as fast as grpcio sends them.

grpcio writes each message of a client stream as its own HTTP/2 DATA frame, unlike tonic,
which coalesces queued messages: this is the shape of a CRM sync written in Python, Go or
Java. The messages are encoded by hand (no protobuf package) and serialised before the
call starts, so the stream runs at the speed of the transport alone.

Every BAD_EVERY-th record (positions BAD_EVERY-1, 2*BAD_EVERY-1, ...) has an NPS score of
11 and must come back rejected.

usage: bulk_import.py ADDR KEY COUNT
On success prints the ImportRecordsResponse bytes as hex on stdout and the elapsed time on
stderr; on failure prints the gRPC status on stderr and exits 1.
"""

import sys
import time

import grpc

METHOD = "/cxmetrics.v1.FeedbackService/ImportRecords"
BAD_EVERY = 10_000
# 2026-01-01T00:00:00Z, inside the accepted range.
RESPOND_TIME = 1_767_225_600


def varint(n):
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def length_delimited(field, payload):
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def integer(field, value):
    return varint(field << 3) + varint(value)


def survey_response(i):
    """An ImportRecordsRequest holding one NPS answer (about 37 bytes)."""
    score = 11 if i % BAD_EVERY == BAD_EVERY - 1 else i % 11
    timestamp = integer(1, RESPOND_TIME + i)
    record = b"".join(
        [
            length_delimited(1, b"r-%07d" % i),  # response_id
            length_delimited(2, b"bulk"),  # survey_id
            integer(3, 1),  # kind = SURVEY_KIND_NPS
            integer(4, score),
            length_delimited(6, b"c-%d" % (i % 1000)),  # customer_id
            length_delimited(9, timestamp),  # respond_time
        ]
    )
    return length_delimited(1, record)  # ImportRecordsRequest.survey_response


def main():
    addr, key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    messages = [survey_response(i) for i in range(count)]
    with grpc.insecure_channel(addr) as channel:
        call = channel.stream_unary(
            METHOD, request_serializer=None, response_deserializer=None
        )
        start = time.monotonic()
        try:
            reply = call(
                iter(messages),
                metadata=[("authorization", "Bearer " + key)],
                timeout=300,
            )
        except grpc.RpcError as error:
            elapsed = time.monotonic() - start
            print(
                "%s: %s (after %.2f s)" % (error.code().name, error.details(), elapsed),
                file=sys.stderr,
            )
            return 1
        elapsed = time.monotonic() - start
    print("streamed %d messages in %.2f s" % (count, elapsed), file=sys.stderr)
    sys.stdout.write(reply.hex())
    return 0


if __name__ == "__main__":
    sys.exit(main())
