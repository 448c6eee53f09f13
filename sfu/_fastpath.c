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

/* PROFILE_NONE: plain RTP, for pipes between workers of one deployment (no DTLS to key it). */
enum { PROFILE_CM_SHA1_80 = 0, PROFILE_GCM = 1, PROFILE_NONE = 2 };

/* ------------------------------------------------------------------------ */
/* Egress: one peer's SRTP sender and socket                                 */

typedef struct {
    uint32_t ssrc;
    int64_t highest;  /* highest 48-bit packet index sent; -1 = unused slot */
} roc_entry;

typedef struct {
    PyObject_HEAD
    int profile;
    EVP_CIPHER_CTX *cipher;   /* AES-CTR (key set, IV per packet) or AES-GCM */
    EVP_MD_CTX *inner;        /* HMAC-SHA1 precomputed ipad state */
    EVP_MD_CTX *outer;        /* HMAC-SHA1 precomputed opad state */
    EVP_MD_CTX *scratch;
    uint8_t salt[14];
    int salt_len;
    roc_entry *rocs;
    Py_ssize_t roc_cap, roc_count;
    int fd;                   /* our own dup of the transport's socket; -1 = capture mode (tests) */
    int owns_fd;              /* fd is ours to close (zeroed objects own none) */
    int closed;               /* close() ran: nothing is queued or sent any more */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    uint8_t (*pending)[MAX_PACKET]; /* built this loop iteration, plain RTP */
    queued_t pending_queued[BATCH];
    int pending_count;
    pacer_t pacer;
    int waiting;              /* listed in paced_waiting: its pacer holds packets */
    int dirty;                /* listed in one of the module's flush lists */
    int first;                /* flushed before the others (a pipe: more viewers wait on it) */
    PyObject *captured;       /* list of bytes in capture mode */
    unsigned long long packets_sent, packets_dropped, bytes_sent;
    /* Transport-wide sequence numbers (sfu/rtp/send_log.py SendLog): the one-byte
       extension id (0 = copies are not stamped), the next number, and per number
       modulo TCC_HISTORY what went out under it (size 0 = nothing yet). */
    int tcc_id;
    uint16_t tcc_next;
    uint16_t *tcc_seqs;
    uint16_t *tcc_sizes;      /* bytes on the wire, after protection */
    double *tcc_times;        /* when it left (unpaced: the `now` of the forward that built it) */
} EgressObject;

static PyObject *dirty_list = NULL; /* egresses with queued packets */
static PyObject *dirty_first = NULL; /* those of them flushed first */
static PyObject *paced_waiting = NULL; /* egresses whose pacer holds packets */

static int hmac_prepare(EgressObject *self, const uint8_t *key, size_t key_len) {
    uint8_t pad[64];
    const EVP_MD *sha1 = EVP_sha1();
    self->inner = EVP_MD_CTX_new();
    self->outer = EVP_MD_CTX_new();
    self->scratch = EVP_MD_CTX_new();
    if (!self->inner || !self->outer || !self->scratch || key_len > 64) return -1;
    memset(pad, 0x36, sizeof pad);
    for (size_t i = 0; i < key_len; i++) pad[i] ^= key[i];
    if (!EVP_DigestInit_ex(self->inner, sha1, NULL) || !EVP_DigestUpdate(self->inner, pad, 64)) return -1;
    memset(pad, 0x5c, sizeof pad);
    for (size_t i = 0; i < key_len; i++) pad[i] ^= key[i];
    if (!EVP_DigestInit_ex(self->outer, sha1, NULL) || !EVP_DigestUpdate(self->outer, pad, 64)) return -1;
    return 0;
}

