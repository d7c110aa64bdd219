#!/usr/bin/env bash
# A broker of compose/secure.yml, in the apache/kafka image (as its user, appuser, who owns
# $SECRETS: the secrets service hands the brokers' files to it).
#
#   broker.sh start    write server.properties, format the storage once, exec the broker
#   broker.sh config   only write server.properties and the health check's client config
#   broker.sh health   the healthcheck: ask the broker for its API versions over SASL_SSL
#
# server.properties: every KAFKA_* variable of the environment as the image's own launcher
# reads them (KAFKA_FOO_BAR=v is foo.bar=v; __ is _, ___ is -), except KAFKA_HOME and the
# JVM's *_OPTS; then $SECRETS/broker-security.properties as it is, the security settings
# `wayfinder kafka secrets` wrote (listener map, SCRAM, keystore, authorizer ...). A variable
# that sets one of those is refused rather than silently overridden.
#
# The storage is formatted once (--ignore-formatted), with the SCRAM users of
# $SECRETS/scram-users.args (one StorageTool argument a line), so every user exists from the
# brokers' first start. The arguments are read into an array, never word-split.
set -euo pipefail

KAFKA_HOME=${KAFKA_HOME:-/opt/kafka}
SECRETS=${SECRETS:-/secrets}
CONFIG_DIR=${CONFIG_DIR:-/tmp/wayfinder-kafka}
SERVER_PROPERTIES=$CONFIG_DIR/server.properties
CLIENT_PROPERTIES=$CONFIG_DIR/client.properties
SECURITY=$SECRETS/broker-security.properties
SCRAM_ARGS=$SECRETS/scram-users.args

die() { echo "broker.sh: $*" >&2; exit 1; }

# The value of KEY in the security settings (empty if absent).
security_setting() { sed -n "s/^$(printf '%s' "$1" | sed 's/[.]/\\./g')=//p" "$SECURITY" | head -n 1; }

# KAFKA_FOO_BAR -> foo.bar, as the apache/kafka image maps its environment.
property_name() {
    local name=${1#KAFKA_}
    name=${name,,}
    name=${name//___/-}
    name=${name//__/@}
    name=${name//_/.}
    printf '%s' "${name//@/_}"
}

write_config() {
    [[ -r $SECURITY ]] || die "cannot read $SECURITY: has the secrets service run?"
    : "${KAFKA_NODE_ID:?set KAFKA_NODE_ID}" "${KAFKA_LISTENERS:?set KAFKA_LISTENERS}"
    [[ ${KAFKA_ADVERTISED_LISTENERS:-} =~ ^SASL_SSL://[^,]+$ ]] \
        || die "KAFKA_ADVERTISED_LISTENERS must be one SASL_SSL listener, got '${KAFKA_ADVERTISED_LISTENERS:-}'"
    local -A secured=()
    local key line var mask
    while IFS= read -r line; do
        [[ $line == *=* && $line != \#* ]] && secured[${line%%=*}]=1
    done < "$SECURITY"
    mask=$(umask)
    umask 077  # both files hold secrets
    mkdir -p "$CONFIG_DIR"
    {
        echo "# Written by compose/secure/broker.sh at every start: the KAFKA_* environment, then $SECURITY."
        for var in "${!KAFKA_@}"; do
            case $var in KAFKA_HOME | *_OPTS) continue ;; esac
            key=$(property_name "$var")
            [[ -z ${secured[$key]:-} ]] || die "$var sets $key, a security setting of $SECURITY"
            printf '%s=%s\n' "$key" "${!var}"
        done
        echo "# Security: $SECURITY"
        cat "$SECURITY"
    } > "$SERVER_PROPERTIES.new"
    mv -f "$SERVER_PROPERTIES.new" "$SERVER_PROPERTIES"

    # A Java client config for the health check: the brokers' own SCRAM user (a super user;
    # its credentials are already here, so the brokers need no other role's file).
    local mechanism jaas
    mechanism=$(security_setting sasl.mechanism.inter.broker.protocol)
    jaas=$(security_setting "listener.name.sasl_ssl.${mechanism,,}.sasl.jaas.config")
    [[ -n $mechanism && -n $jaas ]] || die "$SECURITY has no SCRAM login for the SASL_SSL listener"
    {
        echo "security.protocol=SASL_SSL"
        echo "sasl.mechanism=$mechanism"
        echo "sasl.jaas.config=$jaas"
        echo "ssl.truststore.type=$(security_setting ssl.truststore.type)"
        echo "ssl.truststore.location=$(security_setting ssl.truststore.location)"
    } > "$CLIENT_PROPERTIES.new"
    mv -f "$CLIENT_PROPERTIES.new" "$CLIENT_PROPERTIES"
    umask "$mask"
}

format_storage() {
    : "${CLUSTER_ID:?set CLUSTER_ID}"
    [[ -r $SCRAM_ARGS ]] || die "cannot read $SCRAM_ARGS: has the secrets service run?"
    local -a scram
    mapfile -t scram < "$SCRAM_ARGS"
    (( ${#scram[@]} > 0 )) || die "$SCRAM_ARGS holds no SCRAM user"
    "$KAFKA_HOME/bin/kafka-storage.sh" format --ignore-formatted --cluster-id "$CLUSTER_ID" \
        --config "$SERVER_PROPERTIES" "${scram[@]}"
}

case ${1:-start} in
    start)
        write_config
        format_storage
        exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$SERVER_PROPERTIES"
        ;;
    config)
        write_config
        ;;
    health)
        [[ -r $CLIENT_PROPERTIES ]] || die "no $CLIENT_PROPERTIES yet: the broker has not started"
        : "${KAFKA_ADVERTISED_LISTENERS:?set KAFKA_ADVERTISED_LISTENERS}"
        # What this broker advertises, so the check covers its name in the certificate too.
        # A small heap: this JVM runs beside the broker's every 10 s.
        KAFKA_HEAP_OPTS=-Xmx128m exec "$KAFKA_HOME/bin/kafka-broker-api-versions.sh" \
            --bootstrap-server "${KAFKA_ADVERTISED_LISTENERS#SASL_SSL://}" \
            --command-config "$CLIENT_PROPERTIES" > /dev/null
        ;;
    *)
        die "usage: broker.sh start|config|health"
        ;;
esac
