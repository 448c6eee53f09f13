"""stage-sfu media core: forwards RTP without decoding.

There are no people here, only routers, transports, producers and consumers.
"""
