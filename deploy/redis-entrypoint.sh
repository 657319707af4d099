#!/bin/sh
# Starts redis-server (with the arguments given) under the users a Leasehold deployment
# needs, their passwords from /secrets (made once by compose.yaml's `secrets` service):
#   default    off: nobody gets in without a user and password;
#   leasehold  exactly the rights deploy/leasehold.acl lists, plus LEASEHOLD_EXTRA_RIGHTS
#              (` +config|get` where Leasehold runs with --durability fsync);
#   admin      everything: replication (masteruser), the sentinels, redis-cli, operators.
set -eu
rights=$(grep '^user leasehold ' /etc/leasehold/leasehold.acl)
admin=$(cat /secrets/admin)
{
  echo 'user default off'
  echo "$rights${LEASEHOLD_EXTRA_RIGHTS:-} >$(cat /secrets/leasehold)"
  echo "user admin on >$admin ~* &* +@all"
} >/tmp/users.acl
exec redis-server --aclfile /tmp/users.acl --masteruser admin --masterauth "$admin" "$@"
