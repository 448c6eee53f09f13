/*
 * VP8 for the native fan-out (sfu/_fastpath.c, its only includer): the payload
 * descriptor's numbering read and patched per viewer, and the runs of packets a
 * viewer's temporal ceiling left out. Pure C on the packet bytes: no Python objects.
 * Static functions in a header included once: one translation unit, as before.
 */
#ifndef STAGE_SFU_FASTPATH_VP8_H
#define STAGE_SFU_FASTPATH_VP8_H

/* ------------------------------------------------------------------------ */
/* VP8 picture numbering (sfu/rtp/vp8.py): RFC 7741 §4.2 descriptor, read once per
 * packet and patched per viewer so PictureID and TL0PICIDX continue across epochs.  */

#define PICTURE_ID_MASK 0x7FFF
#define PICTURE_ID_MASK_NARROW 0x7F
#define TL0_MASK 0xFF

typedef struct {
    int picture_id_at;        /* offsets from the payload's start; -1 absent */
    int picture_id_wide;      /* 15-bit PictureID (M set), else 7-bit */
    int picture_id;
    int tl0_at;
    int tl0;
    int temporal_id;          /* -1 without T */
    int layer_sync;           /* Y: references TID 0 frames only */
} vp8_numbering_t;

/* One viewer's shifts and the newest numbers it was sent (-1: none yet). */
typedef struct {
    int picture_id_offset, tl0_offset, last_picture_id, last_tl0;
} vp8_state_t;

/* vp8.picture_numbering: no numbering when the descriptor has none or is truncated. */
static void vp8_parse(const uint8_t *p, size_t size, vp8_numbering_t *n) {
    *n = (vp8_numbering_t){-1, 0, 0, -1, 0, -1, 0};
    if (size < 2 || !(p[0] & 0x80)) return;
    uint8_t ext = p[1];
    size_t pos = 2;
    vp8_numbering_t found = {-1, 0, 0, -1, 0, -1, 0};
    if (ext & 0x80) {
        if (pos >= size) return;
        found.picture_id_wide = (p[pos] & 0x80) != 0;
        if (found.picture_id_wide) {
            if (pos + 1 >= size) return;
            found.picture_id = ((p[pos] & 0x7F) << 8) | p[pos + 1];
        } else {
            found.picture_id = p[pos];
        }
        found.picture_id_at = (int)pos;
        pos += found.picture_id_wide ? 2 : 1;
    }
    if (ext & 0x40) {
        if (pos >= size) return;
        found.tl0_at = (int)pos;
        found.tl0 = p[pos];
        pos++;
    }
    if (ext & 0x30) {
        if (pos >= size) return; /* TID/KEYIDX byte missing */
        if (ext & 0x20) {
            found.temporal_id = p[pos] >> 6;
            found.layer_sync = (p[pos] & 0x20) != 0;
        }
    }
    *n = found;
}

/* fanout._renumber: at an epoch's first packet, shift the numbering to continue where
 * the viewer left off; then remember the newest numbers sent (`skipped`: pictures left
 * out before this one, closed up). */
static void vp8_renumber(vp8_state_t *v, const vp8_numbering_t *n, int starting, int64_t skipped) {
    unsigned mask = n->picture_id_wide ? PICTURE_ID_MASK : PICTURE_ID_MASK_NARROW;
    if (starting && v->last_picture_id >= 0) {
        if (n->picture_id_at >= 0)
            v->picture_id_offset = (int)((unsigned)(v->last_picture_id + 1 - n->picture_id) & mask);
        if (n->tl0_at >= 0 && v->last_tl0 >= 0)
            v->tl0_offset = (int)((unsigned)(v->last_tl0 + 1 - n->tl0) & TL0_MASK);
    }
    if (n->picture_id_at >= 0) {
        int picture_id = (int)((uint64_t)(n->picture_id + v->picture_id_offset - skipped) & mask);
        unsigned ahead = (unsigned)(picture_id - v->last_picture_id) & mask;
        if (v->last_picture_id < 0 || (ahead > 0 && ahead <= mask >> 1)) v->last_picture_id = picture_id;
    }
    if (n->tl0_at >= 0) {
        int tl0 = (int)((unsigned)(n->tl0 + v->tl0_offset) & TL0_MASK);
        unsigned ahead = (unsigned)(tl0 - v->last_tl0) & TL0_MASK;
        if (v->last_tl0 < 0 || (ahead > 0 && ahead <= TL0_MASK >> 1)) v->last_tl0 = tl0;
    }
}

/* vp8.write_numbering with the viewer's shifts (the PictureID's less the `skipped`
 * pictures before it), into its copy's payload; only when a shift is non-zero, so a
 * first epoch stays byte-identical to the input. */
static void vp8_patch(const vp8_state_t *v, const vp8_numbering_t *n, uint8_t *payload, int64_t skipped) {
    int64_t picture_shift = v->picture_id_offset - skipped;
    if (!picture_shift && !v->tl0_offset) return;
    if (n->picture_id_at >= 0) {
        uint64_t picture_id = (uint64_t)(n->picture_id + picture_shift);
        uint8_t *at = payload + n->picture_id_at;
        if (n->picture_id_wide) {
            at[0] = (uint8_t)(0x80 | ((picture_id >> 8) & 0x7F));
            at[1] = (uint8_t)picture_id;
        } else {
            at[0] = (uint8_t)(picture_id & 0x7F);
        }
    }
    if (n->tl0_at >= 0) payload[n->tl0_at] = (uint8_t)(n->tl0 + v->tl0_offset);
}

