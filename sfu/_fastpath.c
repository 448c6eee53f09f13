/*
 * Native fan-out: one call per incoming RTP packet rewrites the header for
 * every consumer, SRTP-protects it with that consumer's keys (OpenSSL EVP:
 * AES128_CM_HMAC_SHA1_80 per RFC 3711, AEAD_AES_128/256_GCM per RFC 7714),
 * keeps the retransmission history, and queues it for a batched sendmmsg on
 * the consumer's socket. A simulcast producer's encodings share one fan-out:
 * packets come tagged with their layer, each slot forwards one layer and
 * switches to its target layer at that layer's key frame; with `vp8` the
 * PictureID and TL0PICIDX are shifted per viewer so they stay continuous,
 * and a viewer with a temporal ceiling gets only the frames up to that TID,
 * its sequence numbers and PictureIDs closed up over the frames left out.
 * An egress that stamps transport-wide sequence numbers (draft-holmer-rmcat-
 * transport-wide-cc-extensions-01) numbers every copy it is given and logs its
 * send time and size, as sfu/rtp/send_log.py does.
 *
 * The contract is sfu/fanout.py's: the tests require byte-identical packets
 * from both. The Python side keeps ICE, DTLS and every control decision.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#define MAX_PACKET 2048  /* output buffer per packet: header + extensions + payload + tag */
#define MAX_IN_PACKET 1600   /* largest incoming RTP packet kept or forwarded */
#define MAX_EXT 256      /* canonical extension body, MID element included */
#define BATCH 32         /* packets queued per egress before a sendmmsg */
#define SEQ_MASK 0xFFFFu
#define SEQ_HALF 0x8000
#define TS_MASK 0xFFFFFFFFu
#define MAX_LAYERS 4     /* simulcast encodings per producer (sfu/fanout.py MAX_LAYERS) */
#define ALIGNED_MAX_STEP 5 /* seconds an aligned epoch may move time forward (sfu/rtp/seq.py) */
#define TCC_HISTORY 8192 /* transport-wide numbers remembered (sfu/rtp/send_log.py HISTORY) */

#include "_fastpath_vp8.h" /* VP8 numbering and temporal skips: needs the limits above */
#include "_fastpath_pacer.h" /* the paced queue: needs MAX_PACKET */
#include "_fastpath_egress.h" /* one peer's SRTP sender, socket and pacer */

/* ------------------------------------------------------------------------ */
/* FanOut: the consumers of one producer                                      */

typedef struct {
    int used, active, waiting_key_frame, has_key_frame_at;
    int layer, target;        /* the encoding forwarded now; the one wanted (switched to at its key frame) */
    double key_frame_at;
    uint32_t ssrc;
    int payload_type;
    uint8_t mid[17];
    int mid_len;
    EgressObject *egress;     /* strong reference */
    int urgent;               /* audio: its copies never wait for the egress's pacer */
    /* OutputSequencer (sfu/rtp/seq.py), field for field */
    int clock_rate, started, new_epoch, has_proposed;
    uint16_t initial_seq, seq_offset, last_seq;
    uint32_t initial_ts, ts_offset, last_ts, proposed_ts_offset;
    int64_t epoch_first, ext_highest;
    double last_time;
    vp8_state_t vp8;
    temporal_t *temporal;     /* owned; NULL until a temporal ceiling is set */
    unsigned long long packets_sent, bytes_sent, payload_bytes_sent, packets_dropped;
    unsigned long long packets_skipped; /* left out for the temporal ceiling */
} slot_t;

typedef struct {
    int32_t seq;              /* -1: empty */
    double arrival;
    uint16_t len, payload_start, ext_len;
    uint8_t data[MAX_IN_PACKET];
    uint8_t ext[MAX_EXT];
} history_entry_t;

typedef struct {
    PyObject_HEAD
    slot_t *slots;
    Py_ssize_t slot_cap;
    history_entry_t *history; /* layers rings of history_len entries, one after another */
    Py_ssize_t history_len;
    double max_age;
    int layers, vp8;
    int has_shift[MAX_LAYERS]; /* per layer: its timestamps + shift are on the common timeline */
    uint32_t shift[MAX_LAYERS];
} FanOutObject;