static int hmac_sha1_80(EgressObject *self, const uint8_t *msg, size_t len, const uint8_t roc[4],
                        uint8_t out[10]) {
    uint8_t inner_digest[20], digest[20];
    unsigned int n = 0;
    if (!EVP_MD_CTX_copy_ex(self->scratch, self->inner) || !EVP_DigestUpdate(self->scratch, msg, len) ||
        !EVP_DigestUpdate(self->scratch, roc, 4) || !EVP_DigestFinal_ex(self->scratch, inner_digest, &n))
        return -1;
    if (!EVP_MD_CTX_copy_ex(self->scratch, self->outer) ||
        !EVP_DigestUpdate(self->scratch, inner_digest, 20) || !EVP_DigestFinal_ex(self->scratch, digest, &n))
        return -1;
    memcpy(out, digest, 10);
    return 0;
}

/* RFC 3711 §3.3.1 index estimation, exactly as libsrtp (see sfu/srtp.py RocTracker). */
static int64_t roc_index(EgressObject *self, uint32_t ssrc, uint16_t seq) {
    roc_entry *entry = NULL;
    for (Py_ssize_t i = 0; i < self->roc_count; i++)
        if (self->rocs[i].ssrc == ssrc) { entry = &self->rocs[i]; break; }
    if (entry == NULL) {
        if (self->roc_count == self->roc_cap) {
            Py_ssize_t cap = self->roc_cap ? self->roc_cap * 2 : 8;
            roc_entry *grown = PyMem_Realloc(self->rocs, (size_t)cap * sizeof(roc_entry));
            if (grown == NULL) return -1;
            self->rocs = grown;
            self->roc_cap = cap;
        }
        entry = &self->rocs[self->roc_count++];
        entry->ssrc = ssrc;
        entry->highest = seq;
        return seq;
    }
    int64_t highest = entry->highest, guess;
    int64_t delta;
    if (highest > SEQ_HALF) {
        int64_t roc = highest >> 16, local = highest & SEQ_MASK;
        if (local < SEQ_HALF) {
            if ((int64_t)seq - local > SEQ_HALF) { guess = ((roc - 1) << 16) | seq; delta = seq - local - 0x10000; }
            else { guess = (roc << 16) | seq; delta = seq - local; }
        } else if (local - SEQ_HALF > seq) {
            guess = ((roc + 1) << 16) | seq; delta = seq - local + 0x10000;
        } else { guess = (roc << 16) | seq; delta = seq - local; }
    } else {
        guess = seq;
        delta = (int64_t)seq - (highest & SEQ_MASK);
    }
    if (delta > 0) entry->highest = guess;
    return guess & 0xFFFFFFFFFFFFLL;
}

/* Protect `buf[0:len]` in place (header of `header_len`); returns the new length or -1. */
static Py_ssize_t protect(EgressObject *self, uint8_t *buf, size_t len, size_t header_len) {
    if (self->profile == PROFILE_NONE) return (Py_ssize_t)len;
    uint32_t ssrc = ((uint32_t)buf[8] << 24) | ((uint32_t)buf[9] << 16) | ((uint32_t)buf[10] << 8) | buf[11];
    uint16_t seq = (uint16_t)((buf[2] << 8) | buf[3]);
    int64_t index = roc_index(self, ssrc, seq);
    if (index < 0) return -1;
    uint32_t roc = (uint32_t)(index >> 16);
    uint8_t roc_bytes[4] = {(uint8_t)(roc >> 24), (uint8_t)(roc >> 16), (uint8_t)(roc >> 8), (uint8_t)roc};
    int outl = 0;
    if (self->profile == PROFILE_GCM) {
        uint8_t iv[12] = {0, 0, buf[8], buf[9], buf[10], buf[11], roc_bytes[0], roc_bytes[1],
                          roc_bytes[2], roc_bytes[3], buf[2], buf[3]};
        for (int i = 0; i < 12; i++) iv[i] ^= self->salt[i];
        if (!EVP_EncryptInit_ex(self->cipher, NULL, NULL, NULL, iv) ||
            !EVP_EncryptUpdate(self->cipher, NULL, &outl, buf, (int)header_len) ||
            !EVP_EncryptUpdate(self->cipher, buf + header_len, &outl, buf + header_len,
                               (int)(len - header_len)) ||
            !EVP_EncryptFinal_ex(self->cipher, buf + len, &outl) ||
            !EVP_CIPHER_CTX_ctrl(self->cipher, EVP_CTRL_GCM_GET_TAG, 16, buf + len))
            return -1;
        return (Py_ssize_t)len + 16;
    }
    uint8_t iv[16];
    memcpy(iv, self->salt, 14);
    iv[14] = iv[15] = 0;
    iv[4] ^= buf[8]; iv[5] ^= buf[9]; iv[6] ^= buf[10]; iv[7] ^= buf[11];
    for (int i = 0; i < 6; i++) iv[8 + i] ^= (uint8_t)(index >> (8 * (5 - i)));
    if (!EVP_EncryptInit_ex(self->cipher, NULL, NULL, NULL, iv) ||
        !EVP_EncryptUpdate(self->cipher, buf + header_len, &outl, buf + header_len, (int)(len - header_len)))
        return -1;
    if (hmac_sha1_80(self, buf, len, roc_bytes, buf + len) < 0) return -1;
    return (Py_ssize_t)len + 10;
}

