/*
 * Pacing for the native egress (sfu/_fastpath.c, its only includer), as
 * sfu/pacer.py does for the Python path: a viewer's packets leave at a set rate
 * instead of in the bursts they arrive in. A key frame is dozens of packets at
 * once; forwarded at socket speed into a link of a few hundred kbit/s they
 * overflow its queue, and the loss and delay that follow read as congestion.
 * Paced, the burst waits here, where it costs only a little delay.
 *
 * The queue is a ring of whole packets, plain RTP: each is given its
 * transport-wide number, protected and logged as it leaves, so the numbers follow
 * the order packets reach the viewer (audio overtakes waiting video) and the send
 * log holds the time they really left. It grows on demand, and is bounded in packets and in waiting time:
 * past either bound the oldest go at once rather than queue without end.
 * Static functions in a header included once: one translation unit.
 */
#ifndef STAGE_SFU_FASTPATH_PACER_H
#define STAGE_SFU_FASTPATH_PACER_H

#define PACER_FIRST_CAPACITY 64
#define PACER_MAX_CAPACITY 1024   /* packets waiting: ~1.3 MB at most, per paced viewer */
#define PACER_MAX_WAIT 1.0        /* seconds a packet may wait before it goes regardless */
#define PACER_BURST 0.010         /* seconds of budget that may build up while idle */

/* Audio is sent at once and charged to the budget (the video after it waits the
 * longer); probe padding is sent at once and not charged: it is in addition to the
 * media by design, and measures the link at its own rate. */
enum { PACED = 0, URGENT_MEDIA = 1, URGENT_PROBE = 2 };

/* A packet built but not sent yet: plain RTP until it leaves, when its transport-wide
 * number goes at `stamp_at` (0: it carries none) and it is protected. */
typedef struct {
    uint16_t len, header_len, stamp_at;
    uint8_t urgent;           /* never waits for the pacer: URGENT_MEDIA or URGENT_PROBE */
    double built_at;          /* the `now` of the forward that built it */
} queued_t;

typedef struct {
    uint8_t (*packets)[MAX_PACKET];
    queued_t *queued;
    int capacity, head, count;
    size_t bytes;                /* queued (plain RTP) */
    double rate;                 /* bytes per second; 0 = not paced */
    double budget;               /* bytes that may leave now; negative: owed */
    double topped_at;            /* when the budget was last topped up; < 0 never */
    unsigned long long overdue;  /* packets sent past a bound instead of at the rate */
} pacer_t;

static void pacer_free(pacer_t *p) {
    PyMem_Free(p->packets);
    PyMem_Free(p->queued);
    p->packets = NULL;
    p->queued = NULL;
    p->capacity = p->head = p->count = 0;
    p->bytes = 0;
}

/* Room for `capacity` packets, the queue kept in order from index 0. */
static int pacer_grow(pacer_t *p, int capacity) {
    uint8_t (*packets)[MAX_PACKET] = PyMem_Malloc(sizeof(*packets) * (size_t)capacity);
    queued_t *queued = PyMem_Malloc(sizeof(*queued) * (size_t)capacity);
    if (packets == NULL || queued == NULL) {
        PyMem_Free(packets); PyMem_Free(queued);
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < p->count; i++) {
        int from = (p->head + i) % p->capacity;
        memcpy(packets[i], p->packets[from], p->queued[from].len);
        queued[i] = p->queued[from];
    }
    int count = p->count;
    size_t bytes = p->bytes;
    pacer_free(p);
    p->packets = packets;
    p->queued = queued;
    p->capacity = capacity;
    p->count = count;
    p->bytes = bytes;
    return 0;
}

/* The budget grows with time at the rate, up to PACER_BURST's worth. */
static void pacer_top_up(pacer_t *p, double now) {
    if (p->topped_at >= 0 && now > p->topped_at) {
        p->budget += p->rate * (now - p->topped_at);
        double most = p->rate * PACER_BURST;
        if (p->budget > most) p->budget = most;
    }
    if (p->topped_at < 0 || now > p->topped_at) p->topped_at = now;
}

/* Whether the queue is full (at its largest): the caller sends the head first. */
static int pacer_full(const pacer_t *p) {
    return p->count == PACER_MAX_CAPACITY;
}

/* Append one packet; 0, or -1 with a Python error (no memory). Never called full. */
static int pacer_push(pacer_t *p, const uint8_t *packet, const queued_t *q) {
    if (p->count == p->capacity) {
        int capacity = p->capacity ? p->capacity * 2 : PACER_FIRST_CAPACITY;
        if (capacity > PACER_MAX_CAPACITY) capacity = PACER_MAX_CAPACITY;
        if (pacer_grow(p, capacity) < 0) return -1;
    }
    int at = (p->head + p->count) % p->capacity;
    memcpy(p->packets[at], packet, q->len);
    p->queued[at] = *q;
    p->count++;
    p->bytes += q->len;
    return 0;
}

/* Whether the head may leave now: within the budget, or past a bound. */
static int pacer_head_due(pacer_t *p, double now) {
    if (p->count == 0) return 0;
    if (p->budget > 0) return 1;
    if (now - p->queued[p->head].built_at > PACER_MAX_WAIT) { p->overdue++; return 1; }
    return 0;
}

/* Take the head off the queue (its buffer stays valid until the next push). */
static int pacer_pop(pacer_t *p) {
    int at = p->head;
    p->head = (p->head + 1) % p->capacity;
    p->count--;
    p->bytes -= p->queued[at].len;
    p->budget -= (double)p->queued[at].len;
    if (p->count == 0) p->head = 0;
    return at;
}

#endif