static int map_packet(slot_t *s, uint16_t seq, uint32_t ts, double now, uint16_t *out_seq, uint32_t *out_ts) {
    if (s->new_epoch) {
        uint16_t os;
        uint32_t ot = 0;
        int proposed = s->has_proposed;
        s->has_proposed = 0;
        if (s->started) {
            os = (uint16_t)(s->last_seq + 1);
            int aligned = 0;
            if (proposed) {  /* taken when it moves time forward, by at most ALIGNED_MAX_STEP */
                ot = (uint32_t)(ts + s->proposed_ts_offset);
                uint32_t step = (uint32_t)(ot - s->last_ts);
                aligned = step > 0 && (uint64_t)step <= (uint64_t)s->clock_rate * ALIGNED_MAX_STEP;
                /* the same instant as the last frame sent, or up to 75 ms before: one tick on */
                if (!aligned && (uint64_t)(uint32_t)(0u - step) * 40 < (uint64_t)s->clock_rate * 3) {
                    ot = (uint32_t)(s->last_ts + 1);
                    aligned = 1;
                }
            }
            if (!aligned) {
                double ticks_f = nearbyint((now - s->last_time) * (double)s->clock_rate);
                int64_t ticks = (int64_t)ticks_f;
                if (ticks < 1) ticks = 1;
                ot = (uint32_t)(((uint64_t)s->last_ts + (uint64_t)ticks) & TS_MASK);
            }
        } else {
            s->started = 1;
            os = s->initial_seq;
            ot = s->initial_ts;
        }
        s->new_epoch = 0;
        if (s->temporal != NULL) skips_clear(&s->temporal->seqs);
        s->seq_offset = (uint16_t)(os - seq);
        s->ts_offset = (uint32_t)(ot - ts);
        s->epoch_first = seq;
        s->ext_highest = seq;
        s->last_seq = os;
        s->last_ts = ot;
        s->last_time = now;
        *out_seq = os;
        *out_ts = ot;
        return 1;
    }
    int64_t highest = s->ext_highest;
    int64_t ext = highest + ((((int64_t)seq - highest + SEQ_HALF) & SEQ_MASK) - SEQ_HALF);
    if (ext < s->epoch_first) return 0;
    int64_t skipped = 0;
    if (s->temporal != NULL && s->temporal->seqs.total) {
        skipped = skips_below(&s->temporal->seqs, ext);
        if (skipped < 0) return 0;
    }
    uint16_t os = (uint16_t)(seq + s->seq_offset - skipped);
    uint32_t ot = (uint32_t)(ts + s->ts_offset);
    if (ext > highest) { s->ext_highest = ext; s->last_seq = os; }
    uint32_t ahead = (uint32_t)(ot - s->last_ts);
    if (ahead > 0 && ahead < 0x80000000u) { s->last_ts = ot; s->last_time = now; }
    *out_seq = os;
    *out_ts = ot;
    return 1;
}

/* OutputSequencer.input_sequence: the input seq sent as `out_seq` in the current epoch,
 * through the skips; 0 when there is none. */
