import asyncio, sys
from tests.e2e.bottleneck_stage import bottleneck_stage, measure, table, SMALL, LARGE
async def main():
    rate = int(sys.argv[1]); vp = SMALL if sys.argv[2] == "small" else LARGE
    est = sys.argv[3] if len(sys.argv) > 3 else "true"
    async with bottleneck_stage(downlink_kbit=rate, limited_viewport=vp, limited_must_play=False,
                                settings={"media.downlink_estimation": est, "server.log_level": "debug"}) as stage:
        u, l = await measure(stage)
        m = await stage.server.metrics()
        print("LINK TOTAL", await stage.topology.downlink_counters())
        print(table([u, l]))
        for k, v in sorted(m.items()):
            if any(x in k for x in ("downlink", "by_layer", "paused_for", "refused", "held", "retransmissions_sent", "key_frame_requests", "simulcast_bitrate")):
                print(k, v)
asyncio.run(main())