/* Send `count` (at most BATCH) protected packets to the peer, or keep them in capture mode. */
static int egress_transmit(EgressObject *self, uint8_t **bufs, const size_t *lens, int count) {
    if (count == 0) return 0;
    if (self->captured != NULL) {
        for (int i = 0; i < count; i++) {
            PyObject *packet = PyBytes_FromStringAndSize((const char *)bufs[i], (Py_ssize_t)lens[i]);
            if (packet == NULL || PyList_Append(self->captured, packet) < 0) { Py_XDECREF(packet); return -1; }
            Py_DECREF(packet);
            self->packets_sent++;
            self->bytes_sent += lens[i];
        }
        return 0;
    }
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    memset(msgs, 0, sizeof(msgs[0]) * (size_t)count);
    for (int i = 0; i < count; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = lens[i];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &self->addr;
        msgs[i].msg_hdr.msg_namelen = self->addr_len;
    }
    int done = 0;
    while (done < count) {
        int n = sendmmsg(self->fd, msgs + done, (unsigned int)(count - done), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            break; /* EAGAIN (socket full: a slow peer) or gone: drop the rest */
        }
        for (int i = done; i < done + n; i++) self->bytes_sent += lens[i];
        done += n;
    }
    self->packets_sent += (unsigned long long)done;
    self->packets_dropped += (unsigned long long)(count - done);
    return 0;
}

static uint32_t packet_ssrc(const uint8_t *packet) {
    return ((uint32_t)packet[8] << 24) | ((uint32_t)packet[9] << 16) | ((uint32_t)packet[10] << 8) | packet[11];
}

/* A batch being gathered for one sendmmsg. */
typedef struct {
    uint8_t *bufs[BATCH];
    size_t lens[BATCH];
    int count;
} batch_t;

/* One packet leaves at `at`: stamped with the next transport-wide number, protected
 * and logged, then added to the batch (sent when full). Dropped if it cannot be protected. */
static int batch_add(EgressObject *self, batch_t *b, uint8_t *buf, const queued_t *q, double at) {
    if (q->len == 0) return 0; /* its SSRC was forgotten while it waited */
    uint16_t transport_seq = 0;
    if (q->stamp_at) {
        transport_seq = self->tcc_next++;
        buf[q->stamp_at] = (uint8_t)(transport_seq >> 8);
        buf[q->stamp_at + 1] = (uint8_t)transport_seq;
    }
    Py_ssize_t n = protect(self, buf, q->len, q->header_len);
    if (n < 0) { self->packets_dropped++; return 0; }
    if (q->stamp_at) {
        size_t slot = transport_seq % TCC_HISTORY;
        self->tcc_seqs[slot] = transport_seq;
        self->tcc_sizes[slot] = (uint16_t)n;
        self->tcc_times[slot] = at;
    }
    b->bufs[b->count] = buf;
    b->lens[b->count++] = (size_t)n;
    if (b->count < BATCH) return 0;
    b->count = 0;
    return egress_transmit(self, b->bufs, b->lens, BATCH);
}