static int input_sequence(const slot_t *s, int out_seq, uint16_t *in_seq) {
    if (s->new_epoch) return 0;
    uint16_t seq = (uint16_t)((unsigned)out_seq - s->seq_offset);
    const skips_t *k = s->temporal != NULL && s->temporal->seqs.total ? &s->temporal->seqs : NULL;
    int64_t highest = s->ext_highest - (k != NULL ? k->total : 0); /* in output positions */
    int64_t ext = highest + ((((int64_t)seq - highest + SEQ_HALF) & SEQ_MASK) - SEQ_HALF);
    if (ext < s->epoch_first || ext > highest) return 0;
    if (k != NULL) {
        ext = skips_expand(k, ext);
        if (ext < k->floor) return 0;
    }
    *in_seq = (uint16_t)ext;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Temporal ceiling (sfu/rtp/temporal.py): which frames a viewer gets            */

/* OutputSequencer.skip: leave out the packet `seq` (newer than any seen, of `picture`)
 * for good. Unless it starts a `new_picture`, the newest packet so far was a skipped
 * one of the same frame, and the seqs between (lost, or still to come) are its too. */
static void seq_skip(slot_t *s, uint16_t seq, int picture, int new_picture) {
    if (s->new_epoch) return;
    int64_t highest = s->ext_highest;
    int64_t ext = highest + ((((int64_t)seq - highest + SEQ_HALF) & SEQ_MASK) - SEQ_HALF);
    if (ext <= highest) return;
    skips_t *k = &s->temporal->seqs;
    int with_gap = !new_picture && k->count && k->last[SKIP_AT(k, k->count - 1)] == highest;
    skips_add(k, with_gap ? highest + 1 : ext, ext, picture, new_picture);
    s->ext_highest = ext;
    s->last_seq = (uint16_t)(ext + s->seq_offset - k->total);
}

/* Whether a new picture goes to the viewer, moving its layer up when it may. */
static int temporal_forwards(temporal_t *t, const vp8_numbering_t *n, int keyframe) {
    if (n->temporal_id > t->ceiling) return 0;
    if (keyframe) {
        t->layer = t->ceiling;
    } else if (n->temporal_id > t->layer) {
        if (!n->layer_sync) return 0;
        t->layer = n->temporal_id;
    }
    return 1;
}

/* TemporalFilter.admit: for a packet with a PictureID, the pictures skipped before its
 * own, or -1 to skip it too (its seq then skipped). */
static int64_t temporal_admit(slot_t *s, const vp8_numbering_t *n, int keyframe, uint16_t seq) {
    temporal_t *t = s->temporal;
    int picture = picture_key(n->picture_id, n->picture_id_wide);
    if (s->new_epoch) {  /* the epoch's first packet: nothing to close up yet */
        t->head_picture = picture;
        t->head_skipped = !temporal_forwards(t, n, keyframe);
        return t->head_skipped ? -1 : 0;
    }
    int64_t highest = s->ext_highest;
    int64_t ext = highest + ((((int64_t)seq - highest + SEQ_HALF) & SEQ_MASK) - SEQ_HALF);
    if (ext <= highest) return skips_pictures_before(&t->seqs, ext, picture); /* decided, or late */
    int new_picture = picture != t->head_picture;
    if (new_picture) {  /* until now every frame went out: the one in flight is finished */
        int in_flight = t->head_picture == IN_FLIGHT;
        t->head_picture = picture;
        t->head_skipped = !in_flight && !temporal_forwards(t, n, keyframe);
    }
    if (t->head_skipped) {
        seq_skip(s, seq, picture, new_picture);
        return -1;
    }
    return t->seqs.pictures_total;
}

/* At an epoch's first packet, before its mapping forgets them: the pictures the old
 * epoch skipped stay out of the numbering (fanout._close_up_pictures). */
static void close_up_pictures(slot_t *s) {
    s->vp8.picture_id_offset = (int)((uint64_t)((int64_t)s->vp8.picture_id_offset -
                                                s->temporal->seqs.pictures_total) & PICTURE_ID_MASK);
}

/* Build and queue one viewer's copy (`numbering`: the packet's VP8 numbering,
 * NULL unless the fan-out renumbers VP8; `skipped`: pictures left out before it).
 * Returns 1 queued, 0 dropped, -1 error. */
static int send_copy(slot_t *s, const uint8_t *data, size_t len, size_t payload_start,
                     const uint8_t *ext, size_t ext_len, uint16_t seq, uint32_t ts, double now,
                     const vp8_numbering_t *numbering, int64_t skipped) {
    EgressObject *e = s->egress;
    size_t stamp = e->tcc_id ? 3 : 0; /* the transport-wide number's element, after the MID */
    size_t body = (size_t)s->mid_len + stamp + ext_len;
    size_t pad = (4 - body % 4) % 4;
    size_t block = body ? 4 + body + pad : 0;
    size_t payload = len - payload_start;
    size_t header = 12 + block;
    if (header + payload + 16 > MAX_PACKET || e->closed) { s->packets_dropped++; return 0; }
    uint8_t *out = egress_slot(e, now);
    if (out == NULL) return -1;
    size_t stamp_at = 0;
    out[0] = (uint8_t)(0x80 | (data[0] & 0x20) | (block ? 0x10 : 0));
    out[1] = (uint8_t)(s->payload_type | (data[1] & 0x80));
    out[2] = (uint8_t)(seq >> 8); out[3] = (uint8_t)seq;
    out[4] = (uint8_t)(ts >> 24); out[5] = (uint8_t)(ts >> 16); out[6] = (uint8_t)(ts >> 8); out[7] = (uint8_t)ts;
    out[8] = (uint8_t)(s->ssrc >> 24); out[9] = (uint8_t)(s->ssrc >> 16); out[10] = (uint8_t)(s->ssrc >> 8); out[11] = (uint8_t)s->ssrc;
    if (block) {
        size_t words = (body + pad) / 4;
        out[12] = 0xBE; out[13] = 0xDE; out[14] = (uint8_t)(words >> 8); out[15] = (uint8_t)words;
        uint8_t *at = out + 16;
        memcpy(at, s->mid, (size_t)s->mid_len);
        at += s->mid_len;
        if (stamp) { /* the number itself is written as the copy leaves */
            at[0] = (uint8_t)(e->tcc_id << 4 | 1);
            stamp_at = (size_t)(at + 1 - out);
            at += 3;
        }
        memcpy(at, ext, ext_len);
        memset(out + 16 + body, 0, pad);
    }
    memcpy(out + header, data + payload_start, payload);
    if (numbering != NULL) vp8_patch(&s->vp8, numbering, out + header, skipped);
    egress_commit(e, header + payload, header, stamp_at, s->urgent ? URGENT_MEDIA : PACED, now);
    s->packets_sent++;
    s->bytes_sent += header + payload; /* RTP bytes, before SRTP (as the Python path counts) */
    s->payload_bytes_sent += payload;
    return 1;
}

static int FanOut_init(FanOutObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"history", "max_age", "layers", "vp8", NULL};
    Py_ssize_t history;
    double max_age;
    int layers = 1, vp8 = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nd|ip", kwlist, &history, &max_age, &layers, &vp8))
        return -1;
    if (history < 0 || history > 32768) { PyErr_SetString(PyExc_ValueError, "history: 0..32768"); return -1; }
    if (layers < 1 || layers > MAX_LAYERS) { PyErr_SetString(PyExc_ValueError, "layers: 1..4"); return -1; }
    if (self->layers) {  /* its slots and history are sized for the first call's layers */
        PyErr_SetString(PyExc_RuntimeError, "FanOut already initialised");
        return -1;
    }
    if (history) {
        Py_ssize_t entries = history * layers;
        self->history = PyMem_Calloc((size_t)entries, sizeof(history_entry_t));
        if (self->history == NULL) { PyErr_NoMemory(); return -1; }
        for (Py_ssize_t i = 0; i < entries; i++) self->history[i].seq = -1;
    }
    self->history_len = history;
    self->max_age = max_age;
    self->layers = layers;
    self->vp8 = vp8;
    /* Layer 0 is the common timeline; the others' relation to it is unknown until set. */
    for (int i = 0; i < MAX_LAYERS; i++) { self->has_shift[i] = i == 0; self->shift[i] = 0; }
    return 0;
}

