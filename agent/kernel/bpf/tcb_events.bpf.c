/* Connection change events: every TCP state transition, retransmission and
 * reset, delivered through one ring buffer. CO-RE: compiled once against the
 * build host's vmlinux.h, relocated by libbpf on the host that loads it. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "tcb_records.h"

#define TCB_AF_INET 2
#define TCB_AF_INET6 10
#define TCB_IPPROTO_TCP 6

/* tcp_states.h */
enum {
  TCB_ESTABLISHED = 1, TCB_SYN_SENT, TCB_SYN_RECV, TCB_FIN_WAIT1, TCB_FIN_WAIT2, TCB_TIME_WAIT,
  TCB_CLOSE, TCB_CLOSE_WAIT, TCB_LAST_ACK, TCB_LISTEN, TCB_CLOSING,
};

char LICENSE[] SEC("license") = "GPL";

/* Only sockets of this namespace are reported; 0 = every namespace. */
const volatile __u32 target_netns = 0;

/* Events that found the ring buffer full. User space turns an increase into
 * a resync: a watcher is never left with a silent gap. */
__u64 lost_events = 0;

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 22);
} events SEC(".maps");

static __always_inline struct tcb_event *reserve(void) {
  struct tcb_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) __sync_fetch_and_add(&lost_events, 1);
  return e;
}

/* Fills identity fields from a full socket; false when it is not one of ours. */
static __always_inline int from_sock(struct tcb_event *e, const struct sock *sk) {
  __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  if (family != TCB_AF_INET && family != TCB_AF_INET6) return 0;
  e->family = family;
  e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
  e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
  if (family == TCB_AF_INET) {
    __u32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
    __u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
    __builtin_memcpy(e->saddr, &s, 4);
    __builtin_memcpy(e->daddr, &d, 4);
  } else {
    BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
    BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
  }
  e->uid = BPF_CORE_READ(sk, sk_uid.val);
  e->newstate = BPF_CORE_READ(sk, __sk_common.skc_state);
  e->cookie = bpf_get_socket_cookie((void *)sk);
  return 1;
}

static __always_inline __u32 sock_netns(const struct sock *sk) {
  return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

static __always_inline void with_process(struct tcb_event *e) {
  e->pid = bpf_get_current_pid_tgid() >> 32;
  bpf_get_current_comm(e->comm, sizeof(e->comm));
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_state, const struct sock *sk, const int oldstate, const int newstate) {
  if (BPF_CORE_READ(sk, sk_protocol) != TCB_IPPROTO_TCP) return 0;
  __u32 ns = sock_netns(sk);
  if (target_netns && ns != target_netns) return 0;
  struct tcb_event *e = reserve();
  if (!e) return 0;
  __builtin_memset(e, 0, sizeof(*e));
  if (!from_sock(e, sk)) {
    bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
    return 0;
  }
  e->kind = TCB_EVENT_STATE;
  e->netns = ns;
  e->ktime_ns = bpf_ktime_get_ns();
  e->oldstate = oldstate;
  e->newstate = newstate;
  /* Transitions only a system call makes: the current task is the owner.
   * Others run in softirq context, where "current" is whoever was
   * interrupted. */
  if ((oldstate == TCB_CLOSE && (newstate == TCB_SYN_SENT || newstate == TCB_LISTEN)) ||
      (oldstate == TCB_ESTABLISHED && newstate == TCB_FIN_WAIT1) ||
      (oldstate == TCB_CLOSE_WAIT && newstate == TCB_LAST_ACK)) {
    with_process(e);
  }
  bpf_ringbuf_submit(e, 0);
  return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(on_retransmit, const struct sock *sk, const struct sk_buff *skb, int err) {
  __u32 ns = sock_netns(sk);
  if (target_netns && ns != target_netns) return 0;
  struct tcb_event *e = reserve();
  if (!e) return 0;
  __builtin_memset(e, 0, sizeof(*e));
  if (!from_sock(e, sk)) {
    bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
    return 0;
  }
  e->kind = TCB_EVENT_RETRANSMIT;
  e->netns = ns;
  e->ktime_ns = bpf_ktime_get_ns();
  struct tcp_skb_cb cb;
  bpf_probe_read_kernel(&cb, sizeof(cb), &skb->cb[0]);
  e->seq = cb.seq;
  e->reason = err;
  bpf_ringbuf_submit(e, 0);
  return 0;
}

/* A reset sent for a segment no socket wanted (sk == NULL): the identity is
 * the segment's, seen from this host (its destination is our local end). */
static __always_inline int from_segment(struct tcb_event *e, const struct sk_buff *skb) {
  unsigned char *head = BPF_CORE_READ(skb, head);
  __u16 nh = BPF_CORE_READ(skb, network_header);
  __u16 th = BPF_CORE_READ(skb, transport_header);
  __u8 version = 0;
  bpf_probe_read_kernel(&version, 1, head + nh);
  version >>= 4;
  if (version == 4) {
    struct iphdr ip;
    bpf_probe_read_kernel(&ip, sizeof(ip), head + nh);
    e->family = TCB_AF_INET;
    __builtin_memcpy(e->saddr, &ip.daddr, 4);
    __builtin_memcpy(e->daddr, &ip.saddr, 4);
  } else if (version == 6) {
    struct ipv6hdr ip6;
    bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh);
    e->family = TCB_AF_INET6;
    __builtin_memcpy(e->saddr, &ip6.daddr, 16);
    __builtin_memcpy(e->daddr, &ip6.saddr, 16);
  } else {
    return 0;
  }
  struct tcphdr tcp;
  bpf_probe_read_kernel(&tcp, sizeof(tcp), head + th);
  e->sport = bpf_ntohs(tcp.dest);
  e->dport = bpf_ntohs(tcp.source);
  e->newstate = TCB_CLOSE;
  return 1;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(on_send_reset, const struct sock *sk, const struct sk_buff *skb, const enum sk_rst_reason reason) {
  /* The namespace first: with many agents on one kernel (one per container
   * or lab host), every program sees every reset, and reserving ring buffer
   * space only to discard it costs each of them a consumer wake-up. */
  __u32 ns = 0;
  if (sk) {
    ns = sock_netns(sk);
  } else if (skb) {
    struct net_device *dev = BPF_CORE_READ(skb, dev);
    if (dev) ns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
  }
  if (target_netns && ns != target_netns) return 0;
  struct tcb_event *e = reserve();
  if (!e) return 0;
  __builtin_memset(e, 0, sizeof(*e));
  const int ok = sk ? from_sock(e, sk) : (skb ? from_segment(e, skb) : 0);
  if (!ok) {
    bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
    return 0;
  }
  e->kind = TCB_EVENT_RESET_SENT;
  e->netns = ns;
  e->ktime_ns = bpf_ktime_get_ns();
  e->reason = reason;
  bpf_ringbuf_submit(e, 0);
  return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(on_receive_reset, struct sock *sk) {
  __u32 ns = sock_netns(sk);
  if (target_netns && ns != target_netns) return 0;
  struct tcb_event *e = reserve();
  if (!e) return 0;
  __builtin_memset(e, 0, sizeof(*e));
  if (!from_sock(e, sk)) {
    bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
    return 0;
  }
  e->kind = TCB_EVENT_RESET_RECV;
  e->netns = ns;
  e->ktime_ns = bpf_ktime_get_ns();
  bpf_ringbuf_submit(e, 0);
  return 0;
}