static int batch_send(EgressObject *self, batch_t *b) {
    int count = b->count;
    b->count = 0;
    return egress_transmit(self, b->bufs, b->lens, count);
}

/* The pacer's head leaves at `now` (< 0: when it was built). */
static int egress_release_head(EgressObject *self, batch_t *b, double now) {
    pacer_t *p = &self->pacer;
    int at = pacer_pop(p);
    const queued_t *q = &p->queued[at];
    return batch_add(self, b, p->packets[at], q, now < 0 ? q->built_at : now);
}

static int egress_wait_listed(EgressObject *self) {
    if (self->waiting || self->pacer.count == 0) return 0;
    if (PyList_Append(paced_waiting, (PyObject *)self) < 0) return -1;
    self->waiting = 1;
    return 0;
}

/* Send what is queued. Paced (a rate set and `now` >= 0): audio at once, the rest
 * behind what the pacer holds, and from the pacer what the rate allows by `now`.
 * Otherwise everything, the pacer's first (`now` < 0: a drain, by tests or a close). */
static int egress_flush(EgressObject *self, double now) {
    int count = self->pending_count;
    pacer_t *p = &self->pacer;
    self->pending_count = 0;
    if (self->closed) {
        self->packets_dropped += (unsigned long long)count + (unsigned long long)p->count;
        p->head = p->count = 0;
        p->bytes = 0;
        return 0;
    }
    batch_t b = {.count = 0};
    if (p->rate <= 0 || now < 0) {
        while (p->count) if (egress_release_head(self, &b, now) < 0) return -1;
        for (int i = 0; i < count; i++) {
            const queued_t *q = &self->pending_queued[i];
            if (batch_add(self, &b, self->pending[i], q, q->built_at) < 0) return -1;
        }
        p->budget = 0;
        return batch_send(self, &b);
    }
    pacer_top_up(p, now);
    for (int i = 0; i < count; i++) {
        const queued_t *q = &self->pending_queued[i];
        if (q->urgent) {
            if (q->urgent == URGENT_MEDIA) p->budget -= (double)q->len;
            if (batch_add(self, &b, self->pending[i], q, q->built_at) < 0) return -1;
            continue;
        }
        if (pacer_full(p)) {
            /* The oldest goes now, before its buffer is reused by the push below. */
            p->overdue++;
            if (egress_release_head(self, &b, now) < 0 || batch_send(self, &b) < 0) return -1;
        }
        if (pacer_push(p, self->pending[i], q) < 0) return -1;
    }
    while (pacer_head_due(p, now))
        if (egress_release_head(self, &b, now) < 0) return -1;
    if (batch_send(self, &b) < 0) return -1;
    return egress_wait_listed(self);
}

/* Reserve the next output buffer; flushes when the batch is full. */
static uint8_t *egress_slot(EgressObject *self, double now) {
    if (self->pending == NULL) {
        self->pending = PyMem_Malloc(sizeof(*self->pending) * BATCH);
        if (self->pending == NULL) { PyErr_NoMemory(); return NULL; }
    }
    if (self->pending_count == BATCH && egress_flush(self, now) < 0) return NULL;
    if (!self->dirty) {
        if (PyList_Append(self->first ? dirty_first : dirty_list, (PyObject *)self) < 0) return NULL;
        self->dirty = 1;
    }
    return self->pending[self->pending_count];
}

/* The reserved buffer holds a plain packet of `len` bytes (`header_len` of header, its
 * transport-wide number's two bytes at `stamp_at`, 0: none), built at `now`. */
static void egress_commit(EgressObject *self, size_t len, size_t header_len, size_t stamp_at, int urgent,
                          double now) {
    self->pending_queued[self->pending_count++] = (queued_t){
        (uint16_t)len, (uint16_t)header_len, (uint16_t)stamp_at, (uint8_t)urgent, now};
}

