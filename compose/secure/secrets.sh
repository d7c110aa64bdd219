#!/bin/sh
# The `secrets` service of compose/secure.yml: one-shot, in the wayfinder image, as root (it
# hands files to other users). Running it again changes no password.
#
# 1. `wayfinder kafka secrets` into $VAULT/secrets/: the private CA and its key, the brokers'
#    keystore and security settings, the SCRAM users, and every role's client config. It keeps
#    what exists. Only this service mounts the vault.
# 2. Each service's share, into a volume of its own under $OUT that only that service mounts
#    (read-only, at /secrets: the path the files name), owned by the user it runs as:
#      broker/                     ca.pem broker.p12 broker-security.properties scram-users.args
#      producer/ processor/ node/  ca.pem ROLE.properties
#      admin/                      ca.pem admin.properties   (the acls service)
#    A changed file is replaced by a rename: a running Wayfinder process watching its
#    --kafka-config reads the old file or the new one, never half of one.
set -eu

VAULT=${VAULT:-/vault}
OUT=${OUT:-/out}
KAFKA_HOSTS=${KAFKA_HOSTS:-kafka-1,kafka-2,kafka-3}
KAFKA_BOOTSTRAP=${KAFKA_BOOTSTRAP:-kafka-1:9092,kafka-2:9092,kafka-3:9092}
KAFKA_UID=${KAFKA_UID:-1000}          # appuser in apache/kafka
WAYFINDER_UID=${WAYFINDER_UID:-10001} # wayfinder in compose/Dockerfile
WAYFINDER=${WAYFINDER:-wayfinder}

umask 077
"$WAYFINDER" kafka secrets --dir "$VAULT" --hosts "$KAFKA_HOSTS" --bootstrap "$KAFKA_BOOTSTRAP" \
    --mounted-at /secrets

# hand_out OWNER DIR FILE...: the vault's FILEs into DIR, owned by OWNER, 0600 (ca.pem 0644).
hand_out() {
    owner=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    chown "$owner" "$dir"
    chmod 0700 "$dir"
    for name in "$@"; do
        mode=0600
        [ "$name" = ca.pem ] && mode=0644
        cp "$VAULT/secrets/$name" "$dir/.$name.new"
        chown "$owner" "$dir/.$name.new"
        chmod "$mode" "$dir/.$name.new"
        if cmp -s "$dir/.$name.new" "$dir/$name" 2>/dev/null; then
            chown "$owner" "$dir/$name"
            chmod "$mode" "$dir/$name"
            rm -f "$dir/.$name.new"
        else
            mv -f "$dir/.$name.new" "$dir/$name"
        fi
    done
}

hand_out "$KAFKA_UID" "$OUT/broker" ca.pem broker.p12 broker-security.properties scram-users.args
for role in producer processor node admin; do
    hand_out "$WAYFINDER_UID" "$OUT/$role" ca.pem "$role.properties"
done
echo "secrets: handed out to $(cd "$OUT" && echo *)" >&2
