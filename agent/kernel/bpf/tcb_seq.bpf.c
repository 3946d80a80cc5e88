/* Sequence space of every full TCP socket in the reader's network namespace,
 * written as fixed tcb_seq_record rows to the iterator's file. Time-wait and
 * request sockets have no tcp_sock and are skipped. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "tcb_records.h"

char LICENSE[] SEC("license") = "GPL";

SEC("iter/tcp")
int dump_seq(struct bpf_iter__tcp *ctx) {
  struct sock_common *skc = ctx->sk_common;
  if (!skc) return 0;
  struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
  if (!tp) return 0;
  struct tcb_seq_record r;
  __builtin_memset(&r, 0, sizeof(r)); /* no stack bytes reach user space */
  r.cookie = bpf_get_socket_cookie(tp);
  r.snd_una = tp->snd_una;
  r.snd_nxt = tp->snd_nxt;
  r.rcv_nxt = tp->rcv_nxt;
  r.write_seq = tp->write_seq;
  r.copied_seq = tp->copied_seq;
  r.snd_wnd = tp->snd_wnd;
  r.rcv_wnd = tp->rcv_wnd;
  r.rcv_wup = tp->rcv_wup;
  r.family = skc->skc_family;
  r.state = skc->skc_state;
  r.bytes_acked = tp->bytes_acked;
  r.bytes_received = tp->bytes_received;
  bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
  return 0;
}