/* Key the cipher (and HMAC for AES-CM) of an SRTP profile; sets a Python error on failure. */
static int cipher_prepare(EgressObject *self, const EVP_CIPHER *cipher, Py_buffer *key, Py_buffer *salt,
                          Py_buffer *auth) {
    self->cipher = EVP_CIPHER_CTX_new();
    if (self->cipher == NULL || !EVP_EncryptInit_ex(self->cipher, cipher, NULL, key->buf, NULL)) {
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL cipher setup failed"); return -1;
    }
    if (self->profile == PROFILE_GCM && !EVP_CIPHER_CTX_ctrl(self->cipher, EVP_CTRL_GCM_SET_IVLEN, 12, NULL)) {
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL GCM setup failed"); return -1;
    }
    if (self->profile == PROFILE_CM_SHA1_80 && hmac_prepare(self, auth->buf, (size_t)auth->len) < 0) {
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL HMAC setup failed"); return -1;
    }
    memcpy(self->salt, salt->buf, (size_t)salt->len);
    self->salt_len = (int)salt->len;
    return 0;
}

static void egress_release_fd(EgressObject *self);

static void egress_log_free(EgressObject *self) {
    PyMem_Free(self->tcc_seqs);
    PyMem_Free(self->tcc_sizes);
    PyMem_Free(self->tcc_times);
    self->tcc_seqs = self->tcc_sizes = NULL;
    self->tcc_times = NULL;
}

/* The send log of a stamping egress, empty (sets a Python error on failure). */
static int egress_log_prepare(EgressObject *self) {
    egress_log_free(self);
    self->tcc_next = 0;
    self->tcc_seqs = PyMem_Calloc(TCC_HISTORY, sizeof(uint16_t));
    self->tcc_sizes = PyMem_Calloc(TCC_HISTORY, sizeof(uint16_t));
    self->tcc_times = PyMem_Calloc(TCC_HISTORY, sizeof(double));
    if (self->tcc_seqs == NULL || self->tcc_sizes == NULL || self->tcc_times == NULL) {
        egress_log_free(self);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int Egress_init(EgressObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"profile", "key", "salt", "auth_key", "fd", "address", "first",
                             "transport_cc_id", NULL};
    const char *profile;
    Py_buffer key, salt, auth;
    int fd, first = 0, tcc_id = 0;
    PyObject *address;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "sy*y*y*iO|pi", kwlist, &profile, &key, &salt, &auth, &fd,
                                     &address, &first, &tcc_id))
        return -1;
    self->first = first;
    self->pacer.topped_at = -1;
    egress_release_fd(self);
    int rc = -1;
    const EVP_CIPHER *cipher = NULL;
    if (strcmp(profile, "SRTP_AES128_CM_SHA1_80") == 0) {
        self->profile = PROFILE_CM_SHA1_80;
        cipher = EVP_aes_128_ctr();
        if (key.len != 16 || salt.len != 14 || auth.len != 20) { PyErr_SetString(PyExc_ValueError, "bad key sizes"); goto done; }
    } else if (strcmp(profile, "SRTP_AEAD_AES_128_GCM") == 0 || strcmp(profile, "SRTP_AEAD_AES_256_GCM") == 0) {
        self->profile = PROFILE_GCM;
        cipher = key.len == 32 ? EVP_aes_256_gcm() : EVP_aes_128_gcm();
        if ((key.len != 16 && key.len != 32) || salt.len != 12) { PyErr_SetString(PyExc_ValueError, "bad key sizes"); goto done; }
    } else if (strcmp(profile, "NONE") == 0) {
        self->profile = PROFILE_NONE;
    } else {
        PyErr_Format(PyExc_ValueError, "unsupported SRTP profile %s", profile);
        goto done;
    }
    if (self->profile != PROFILE_NONE && cipher_prepare(self, cipher, &key, &salt, &auth) < 0) goto done;
    if (tcc_id < 0 || tcc_id > 14) { PyErr_SetString(PyExc_ValueError, "transport_cc_id: 0 (off) or 1..14"); goto done; }
    egress_log_free(self);  /* a second __init__ starts a new log, or none */
    if (tcc_id && egress_log_prepare(self) < 0) goto done;
    self->tcc_id = tcc_id;
    self->fd = -1;
    if (fd < 0) {
        self->captured = PyList_New(0);
        if (self->captured == NULL) goto done;
    } else {
        /* Our own descriptor for the same socket: once the transport closes its own,
           the number may be reused by another socket, which must never get our packets. */
        self->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (self->fd < 0) { PyErr_SetFromErrno(PyExc_OSError); goto done; }
        self->owns_fd = 1;
        const char *host;
        int port;
        if (!PyArg_ParseTuple(address, "si", &host, &port)) goto done;
        memset(&self->addr, 0, sizeof self->addr);
        struct sockaddr_in *v4 = (struct sockaddr_in *)&self->addr;
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&self->addr;
        if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET; v4->sin_port = htons((uint16_t)port); self->addr_len = sizeof *v4;
        } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
            v6->sin6_family = AF_INET6; v6->sin6_port = htons((uint16_t)port); self->addr_len = sizeof *v6;
        } else { PyErr_Format(PyExc_ValueError, "bad address %s", host); goto done; }
    }
    rc = 0;
