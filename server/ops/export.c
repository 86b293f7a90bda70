/* A user's data export (export.h). */
#include "export.h"

#include "pbjson.h"
#include "tw/store/v1/voice_records.pb-c.h"
#include "tw_array.h"
#include "tw_hex.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Secrets that serve only the server: never exported (docs/export.md). */
static const struct {
    const char *message;
    const char *const fields[3];
} redactions[] = {
    {"tw.store.v1.Account", {"password_hash", NULL}},
    {"tw.store.v1.Session", {"refresh_key", NULL}},
};

struct note_ref {
    char id[TW_ID_TEXT_SIZE];
    char *blob_key;
    char *sha256;
    char *content_type;
    uint64_t size;
};

struct tw_export {
    tw_store *store;
    tw_blob_store *blobs;
    tw_id user;
    /* Records: the next family to read (an index into tw_keyspace) and the
     * last key read of it. */
    int family;
    uint8_t cursor[TW_KEY_MAX];
    size_t cursor_len;
    /* Audio: the notes met among the records, and where the current one is. */
    struct note_ref *notes;
    size_t nnotes, notes_cap, note;
    tw_blob_reader *reader;
    uint64_t offset;
};

tw_err tw_export_open(tw_store *s, tw_blob_store *blobs, const tw_id *user, tw_export **out)
{
    tw_export *x = calloc(1, sizeof *x);
    if (x == NULL)
        return TW_ERR_NO_MEMORY;
    x->store = s;
    x->blobs = blobs;
    x->user = *user;
    *out = x;
    return TW_OK;
}

void tw_export_close(tw_export *x)
{
    if (x == NULL)
        return;
    tw_blob_reader_close(x->reader);
    for (size_t i = 0; i < x->nnotes; i++) {
        free(x->notes[i].blob_key);
        free(x->notes[i].sha256);
        free(x->notes[i].content_type);
    }
    free(x->notes);
    free(x);
}

/* ---- records ------------------------------------------------------------------ */

static const char *const *redacted_fields(const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < sizeof redactions / sizeof redactions[0]; i++)
        if (strcmp(redactions[i].message, d->name) == 0)
            return redactions[i].fields;
    return NULL;
}

static json_t *hex_json(const uint8_t *bytes, size_t len)
{
    char *text = malloc(2 * len + 1);
    if (text == NULL)
        return NULL;
    tw_hex_encode(bytes, len, text);
    json_t *out = json_string(text);
    free(text);
    return out;
}

static json_t *id_json(const tw_id *id)
{
    char text[TW_ID_TEXT_SIZE];
    tw_id_format(id, text);
    return json_string(text);
}

