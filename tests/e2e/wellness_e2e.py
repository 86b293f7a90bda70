"""
What the health log and focus end-to-end tests share: reading a user's
change log (and other keys) straight from twd's store, until SyncService.Pull
can be asked instead.
"""
import uuid

from tw.store.v1 import records_pb2  # noqa: E402

CHANGE_PREFIX = 0x31  # CHANGE(user, sequence) in store/tw_keyspace.h


def user_keys(twd, account, prefixes):
    """(key, value) of every key of account whose family prefix is in prefixes."""
    user = uuid.UUID(account.user_id).bytes
    return [(key, value) for _, key, value in twd.store_records()
            if key[0] in prefixes and key[1:17] == user]


def change_log(twd, account, resource_type):
    """(op, resource id) of account's change-log entries of resource_type,
    in sequence order."""
    found = []
    for _, value in user_keys(twd, account, (CHANGE_PREFIX,)):
        entry = records_pb2.ChangeEntry.FromString(value)
        if entry.resource_type == resource_type:
            found.append((entry.op, str(uuid.UUID(bytes=entry.resource_id))))
    return found