/* ------------------------------------------------------------------------ */
/* Skipped packets (sfu/rtp/skips.py): the seqs (extended) of the current epoch left
 * out of a viewer's stream, in runs, with the pictures they started. Output seq =
 * input + offset - seqs skipped below; a PictureID is lowered by the pictures skipped
 * below its packet. Only seqs newer than any seen are skipped; the newest SKIP_RANGES
 * runs are kept, in a ring, and seqs below a forgotten run are refused.         */

#define SKIP_RANGES 64
#define SKIP_AT(k, i) (((k)->oldest + (i)) % SKIP_RANGES)

typedef struct {
    int64_t first[SKIP_RANGES], last[SKIP_RANGES];
    int pictures[SKIP_RANGES];        /* pictures whose first packet seen is in the run */
    int first_picture[SKIP_RANGES], last_picture[SKIP_RANGES]; /* picture_key of its ends */
    int oldest, count;
    int64_t total;            /* seqs skipped in all, forgotten runs included */
    int64_t pictures_total;   /* pictures skipped in all */
    int64_t floor;            /* seqs below were in a forgotten run or before it */
} skips_t;

/* skips.picture_key: a 7-bit PictureID never equals a 15-bit one. */
static int picture_key(int picture_id, int wide) { return wide ? picture_id | 0x8000 : picture_id; }

static void skips_clear(skips_t *k) {
    k->oldest = k->count = 0;
    k->total = k->pictures_total = 0;
    k->floor = INT64_MIN;
}

static void skips_add(skips_t *k, int64_t first, int64_t last, int picture, int new_picture) {
    int at;
    if (k->count && k->last[SKIP_AT(k, k->count - 1)] + 1 == first) {
        at = SKIP_AT(k, k->count - 1);
        k->pictures[at] += new_picture;
    } else {
        if (k->count == SKIP_RANGES) {
            k->floor = k->last[k->oldest] + 1;
            k->oldest = (k->oldest + 1) % SKIP_RANGES;
            k->count--;
        }
        at = SKIP_AT(k, k->count);
        k->count++;
        k->first[at] = first;
        k->pictures[at] = new_picture;
        k->first_picture[at] = picture;
    }
    k->last[at] = last;
    k->last_picture[at] = picture;
    k->total += last - first + 1;
    k->pictures_total += new_picture;
}

/* How many seqs below `seq` were skipped; -1 when it was itself, or is below the floor. */
static int64_t skips_below(const skips_t *k, int64_t seq) {
    if (seq < k->floor) return -1;
    int64_t count = k->total;
    for (int i = k->count - 1; i >= 0; i--) {
        int at = SKIP_AT(k, i);
        if (k->last[at] < seq) break;
        if (k->first[at] <= seq) return -1;
        count -= k->last[at] - k->first[at] + 1;
    }
    return count;
}

/* The unskipped seq at output `position` (itself minus the skips below it). */
static int64_t skips_expand(const skips_t *k, int64_t position) {
    int64_t seq = position + k->total;
    for (int i = k->count - 1; i >= 0; i--) {
        int at = SKIP_AT(k, i);
        if (k->last[at] < seq) break;
        seq -= k->last[at] - k->first[at] + 1;
    }
    return seq;
}

/* Pictures skipped before the packet `seq` of `picture` (seen before, or late); -1 when
 * its picture was skipped: its seq is in a run, or the run just below ends with its
 * picture, or the run just above starts with it (a frame's seqs are consecutive). */
static int64_t skips_pictures_before(const skips_t *k, int64_t seq, int picture) {
    if (seq < k->floor) return -1;
    int64_t count = k->pictures_total;
    int above = -1;
    for (int i = k->count - 1; i >= 0; i--) {
        int at = SKIP_AT(k, i);
        if (k->last[at] < seq) {
            if (k->last_picture[at] == picture) return -1;
            break;
        }
        if (k->first[at] <= seq) return -1;
        count -= k->pictures[at];
        above = k->first_picture[at];
    }
    return above == picture ? -1 : count;
}

/* One viewer's temporal ceiling (sfu/rtp/temporal.py TemporalFilter), allocated when a
 * ceiling is first set: frames of a higher TID are left out, and the epoch's seqs and
 * PictureIDs close up over them. */
#define ALL_TEMPORAL_LAYERS 3 /* the highest TID a descriptor carries: a ceiling that drops none */
#define NO_PICTURE (-1)
#define IN_FLIGHT (-2)        /* set up mid-stream: the picture at the head goes on, whatever it is */

typedef struct {
    int ceiling, layer;       /* asked; forwarded now (up only at a layer sync or key frame) */
    int head_picture;         /* picture_key of the newest packet decided; NO_PICTURE, IN_FLIGHT */
    int head_skipped;
    skips_t seqs;
} temporal_t;

#endif
