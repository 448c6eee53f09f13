"""A fuzzer for a real stage-sfu server on loopback.

It starts the server itself (`python -m signaling serve`), sends structured, mutated and
random WebSocket frames to `/ws` and UDP datagrams to the media ports of a live ICE/DTLS
session, then reports what came back, whether anything crashed or failed internally,
the server's memory, and whether a normal client can still join and receive media.
See README.md beside this file; `python -m tools.fuzz --help` lists the options.
"""
