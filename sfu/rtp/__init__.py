"""RTP and RTCP on bytes: parsing, rewriting, sequencing, loss repair."""
