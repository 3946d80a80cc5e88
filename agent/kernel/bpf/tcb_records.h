/* Records the agent's BPF programs hand to user space, shared by the BPF C
 * side (which includes vmlinux.h first) and the C++ side. Fixed-size fields
 * only; the layout is the wire format of the ring buffer and of the iterator.
 * Ports are in host order, addresses in network order (IPv4 in the first four
 * bytes). */
#ifndef TCBSCOPE_AGENT_KERNEL_BPF_TCB_RECORDS_H_
#define TCBSCOPE_AGENT_KERNEL_BPF_TCB_RECORDS_H_

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

enum tcb_event_kind {
  TCB_EVENT_STATE = 1,       /* inet_sock_set_state */
  TCB_EVENT_RETRANSMIT = 2,  /* tcp_retransmit_skb */
  TCB_EVENT_RESET_SENT = 3,  /* tcp_send_reset */
  TCB_EVENT_RESET_RECV = 4,  /* tcp_receive_reset */
};

struct tcb_event {
  __u64 ktime_ns; /* CLOCK_MONOTONIC, bpf_ktime_get_ns() */
  __u64 cookie;   /* socket cookie; 0 when the kernel had no socket (a reset to a closed port) */
  __u32 netns;    /* network namespace inode */
  __u32 pid;      /* process that caused it, 0 when not in a process's context */
  __u32 uid;
  __u32 seq;      /* retransmit: the segment's first sequence number; reset: its sequence number */
  __u32 reason;   /* reset sent: enum sk_rst_reason */
  __u16 kind;     /* enum tcb_event_kind */
  __u16 family;   /* AF_INET or AF_INET6 */
  __u16 sport;    /* local port */
  __u16 dport;    /* remote port */
  __u8 oldstate;  /* TCP_* as in include/net/tcp_states.h; kind STATE only */
  __u8 newstate;  /* the state after the event (the current one for other kinds) */
  __u8 pad[2];
  __u8 saddr[16]; /* local address */
  __u8 daddr[16]; /* remote address */
  char comm[16];  /* with pid */
};

/* One full TCP socket's sequence space, from the iter/tcp program. */
struct tcb_seq_record {
  __u64 cookie;
  __u32 snd_una;
  __u32 snd_nxt;
  __u32 rcv_nxt;
  __u32 write_seq;
  __u32 copied_seq;
  __u32 snd_wnd;
  __u32 rcv_wnd;
  __u32 rcv_wup;
  /* The socket's family and state, so that a reader can match records to a
   * dump's rows family by family (agent/seq_table.h). */
  __u16 family;
  __u8 state;
  __u8 pad;
  __u32 pad2;
  /* Read in the same pass as the sequence numbers, so ISS = snd_una -
   * bytes_acked - 1 and IRS = rcv_nxt - bytes_received - 1 hold exactly. */
  __u64 bytes_acked;
  __u64 bytes_received;
};

/* One socket held open by a process (thread group), from the iter/task_file
 * program: the socket's inode is what sock_diag reports as idiag_inode. */
struct tcb_file_record {
  __u64 inode;
  __u32 tgid;
  __u32 fd;
  char comm[16];
};

#endif /* TCBSCOPE_AGENT_KERNEL_BPF_TCB_RECORDS_H_ */
