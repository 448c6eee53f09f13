"""Send-side bandwidth estimation for a viewer's downlink, after Google Congestion
Control (draft-ietf-rmcat-gcc-02; libwebrtc's goog_cc).

The SFU stamps each packet it sends a viewer with a transport-wide sequence number;
the viewer's transport-cc feedback (`sfu.rtp.twcc`) says which arrived and when.
Pure, I/O-free parts, fed in this order by `estimator.BandwidthEstimator`:

- `results`: feedback matched with the send history, as `PacketResult`s (sequence
  numbers unwrapped, duplicates dropped).
- `inter_arrival`: packets grouped into 5 ms send bursts; the change in one-way
  delay from group to group.
- `trendline`: the slope of that delay over the last groups and the overuse
  detector with its adaptive threshold: normal, overusing or underusing.
- `acked_bitrate`: the throughput the viewer acknowledges receiving.
- `aimd`: the delay-based rate: multiplicative or additive increase, decrease to
  85 % of the acknowledged throughput on overuse.
- `loss_based`: the loss-based rate, which holds or cuts the delay-based one when
  the viewer reports loss.

Times are seconds (the sender's clock for send times and `now`, the receiver's for
arrivals: only differences between arrivals are used), rates bits per second. No
clock is read and nothing is random: the same inputs give the same estimate.
"""