/* The parts of a key, by name, as JSON. */
static json_t *key_json(const tw_key_family *f, tw_key_reader *r, tw_arena *arena)
{
    json_t *out = json_object();
    for (int i = 0; out != NULL && i < f->nparts; i++) {
        const tw_key_part_spec *p = &f->parts[i];
        json_t *v = NULL;
        tw_id id;
        uint64_t u64;
        int64_t i64;
        uint32_t u32;
        char *str;
        size_t len;
        char num[32];
        switch (p->type) {
        case TW_KP_ID:
            tw_key_read_id(r, &id);
            v = id_json(&id);
            break;
        case TW_KP_U64:
            tw_key_read_u64(r, &u64);
            snprintf(num, sizeof num, "%llu", (unsigned long long)u64);
            v = json_string(num);
            break;
        case TW_KP_I64:
            tw_key_read_i64(r, &i64);
            snprintf(num, sizeof num, "%lld", (long long)i64);
            v = json_string(num);
            break;
        case TW_KP_U32:
            tw_key_read_u32(r, &u32);
            v = json_integer(u32);
            break;
        case TW_KP_STR:
            tw_key_read_str(r, arena, &str, &len);
            v = r->err ? NULL : json_stringn(str, len);
            if (v == NULL && !r->err) /* not UTF-8: its bytes in hex */
                v = json_pack("{s:o}", "hex", hex_json((const uint8_t *)str, len));
            break;
        }
        if (r->err || v == NULL || json_object_set_new(out, p->name, v) != 0) {
            json_decref(v);
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* Keeps what the audio part needs of a voice note record. */
static tw_err note_met(tw_export *x, const Tw__Store__V1__VoiceNoteRecord *rec)
{
    if (rec->note == NULL)
        return TW_OK;
    if (x->nnotes == x->notes_cap) {
        struct note_ref *grown =
            tw_array_grow(x->notes, x->nnotes, &x->notes_cap, sizeof *grown, 16);
        if (grown == NULL)
            return TW_ERR_NO_MEMORY;
        x->notes = grown;
    }
    struct note_ref *n = &x->notes[x->nnotes];
    snprintf(n->id, sizeof n->id, "%s", rec->note->id);
    n->blob_key = strdup(rec->blob_key);
    n->sha256 = strdup(rec->note->sha256);
    n->content_type = strdup(rec->note->content_type);
    n->size = rec->note->size_bytes;
    if (!n->blob_key || !n->sha256 || !n->content_type) {
        free(n->blob_key);
        free(n->sha256);
        free(n->content_type);
        return TW_ERR_NO_MEMORY;
    }
    x->nnotes++;
    return TW_OK;
}

/* One record as a JSON line appended to out. */
static tw_err record_line(tw_export *x, const tw_key_family *f, tw_store_iter *it, tw_arena *arena,
                          FILE *out)
{
    const uint8_t *key;
    size_t key_len;
    tw_store_iter_key(it, &key, &key_len);
    tw_key_reader r;
    tw_store_iter_read_key(it, &r);
    tw_value v;
    tw_err err = tw_store_iter_value(it, arena, &v);
    if (err)
        return err;
    json_t *value = NULL, *redacted = NULL;
    const char *type = "none";
    switch (f->value) {
    case TW_VAL_MSG:
        type = f->descriptor->name;
        value = tw_pbjson(v.msg, redacted_fields(f->descriptor), false);
        if (redacted_fields(f->descriptor) != NULL) {
            redacted = json_array();
            for (const char *const *p = redacted_fields(f->descriptor); *p; p++)
                json_array_append_new(redacted, json_string(*p));
        }
        if (f->descriptor == &tw__store__v1__voice_note_record__descriptor &&
            (err = note_met(x, (const Tw__Store__V1__VoiceNoteRecord *)v.msg)))
            return err;
        break;
    case TW_VAL_U64: {
        char num[32];
        snprintf(num, sizeof num, "%llu", (unsigned long long)v.u64);
        type = "u64";
        value = json_string(num);
        break;
    }
    case TW_VAL_ID:
        type = "id";
        value = id_json(&v.id);
        break;
    case TW_VAL_NONE:
        value = json_null();
        break;
    }
    json_t *line =
        json_pack("{s:s, s:o?, s:o?, s:s, s:o?}", "family", f->name, "key", key_json(f, &r, arena),
                  "key_hex", hex_json(key, key_len), "type", type, "value", value);
    if (line != NULL && redacted != NULL)
        json_object_set_new(line, "redacted", redacted);
    else
        json_decref(redacted);
    char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    if (text == NULL)
        return TW_ERR_NO_MEMORY;
    fprintf(out, "%s\n", text);
    free(text);
    return TW_OK;
}

/* Lines of records into out until about max_bytes; false when every
 * family is done. */
static tw_err next_records(tw_export *x, tw_arena *arena, size_t max_bytes, FILE *out, bool *more)
{
    tw_err err = TW_OK;
    *more = true;
    while (err == TW_OK && x->family < TW_KF__COUNT && (size_t)ftell(out) < max_bytes) {
        const tw_key_family *f = tw_keyspace_family((tw_kf)x->family);
        if (!f->owned) {
            x->family++;
            continue;
        }
        tw_key prefix;
        tw_key_init(&prefix, (tw_kf)x->family);
        tw_key_id(&prefix, &x->user);
        tw_store_iter *it;
        if ((err = tw_store_scan(x->store, &prefix, x->cursor, x->cursor_len, false, &it)))
            break;
        bool ended = true;
        while (err == TW_OK && tw_store_iter_next(it)) {
            if ((size_t)ftell(out) >= max_bytes) {
                ended = false;
                break;
            }
            if ((err = record_line(x, f, it, arena, out)))
                break;
            const uint8_t *key;
            tw_store_iter_key(it, &key, &x->cursor_len);
            memcpy(x->cursor, key, x->cursor_len);
        }
        tw_err close_err = tw_store_iter_close(it);
        err = err ? err : close_err;
        if (err == TW_OK && ended) {
            x->family++;
            x->cursor_len = 0;
        }
    }
    *more = x->family < TW_KF__COUNT;
    return err;
}

/* ---- audio ----------------------------------------------------------------------- */

/* The next piece of audio; *chunk stays NULL when no note is left. */
static tw_err next_audio(tw_export *x, tw_arena *arena, size_t max_bytes,
                         Tw__V1__ExportChunk **chunk)
{
    while (x->note < x->nnotes) {
        struct note_ref *n = &x->notes[x->note];
        if (x->reader == NULL) {
            tw_err err = tw_blob_reader_open(x->blobs, n->blob_key, 0, &x->reader, NULL);
            if (err == TW_ERR_NOT_FOUND) { /* deleted since its record was read */
                x->note++;
                continue;
            }
            if (err)
                return err;
            x->offset = 0;
        }
        uint8_t *data = tw_arena_alloc(arena, max_bytes);
        Tw__V1__AudioChunk *audio = tw_arena_alloc(arena, sizeof *audio);
        Tw__V1__ExportChunk *c = tw_arena_alloc(arena, sizeof *c);
        if (data == NULL || audio == NULL || c == NULL)
            return TW_ERR_NO_MEMORY;
        size_t got = 0, n_read = 0;
        tw_err err;
        do {
            err = tw_blob_reader_read(x->reader, data + got, max_bytes - got, &n_read);
            got += n_read;
        } while (err == TW_OK && n_read > 0 && got < max_bytes);
        if (err)
            return err;
        tw__v1__audio_chunk__init(audio);
        audio->voice_note_id = n->id;
        audio->content_type = n->content_type;
        audio->sha256 = n->sha256;
        audio->offset = x->offset;
        audio->data = (ProtobufCBinaryData){got, data};
        x->offset += got;
        audio->last = got < max_bytes || x->offset >= n->size;
        if (audio->last) {
            tw_blob_reader_close(x->reader);
            x->reader = NULL;
            x->note++;
        }
        tw__v1__export_chunk__init(c);
        c->piece_case = TW__V1__EXPORT_CHUNK__PIECE_AUDIO;
        c->audio = audio;
        *chunk = c;
        return TW_OK;
    }
    return TW_OK;
}

tw_err tw_export_next(tw_export *x, tw_arena *arena, size_t max_bytes, Tw__V1__ExportChunk **chunk,
                      bool *done)
{
    *chunk = NULL;
    *done = false;
    if (x->family < TW_KF__COUNT) {
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        if (out == NULL)
            return TW_ERR_NO_MEMORY;
        bool more;
        tw_err err = next_records(x, arena, max_bytes, out, &more);
        fclose(out);
        if (err == TW_OK && len > 0) {
            Tw__V1__ExportChunk *c = tw_arena_alloc(arena, sizeof *c);
            char *copy = tw_arena_strdup(arena, text);
            if (c == NULL || copy == NULL) {
                err = TW_ERR_NO_MEMORY;
            } else {
                tw__v1__export_chunk__init(c);
                c->piece_case = TW__V1__EXPORT_CHUNK__PIECE_RECORDS;
                c->records = copy;
                *chunk = c;
            }
        }
        free(text);
        if (err || *chunk != NULL)
            return err;
    }
    tw_err err = next_audio(x, arena, max_bytes, chunk);
    *done = err == TW_OK && *chunk == NULL;
    return err;
}