static void FanOut_dealloc(FanOutObject *self) {
    for (Py_ssize_t i = 0; i < self->slot_cap; i++) {
        if (self->slots[i].used) Py_XDECREF(self->slots[i].egress);
        PyMem_Free(self->slots[i].temporal);
    }
    PyMem_Free(self->slots);
    PyMem_Free(self->history);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static slot_t *get_slot(FanOutObject *self, Py_ssize_t id) {
    if (id < 0 || id >= self->slot_cap || !self->slots[id].used) {
        PyErr_SetString(PyExc_KeyError, "no such sink");
        return NULL;
    }
    return &self->slots[id];
}

static PyObject *FanOut_add(FanOutObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"ssrc", "payload_type", "mid_element", "clock_rate", "egress",
                             "initial_sequence", "initial_timestamp", "layer", "urgent", NULL};
    unsigned int ssrc, initial_ts;
    int pt, clock_rate, initial_seq, layer = 0, urgent = 0;
    Py_buffer mid;
    PyObject *egress;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Iiy*iO!iI|ip", kwlist, &ssrc, &pt, &mid, &clock_rate,
                                     &EgressType, &egress, &initial_seq, &initial_ts, &layer, &urgent))
        return NULL;
    if (mid.len > 17 || pt < 0 || pt > 127 || clock_rate <= 0 || initial_seq < 0 || initial_seq > 0xFFFF ||
        layer < 0 || layer >= self->layers) {
        PyBuffer_Release(&mid);
        PyErr_SetString(PyExc_ValueError, "bad sink parameters");
        return NULL;
    }
    Py_ssize_t id = -1;
    for (Py_ssize_t i = 0; i < self->slot_cap; i++) if (!self->slots[i].used) { id = i; break; }
    if (id < 0) {
        Py_ssize_t cap = self->slot_cap ? self->slot_cap * 2 : 8;
        slot_t *grown = PyMem_Realloc(self->slots, (size_t)cap * sizeof(slot_t));
        if (grown == NULL) { PyBuffer_Release(&mid); return PyErr_NoMemory(); }
        memset(grown + self->slot_cap, 0, (size_t)(cap - self->slot_cap) * sizeof(slot_t));
        id = self->slot_cap;
        self->slots = grown;
        self->slot_cap = cap;
    }
    slot_t *s = &self->slots[id];
    memset(s, 0, sizeof *s);
    s->used = 1;
    s->urgent = urgent;
    s->ssrc = ssrc;
    s->payload_type = pt;
    memcpy(s->mid, mid.buf, (size_t)mid.len);
    s->mid_len = (int)mid.len;
    PyBuffer_Release(&mid);
    Py_INCREF(egress);
    s->egress = (EgressObject *)egress;
    s->clock_rate = clock_rate;
    s->new_epoch = 1;
    s->initial_seq = (uint16_t)initial_seq;
    s->initial_ts = initial_ts;
    s->last_seq = (uint16_t)initial_seq;
    s->last_ts = initial_ts;
    s->layer = s->target = layer;
    s->vp8 = (vp8_state_t){0, 0, -1, -1};
    return PyLong_FromSsize_t(id);
}

