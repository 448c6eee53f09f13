"""One room over several worker processes: the room stays on its home worker
(signaling, publishers), viewers' media is placed on other workers, and every
published stream is piped once to each worker that has viewers of it."""
