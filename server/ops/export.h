/*
 * A user's data export: every record of every user-owned key family
 * (tw_keyspace.h's OWNED rows, keyed by the user's id), as JSON lines, then
 * the audio of each of their voice notes. docs/export.md is the format;
 * in short, one line per record:
 *
 *   {"family":"TASK","key":{"user":"<uuid>","task":"<uuid>"},
 *    "key_hex":"60...","type":"tw.store.v1.TaskRecord","value":{...}}
 *
 * value is the stored message in the proto3 JSON mapping (pbjson.h), a
 * counter's number (as a string), an id, or null for index entries whose
 * key is the whole datum; "redacted" lists fields left out because they
 * are secrets that only serve the server (a password hash, a session's
 * refresh-token key).
 *
 * The export is read in pieces (tw_export_next), each with its own view of
 * the store, so a long export never pins one snapshot or one iterator; a
 * record written during the export may or may not be in it.
 */
#ifndef TW_OPS_EXPORT_H
#define TW_OPS_EXPORT_H

#include "tw/v1/export_service.pb-c.h"
#include "tw_blob.h"
#include "tw_store.h"

#include <stdbool.h>

typedef struct tw_export tw_export;

/* An export of user's data from s and blobs (borrowed: they must outlive
 * it). */
tw_err tw_export_open(tw_store *s, tw_blob_store *blobs, const tw_id *user, tw_export **out);

/* The next piece, of about max_bytes at most, in arena: records first, then
 * audio. *chunk is NULL and *done true after the last piece. */
tw_err tw_export_next(tw_export *x, tw_arena *arena, size_t max_bytes, Tw__V1__ExportChunk **chunk,
                      bool *done);

/* Ends the export. Accepts NULL. */
void tw_export_close(tw_export *x);

#endif