done:
    PyBuffer_Release(&key);
    PyBuffer_Release(&salt);
    PyBuffer_Release(&auth);
    return rc;
}

static void egress_release_fd(EgressObject *self) {
    if (self->owns_fd) close(self->fd);
    self->owns_fd = 0;
    self->fd = -1;
}

static void Egress_dealloc(EgressObject *self) {
    egress_release_fd(self);
    if (self->cipher) EVP_CIPHER_CTX_free(self->cipher);
    if (self->inner) EVP_MD_CTX_free(self->inner);
    if (self->outer) EVP_MD_CTX_free(self->outer);
    if (self->scratch) EVP_MD_CTX_free(self->scratch);
    PyMem_Free(self->rocs);
    PyMem_Free(self->pending);
    pacer_free(&self->pacer);
    egress_log_free(self);
    Py_XDECREF(self->captured);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Egress_protect(EgressObject *self, PyObject *arg) {
    /* Protect one RTP packet and return it (tests and one-off sends). */
    Py_buffer in;
    if (PyObject_GetBuffer(arg, &in, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *result = NULL;
    uint8_t buf[MAX_PACKET];
    if (in.len < 12 || in.len > MAX_IN_PACKET) { PyErr_SetString(PyExc_ValueError, "bad RTP packet"); goto out; }
    memcpy(buf, in.buf, (size_t)in.len);
    size_t header = 12 + 4 * (size_t)(buf[0] & 0x0F);
    if (buf[0] & 0x10) {
        if ((Py_ssize_t)header + 4 > in.len) { PyErr_SetString(PyExc_ValueError, "bad RTP packet"); goto out; }
        header += 4 + 4 * (size_t)((buf[header + 2] << 8) | buf[header + 3]);
    }
    if ((Py_ssize_t)header > in.len) { PyErr_SetString(PyExc_ValueError, "bad RTP packet"); goto out; }
    Py_ssize_t n = protect(self, buf, (size_t)in.len, header);
    if (n < 0) { if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "SRTP protect failed"); goto out; }
    result = PyBytes_FromStringAndSize((const char *)buf, n);
out:
    PyBuffer_Release(&in);
    return result;
}

/* Send one RTP packet the Python side built (probe padding), queued like a fan-out
 * copy: its transport-wide number goes in the two bytes at `at` (the element's value)
 * when it leaves, then it is protected and logged. It never waits for the pacer: the
 * prober sends it at its cluster's rate, which must measure the link, not the pacer.
 * False when it was dropped. */
static PyObject *Egress_send_stamped(EgressObject *self, PyObject *args) {
    Py_buffer in;
    Py_ssize_t at;
    double now;
    if (!PyArg_ParseTuple(args, "y*nd", &in, &at, &now)) return NULL;
    PyObject *result = NULL;
    size_t len = (size_t)in.len;
    if (in.len < 16 || len + 16 > MAX_PACKET || !self->tcc_id || at < 16 || at + 2 > in.len) {
        PyErr_SetString(PyExc_ValueError, "bad packet to stamp");
        goto out;
    }
    size_t header = 12 + 4 * (size_t)(((const uint8_t *)in.buf)[0] & 0x0F);
    const uint8_t *raw = in.buf;
    if (!(raw[0] & 0x10) || header + 4 > len) { PyErr_SetString(PyExc_ValueError, "bad packet to stamp"); goto out; }
    header += 4 + 4 * (size_t)((raw[header + 2] << 8) | raw[header + 3]);
    if (header > len || (size_t)at + 2 > header) { PyErr_SetString(PyExc_ValueError, "bad packet to stamp"); goto out; }
    if (self->closed) { self->packets_dropped++; result = Py_NewRef(Py_False); goto out; }
    uint8_t *buf = egress_slot(self, now);
    if (buf == NULL) goto out;
    memcpy(buf, in.buf, len);
    egress_commit(self, len, header, (size_t)at, URGENT_PROBE, now);
    result = Py_NewRef(Py_True);
out:
    PyBuffer_Release(&in);
    return result;
}

static PyObject *Egress_take_captured(EgressObject *self, PyObject *Py_UNUSED(ignored)) {
    /* Paced, what was captured so far: the test flushes at the times it chooses. */
    if (self->pacer.rate <= 0 && egress_flush(self, -1.0) < 0) return NULL;
    if (self->captured == NULL) return PyList_New(0);
    PyObject *out = self->captured;
    self->captured = PyList_New(0);
    return out;
}

static PyObject *Egress_flush(EgressObject *self, PyObject *args) {
    double now = -1.0;
    if (!PyArg_ParseTuple(args, "|d", &now)) return NULL;
    if (egress_flush(self, now) < 0) return NULL;
    Py_RETURN_NONE;
}

/* The rate the egress sends at, in bit/s (0: as fast as packets come). */
static PyObject *Egress_set_pacing(EgressObject *self, PyObject *arg) {
    double bps = PyFloat_AsDouble(arg);
    if (bps == -1.0 && PyErr_Occurred()) return NULL;
    if (!isfinite(bps) || bps < 0) { PyErr_SetString(PyExc_ValueError, "pacing rate: >= 0 bit/s"); return NULL; }
    self->pacer.rate = bps / 8;
    if (bps == 0 && egress_wait_listed(self) < 0) return NULL; /* drained at the next flush */
    Py_RETURN_NONE;
}

static PyObject *Egress_paced(EgressObject *self, PyObject *Py_UNUSED(ignored)) {
    pacer_t *p = &self->pacer;
    return Py_BuildValue("(inK)", p->count, (Py_ssize_t)p->bytes, p->overdue);
}

static PyObject *Egress_close(EgressObject *self, PyObject *Py_UNUSED(ignored)) {
    /* Drop what is queued and stop using the socket: the transport is closing. A slot
       may still name this egress until it is removed; its copies are counted dropped. */
    self->packets_dropped += (unsigned long long)self->pending_count + (unsigned long long)self->pacer.count;
    self->pending_count = 0;
    pacer_free(&self->pacer);
    self->closed = 1;
    egress_release_fd(self);
    Py_RETURN_NONE;
}

static PyObject *Egress_stats(EgressObject *self, PyObject *Py_UNUSED(ignored)) {
    return Py_BuildValue("(KKK)", self->packets_sent, self->bytes_sent, self->packets_dropped);
}

/* A consumer closed: its SSRC's packet index is not needed any more, and a long session
 * (hundreds of stage entries) must not grow the table every packet searches. The
 * transport never reuses a forgotten SSRC (the index would restart: keystream reuse). */
static PyObject *Egress_forget(EgressObject *self, PyObject *arg) {
    unsigned long ssrc = PyLong_AsUnsignedLong(arg);
    if (ssrc == (unsigned long)-1 && PyErr_Occurred()) return NULL;
    /* Its copies still waiting are not sent: protecting them would bring the index back. */
    for (int i = 0; i < self->pending_count; i++) {
        if (self->pending_queued[i].len && packet_ssrc(self->pending[i]) == (uint32_t)ssrc) {
            self->pending_queued[i].len = 0;
            self->packets_dropped++;
        }
    }
    pacer_t *p = &self->pacer;
    for (int i = 0; i < p->count; i++) {
        int at = (p->head + i) % p->capacity;
        if (p->queued[at].len && packet_ssrc(p->packets[at]) == (uint32_t)ssrc) {
            p->bytes -= p->queued[at].len;
            p->queued[at].len = 0;
            self->packets_dropped++;
        }
    }
    for (Py_ssize_t i = 0; i < self->roc_count; i++) {
        if (self->rocs[i].ssrc == (uint32_t)ssrc) {
            self->rocs[i] = self->rocs[--self->roc_count];
            break;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *Egress_tracked(EgressObject *self, PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromSsize_t(self->roc_count);
}

/* SendLog.sent_packets: (send time, bytes on the wire) or None for `count` transport-wide
 * numbers from `first` on, wrapping at 2^16; all None when this egress does not stamp. */
static PyObject *Egress_sent_packets(EgressObject *self, PyObject *args) {
    long first, count;
    if (!PyArg_ParseTuple(args, "ll", &first, &count)) return NULL;
    if (count < 0 || count > SEQ_MASK + 1) {
        PyErr_SetString(PyExc_ValueError, "count: 0..65536");
        return NULL;
    }
    PyObject *out = PyList_New(count);
    if (out == NULL) return NULL;
    for (long i = 0; i < count; i++) {
        uint16_t seq = (uint16_t)((unsigned long)first + (unsigned long)i);
        size_t at = seq % TCC_HISTORY;
        PyObject *item;
        if (self->tcc_sizes != NULL && self->tcc_sizes[at] && self->tcc_seqs[at] == seq)
            item = Py_BuildValue("(di)", self->tcc_times[at], (int)self->tcc_sizes[at]);
        else
            item = Py_NewRef(Py_None);
        if (item == NULL) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, i, item);
    }
    return out;
}

static PyMethodDef Egress_methods[] = {
    {"protect", (PyCFunction)Egress_protect, METH_O, "SRTP-protect one RTP packet."},
    {"send_stamped", (PyCFunction)Egress_send_stamped, METH_VARARGS,
     "Stamp (transport-wide number at byte `at`), log, protect and queue one RTP packet."},
    {"take_captured", (PyCFunction)Egress_take_captured, METH_NOARGS, "Capture mode: the packets so far."},
    {"flush", (PyCFunction)Egress_flush, METH_VARARGS,
     "([now]) Send what is queued (sendmmsg); paced, what the rate allows by `now`."},
    {"set_pacing", (PyCFunction)Egress_set_pacing, METH_O, "(bit/s) Pace at this rate; 0: do not."},
    {"paced", (PyCFunction)Egress_paced, METH_NOARGS, "(packets, bytes) waiting for the pacer, overdue sent"},
    {"close", (PyCFunction)Egress_close, METH_NOARGS, "Stop sending; drop what is queued."},
    {"stats", (PyCFunction)Egress_stats, METH_NOARGS, "(packets_sent, bytes_sent, packets_dropped)"},
    {"forget", (PyCFunction)Egress_forget, METH_O, "Drop one SSRC's packet index."},
    {"tracked", (PyCFunction)Egress_tracked, METH_NOARGS, "How many SSRCs have a packet index."},
    {"sent_packets", (PyCFunction)Egress_sent_packets, METH_VARARGS,
     "(first, count) -> [(send time, bytes on the wire) | None]: the transport-wide send log."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EgressType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sfu._fastpath.Egress",
    .tp_basicsize = sizeof(EgressObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Egress_init,
    .tp_dealloc = (destructor)Egress_dealloc,
    .tp_methods = Egress_methods,
    .tp_doc = "One peer's SRTP sender and socket (fd < 0: capture mode for tests).",
};

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
