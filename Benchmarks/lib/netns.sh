# Sourced by the benchmarks that need a shaped link: two network namespaces joined by a veth
# pair, shaped with tbf. Root, iproute2 (ip, tc) and the sch_tbf module.
#
#   netns_up SEND_NS RECV_NS IFPREFIX SUBNET RATE [both]
#     SUBNET is the first three octets (10.232.0): the sender is .1, the receiver .2.
#     The sender's side is shaped to RATE (the direction data flows); with `both` the
#     receiver's too (rsync's checksums flow back).
#   netns_down SEND_NS RECV_NS
netns_down() {
    ip netns del "$1" 2>/dev/null || true
    ip netns del "$2" 2>/dev/null || true
}

netns_up() {
    local send=$1 recv=$2 prefix=$3 subnet=$4 rate=$5 both=${6:-}
    netns_down "$send" "$recv"
    ip netns add "$send"
    ip netns add "$recv"
    ip link add "$prefix-send" netns "$send" type veth peer name "$prefix-recv" netns "$recv"
    ip -n "$send" addr add "$subnet.1/24" dev "$prefix-send"
    ip -n "$recv" addr add "$subnet.2/24" dev "$prefix-recv"
    for ns in "$send" "$recv"; do ip -n "$ns" link set lo up; done
    ip -n "$send" link set "$prefix-send" up
    ip -n "$recv" link set "$prefix-recv" up
    tc -n "$send" qdisc add dev "$prefix-send" root tbf rate "$rate" burst 1mb latency 20ms
    if [ "$both" = both ]; then
        tc -n "$recv" qdisc add dev "$prefix-recv" root tbf rate "$rate" burst 1mb latency 20ms
    fi
}

#   netns_wait_listen NS PORT: until something in NS listens on PORT (20 s at most).
netns_wait_listen() {
    for _ in $(seq 1 400); do
        ip netns exec "$1" ss -ltn "sport = :$2" | grep -q LISTEN && return 0
        sleep 0.05
    done
    echo "listener on $2 did not come up" >&2
    return 1
}
