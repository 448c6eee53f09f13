/*
 * The native egress (sfu/_fastpath.c, its only includer): one peer's SRTP sender
 * and socket. Copies are queued as plain RTP, then numbered (transport-wide),
 * protected (AES-CM/HMAC-SHA1 or AES-GCM with OpenSSL's EVP) and logged as they
 * leave in one sendmmsg per flush, paced when a rate is set (_fastpath_pacer.h).
 * Static functions in a header included once: one translation unit.
 */
#ifndef STAGE_SFU_FASTPATH_EGRESS_H
#define STAGE_SFU_FASTPATH_EGRESS_H

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

#endif