static PyObject *FanOut_remove(FanOutObject *self, PyObject *arg) {
    Py_ssize_t id = PyLong_AsSsize_t(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    slot_t *s = get_slot(self, id);
    if (s == NULL) return NULL;
    Py_CLEAR(s->egress);
    PyMem_Free(s->temporal);
    s->temporal = NULL;
    s->used = 0;
    Py_RETURN_NONE;
}

static PyObject *FanOut_activate(FanOutObject *self, PyObject *args) {
    Py_ssize_t id;
    int wait;
    if (!PyArg_ParseTuple(args, "np", &id, &wait)) return NULL;
    slot_t *s = get_slot(self, id);
    if (s == NULL) return NULL;
    s->new_epoch = 1;
    s->has_proposed = 0;
    s->layer = s->target;
    s->active = 1;
    s->waiting_key_frame = wait;
    s->has_key_frame_at = 0;
    Py_RETURN_NONE;
}

static PyObject *FanOut_deactivate(FanOutObject *self, PyObject *arg) {
    Py_ssize_t id = PyLong_AsSsize_t(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    slot_t *s = get_slot(self, id);
    if (s == NULL) return NULL;
    s->active = 0;
    Py_RETURN_NONE;
}

/* Move a slot to `layer` at its key frame, in a new epoch whose timestamps continue on
 * the common timeline when both layers' shifts are known (fanout.FanOut._switch). */
static void switch_layer(FanOutObject *self, slot_t *s, int layer) {
    s->has_proposed = self->has_shift[s->layer] && self->has_shift[layer] && !s->new_epoch;
    if (s->has_proposed) s->proposed_ts_offset = s->ts_offset + self->shift[layer] - self->shift[s->layer];
    s->new_epoch = 1;
    s->layer = layer;
}

static PyObject *FanOut_forward(FanOutObject *self, PyObject *args) {
    Py_buffer data, ext;
    Py_ssize_t payload_start;
    int keyframe, layer = 0;
    double now;
    if (!PyArg_ParseTuple(args, "y*ny*pd|i", &data, &payload_start, &ext, &keyframe, &now, &layer)) return NULL;
    PyObject *result = NULL;
    if (layer < 0 || layer >= self->layers) {
        PyErr_SetString(PyExc_ValueError, "no such layer");
        goto out;
    }
    if (data.len < 12 || data.len > MAX_IN_PACKET || payload_start < 12 || payload_start > data.len ||
        ext.len > MAX_EXT - 17) {
        PyErr_SetString(PyExc_ValueError, "bad packet");
        goto out;
    }
    const uint8_t *d = data.buf;
    uint16_t seq = (uint16_t)((d[2] << 8) | d[3]);
    uint32_t ts = ((uint32_t)d[4] << 24) | ((uint32_t)d[5] << 16) | ((uint32_t)d[6] << 8) | d[7];
    if (self->history_len) {
        history_entry_t *entry = &self->history[layer * self->history_len + seq % self->history_len];
        entry->seq = seq;
        entry->arrival = now;
        entry->len = (uint16_t)data.len;
        entry->payload_start = (uint16_t)payload_start;
        entry->ext_len = (uint16_t)ext.len;
        memcpy(entry->data, d, (size_t)data.len);
        memcpy(entry->ext, ext.buf, (size_t)ext.len);
    }
    vp8_numbering_t numbering_buf, *numbering = NULL;
    if (self->vp8) {
        numbering = &numbering_buf;
        vp8_parse(d + payload_start, (size_t)(data.len - payload_start), numbering);
    }
    long queued = 0;
    for (Py_ssize_t i = 0; i < self->slot_cap; i++) {
        slot_t *s = &self->slots[i];
        if (!s->used || !s->active) continue;
        if (s->layer != layer) {
            if (s->target != layer || !keyframe || s->waiting_key_frame) continue;
            switch_layer(self, s, layer);
        } else if (s->waiting_key_frame) {
            if (!keyframe) continue;
            s->waiting_key_frame = 0;
            s->has_key_frame_at = 1;
            s->key_frame_at = now;
        }
        int starting = s->new_epoch;
        int64_t skipped = 0; /* pictures left out before this one */
        if (s->temporal != NULL) {
            if (starting) { s->temporal->head_picture = NO_PICTURE; s->temporal->head_skipped = 0; }
            if (numbering != NULL && numbering->picture_id_at >= 0) {
                skipped = temporal_admit(s, numbering, keyframe, seq);
                if (skipped < 0) { s->packets_skipped++; continue; }
            }
            if (starting) close_up_pictures(s);
        }
        uint16_t os;
        uint32_t ot;
        if (!map_packet(s, seq, ts, now, &os, &ot)) continue;
        if (numbering != NULL) vp8_renumber(&s->vp8, numbering, starting, skipped);
        int rc = send_copy(s, d, (size_t)data.len, (size_t)payload_start, ext.buf, (size_t)ext.len, os, ot,
                           now, numbering, skipped);
        if (rc < 0) goto out;
        queued += rc;
    }
    result = PyLong_FromLong(queued);
out:
    PyBuffer_Release(&data);
    PyBuffer_Release(&ext);
    return result;
}

static PyObject *FanOut_retransmit(FanOutObject *self, PyObject *args) {
    Py_ssize_t id;
    int out_seq;
    double now;
    if (!PyArg_ParseTuple(args, "nid", &id, &out_seq, &now)) return NULL;
    slot_t *s = get_slot(self, id);
    if (s == NULL) return NULL;
    uint16_t in_seq;
    if (!s->active || !self->history_len || !input_sequence(s, out_seq, &in_seq)) Py_RETURN_FALSE;
    history_entry_t *entry = &self->history[s->layer * self->history_len + in_seq % self->history_len];
    if (entry->seq != in_seq || now - entry->arrival > self->max_age) Py_RETURN_FALSE;
    uint32_t ts = ((uint32_t)entry->data[4] << 24) | ((uint32_t)entry->data[5] << 16) |
                  ((uint32_t)entry->data[6] << 8) | entry->data[7];
    uint16_t os;
    uint32_t ot;
    if (!map_packet(s, in_seq, ts, entry->arrival, &os, &ot) || os != (uint16_t)out_seq) Py_RETURN_FALSE;
    vp8_numbering_t numbering_buf, *numbering = NULL;
    int64_t skipped = 0;
    if (self->vp8) {
        numbering = &numbering_buf;
        vp8_parse(entry->data + entry->payload_start, (size_t)(entry->len - entry->payload_start), numbering);
        if (s->temporal != NULL && numbering->picture_id_at >= 0) {
            int64_t highest = s->ext_highest;
            int64_t ext = highest + ((((int64_t)in_seq - highest + SEQ_HALF) & SEQ_MASK) - SEQ_HALF);
            skipped = skips_pictures_before(&s->temporal->seqs, ext,
                                            picture_key(numbering->picture_id, numbering->picture_id_wide));
            if (skipped < 0) Py_RETURN_FALSE; /* a packet of a picture left out, come late */
        }
    }
    int rc = send_copy(s, entry->data, entry->len, entry->payload_start, entry->ext, entry->ext_len, os, ot,
                       now, numbering, skipped);
    if (rc < 0) return NULL;
    return PyBool_FromLong(rc);
}

static PyObject *FanOut_info(FanOutObject *self, PyObject *arg) {
    Py_ssize_t id = PyLong_AsSsize_t(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    slot_t *s = get_slot(self, id);
    if (s == NULL) return NULL;
    PyObject *key_frame_at = s->has_key_frame_at ? PyFloat_FromDouble(s->key_frame_at) : Py_NewRef(Py_None);
    if (key_frame_at == NULL) return NULL;
    const temporal_t *t = s->temporal;
    return Py_BuildValue("(iiNKKKKiiiiK)", s->active, s->waiting_key_frame, key_frame_at, s->packets_sent,
                         s->bytes_sent, s->payload_bytes_sent, s->packets_dropped, s->layer, s->target,
                         t != NULL ? t->ceiling : ALL_TEMPORAL_LAYERS, t != NULL ? t->layer : ALL_TEMPORAL_LAYERS,
                         s->packets_skipped);
}

static int check_layer(FanOutObject *self, int layer) {
    if (layer >= 0 && layer < self->layers) return 0;
    PyErr_SetString(PyExc_ValueError, "no such layer");
    return -1;
}

static PyObject *FanOut_set_target(FanOutObject *self, PyObject *args) {
    Py_ssize_t id;
    int layer;
    if (!PyArg_ParseTuple(args, "ni", &id, &layer)) return NULL;
    slot_t *s = get_slot(self, id);
    if (s == NULL || check_layer(self, layer) < 0) return NULL;
    s->target = layer;
    if (!s->active || s->waiting_key_frame) s->layer = layer; /* nothing flows: at once */
    Py_RETURN_NONE;
}

static PyObject *FanOut_set_temporal(FanOutObject *self, PyObject *args) {
    Py_ssize_t id;
    int temporal_id;
    if (!PyArg_ParseTuple(args, "ni", &id, &temporal_id)) return NULL;
    slot_t *s = get_slot(self, id);
    if (s == NULL) return NULL;
    if (temporal_id < 0 || temporal_id > ALL_TEMPORAL_LAYERS) {
        PyErr_SetString(PyExc_ValueError, "no such temporal layer");
        return NULL;
    }
    if (s->temporal == NULL) {
        if (temporal_id == ALL_TEMPORAL_LAYERS) Py_RETURN_NONE; /* nothing to filter yet */
        temporal_t *t = PyMem_Calloc(1, sizeof(temporal_t));
        if (t == NULL) return PyErr_NoMemory();
        t->ceiling = t->layer = ALL_TEMPORAL_LAYERS;
        t->head_picture = IN_FLIGHT;
        skips_clear(&t->seqs);
        s->temporal = t;
    }
    s->temporal->ceiling = temporal_id; /* down at once, up at a layer sync or key frame */
    if (s->temporal->layer > temporal_id) s->temporal->layer = temporal_id;
    Py_RETURN_NONE;
}

static PyObject *FanOut_set_timestamp_shift(FanOutObject *self, PyObject *args) {
    int layer;
    PyObject *shift;
    if (!PyArg_ParseTuple(args, "iO", &layer, &shift)) return NULL;
    if (check_layer(self, layer) < 0) return NULL;
    if (shift == Py_None) {
        self->has_shift[layer] = 0;
        Py_RETURN_NONE;
    }
    unsigned long long value = PyLong_AsUnsignedLongLongMask(shift);
    if (value == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    self->shift[layer] = (uint32_t)value;
    self->has_shift[layer] = 1;
    Py_RETURN_NONE;
}

static PyObject *FanOut_output_timestamp(FanOutObject *self, PyObject *args) {
    Py_ssize_t id;
    unsigned int ts;
    if (!PyArg_ParseTuple(args, "nI", &id, &ts)) return NULL;
    slot_t *s = get_slot(self, id);
    if (s == NULL) return NULL;
    if (s->new_epoch) Py_RETURN_NONE;
    return PyLong_FromUnsignedLong((uint32_t)(ts + s->ts_offset));
}

static PyObject *FanOut_input_sequence(FanOutObject *self, PyObject *args) {
    Py_ssize_t id;
    int out_seq;
    if (!PyArg_ParseTuple(args, "ni", &id, &out_seq)) return NULL;
    slot_t *s = get_slot(self, id);
    if (s == NULL) return NULL;
    uint16_t in_seq;
    if (!input_sequence(s, out_seq, &in_seq)) Py_RETURN_NONE;
    return PyLong_FromLong(in_seq);
}

static PyObject *FanOut_clear(FanOutObject *self, PyObject *Py_UNUSED(ignored)) {
    for (Py_ssize_t i = 0; i < self->slot_cap; i++)
        if (self->slots[i].used) {
            Py_CLEAR(self->slots[i].egress);
            PyMem_Free(self->slots[i].temporal);
            self->slots[i].temporal = NULL;
            self->slots[i].used = 0;
        }
    for (Py_ssize_t i = 0; i < self->history_len * self->layers; i++) self->history[i].seq = -1;
    Py_RETURN_NONE;
}

static PyMethodDef FanOut_methods[] = {
    {"add", (PyCFunction)(void (*)(void))FanOut_add, METH_VARARGS | METH_KEYWORDS, "Add a slot; returns its id."},
    {"remove", (PyCFunction)FanOut_remove, METH_O, "Remove a slot."},
    {"activate", (PyCFunction)FanOut_activate, METH_VARARGS, "(id, wait_for_key_frame): start a new epoch."},
    {"deactivate", (PyCFunction)FanOut_deactivate, METH_O, "Stop a slot."},
    {"forward", (PyCFunction)FanOut_forward, METH_VARARGS, "(data, payload_start, ext_body, keyframe, now[, layer])"},
    {"retransmit", (PyCFunction)FanOut_retransmit, METH_VARARGS, "(id, out_seq, now) -> bool"},
    {"info", (PyCFunction)FanOut_info, METH_O,
     "(active, waiting, key_frame_at, sent, bytes, payload, dropped, layer, target layer, temporal ceiling,"
     " temporal layer, skipped)"},
    {"set_target", (PyCFunction)FanOut_set_target, METH_VARARGS, "(id, layer): switch at its next key frame."},
    {"set_temporal", (PyCFunction)FanOut_set_temporal, METH_VARARGS,
     "(id, tid): forward VP8 frames up to that TID (3: all); up at a layer sync or key frame."},
    {"set_timestamp_shift", (PyCFunction)FanOut_set_timestamp_shift, METH_VARARGS,
     "(layer, shift | None): layer's timestamps + shift are on the common timeline."},
    {"output_timestamp", (PyCFunction)FanOut_output_timestamp, METH_VARARGS, "(id, ts) -> int | None"},
    {"input_sequence", (PyCFunction)FanOut_input_sequence, METH_VARARGS, "(id, out_seq) -> int | None"},
    {"clear", (PyCFunction)FanOut_clear, METH_NOARGS, "Remove every slot and forget the history."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FanOutType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sfu._fastpath.FanOut",
    .tp_basicsize = sizeof(FanOutObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)FanOut_init,
    .tp_dealloc = (destructor)FanOut_dealloc,
    .tp_methods = FanOut_methods,
    .tp_doc = "The consumers of one producer, with the retransmission history.",
};

/* ------------------------------------------------------------------------ */

/* Flush one list of dirty egresses (replaced by a fresh one first: a flush may not add). */
static int flush_list(PyObject **list, double now) {
    PyObject *batch = *list;
    PyObject *fresh = PyList_New(0);
    if (fresh == NULL) return -1;
    *list = fresh;
    Py_ssize_t n = PyList_GET_SIZE(batch);
    int failed = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        EgressObject *e = (EgressObject *)PyList_GET_ITEM(batch, i);
        if (list == &paced_waiting) e->waiting = 0; else e->dirty = 0;
        if (!failed && egress_flush(e, now) < 0) failed = 1;
    }
    Py_DECREF(batch);
    return failed ? -1 : (int)(n > INT_MAX ? INT_MAX : n);
}

static PyObject *flush_all(PyObject *Py_UNUSED(module), PyObject *args) {
    double now = -1.0; /* none given: everything goes, paced or not */
    if (!PyArg_ParseTuple(args, "|d", &now)) return NULL;
    /* Pipes first: another worker starts its own fan-out while we do ours. Then the
       pacers that hold packets and got none new (those that did were flushed above). */
    int first = flush_list(&dirty_first, now);
    int rest = first < 0 ? -1 : flush_list(&dirty_list, now);
    int paced = rest < 0 ? -1 : flush_list(&paced_waiting, now);
    if (first < 0 || rest < 0 || paced < 0) return NULL;
    return PyLong_FromLong((long)first + rest);
}

static PyObject *pending_count(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromSsize_t(PyList_GET_SIZE(dirty_list) + PyList_GET_SIZE(dirty_first));
}

static PyObject *paced_count(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromSsize_t(PyList_GET_SIZE(paced_waiting));
}

static PyMethodDef module_methods[] = {
    {"flush_all", flush_all, METH_VARARGS,
     "([now]) Send what was queued since the last flush, and what pacers allow by `now`."},
    {"pending", pending_count, METH_NOARGS, "How many egresses have queued packets."},
    {"paced", paced_count, METH_NOARGS, "How many egresses hold packets for their pacer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sfu._fastpath",
    "Native fan-out: rewrite, SRTP and batched sends for every consumer in one call.", -1, module_methods,
};

PyMODINIT_FUNC PyInit__fastpath(void) {
    if (PyType_Ready(&EgressType) < 0 || PyType_Ready(&FanOutType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    dirty_list = PyList_New(0);
    dirty_first = PyList_New(0);
    paced_waiting = PyList_New(0);
    if (dirty_list == NULL || dirty_first == NULL || paced_waiting == NULL) { Py_DECREF(m); return NULL; }
    Py_INCREF(&EgressType);
    Py_INCREF(&FanOutType);
    if (PyModule_AddObject(m, "Egress", (PyObject *)&EgressType) < 0 ||
        PyModule_AddObject(m, "FanOut", (PyObject *)&FanOutType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
