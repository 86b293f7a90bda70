/*
 * Accounts: the rules for what a profile may hold (email, password, time
 * zone, locale, names), the stored Account record and its API form
 * (tw.v1.User), and the writes that create one. Shared by AuthService,
 * AdminService and `twd admin create`.
 */
#ifndef TW_ACCOUNT_H
#define TW_ACCOUNT_H

#include "pbtime.h"
#include "tw/store/v1/accounts.pb-c.h"
#include "tw/v1/auth_service.pb-c.h"
#include "tw_arena.h"
#include "tw_txn.h"

#include <stdbool.h>
#include <stddef.h>

#define TW_ROLE_USER  "user"
#define TW_ROLE_ADMIN "admin"
/* The unique space emails are claimed in. */
#define TW_EMAIL_SPACE        "email"
#define TW_EMAIL_MAX          254
#define TW_PASSWORD_MIN_CHARS 8
#define TW_PASSWORD_MAX_BYTES 1024
#define TW_NAME_MAX_CHARS     100

/* Each check returns true when the value is fine, or false with a short
 * reason in why (for a BadRequest field violation). */

/* Normalises an email into out (TW_EMAIL_MAX + 1 bytes) and checks its
 * shape: surrounding white space removed, the whole address in lower case
 * (ASCII letters; other bytes are kept). Addresses that differ only by case
 * are one account, as the big providers treat them; dots and +tags are
 * kept, since what they mean is up to each provider. Every lookup or claim
 * of an email goes through this form. */
bool tw_email_normalise(const char *email, char *out, char *why, size_t whylen);

/* At least 8 characters, at most 1024 bytes, not a common password (the
 * shipped list, compared without regard to ASCII case). */
bool tw_password_acceptable(const char *password, char *why, size_t whylen);

/* True when password is on the shipped list of common passwords. */
bool tw_password_is_common(const char *password);

/* An IANA zone name the system's tz database has, as tz.h reads it
 * (tw_tz_known). */
bool tw_time_zone_valid(const char *zone, char *why, size_t whylen);

/* A BCP 47 tag of the usual shape: a 2-3 letter language, then subtags of
 * 1-8 letters or digits, at most 35 characters. */
bool tw_locale_valid(const char *locale, char *why, size_t whylen);

/* 1 to 100 characters after trimming, no control characters (allow_empty:
 * 0 to 100). */
bool tw_display_name_valid(const char *name, bool allow_empty, char *why, size_t whylen);

/* The USER key of a user. */
void tw_account_key(tw_key *k, const tw_id *user);

/* Loads user's account (in arena); TW_ERR_NOT_FOUND when there is none or
 * it is being deleted. */
tw_err tw_account_load(tw_store *s, const tw_id *user, tw_arena *arena,
                       Tw__Store__V1__Account **out);
tw_err tw_txn_account_load(tw_txn *t, const tw_id *user, tw_arena *arena,
                           Tw__Store__V1__Account **out);

/* The flags ACCOUNT_BY_FLAG lists accounts by (AdminService.ListUsers). */
#define TW_ACCOUNT_FLAG_DISABLED "disabled"
#define TW_ACCOUNT_FLAG_ADMIN    "admin"

/* The ACCOUNT_BY_FLAG key of user under flag. */
void tw_account_flag_key(tw_key *k, const char *flag, const tw_id *user);

/* Writes an account changed in t, with its change-log entry ("user"), and
 * keeps its entries in ACCOUNT_BY_FLAG (disabled, admin) in step. */
tw_err tw_txn_account_put(tw_txn *t, const Tw__Store__V1__Account *account);

/* A new active account in arena with a fresh id; strings are copied. */
Tw__Store__V1__Account *tw_account_new(tw_arena *arena, const char *email, const char *hash,
                                       const char *display_name, const char *time_zone,
                                       const char *locale, const char *role, int64_t now_ms);

/* Creates account (id, email, hash and profile set by the caller) in t:
 * claims the email (TW_ERR_ALREADY_EXISTS when taken), writes it, logs the
 * change and counts the registration. */
tw_err tw_txn_account_create(tw_txn *t, const Tw__Store__V1__Account *account);

/* Who signs in with email (as typed; already checked): an account listed
 * in an EmailCaseCollision under exactly this spelling (the domain's case
 * aside), else the holder of its normal form. TW_ERR_NOT_FOUND when nobody.
 * The collision record is read in arena. */
tw_err tw_account_find_by_email(tw_store *s, const char *email, tw_arena *arena, tw_id *owner);

/* Frees account's address in t, as its deletion begins: releases the claim
 * of its normal form, or, for an account listed in an EmailCaseCollision,
 * takes it off the list. When the holder of a collision's address goes,
 * the oldest listed account gets the claim and leaves the list. Records
 * are read in arena. */
tw_err tw_txn_account_release_email(tw_txn *t, const Tw__Store__V1__Account *account,
                                    tw_arena *arena);

/* The API form of account, in arena. */
Tw__V1__User *tw_account_to_user(const Tw__Store__V1__Account *account, tw_arena *arena);

#endif
